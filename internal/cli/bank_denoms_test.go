package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/rpc"
)

// denomNode answers the node routes chain info and balance read, with a
// btc supply and one account holding btc.
func denomNode(t *testing.T, holder address.Address) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v any
		switch r.URL.Path {
		case "/api/v1/chain":
			v = rpc.ChainInfo{ChainID: "t", Height: 7, Denom: coin.Denom, Supply: 10 * coin.Unit, GenesisTotal: 10 * coin.Unit, Minted: 0, ModuleAccounts: []rpc.ModuleAccount{}}
		case "/api/v1/bank/denoms":
			v = bank.DenomsView{Height: 7, Denoms: []bank.DenomView{{Name: "aitbc", Decimals: 6, Minters: []string{}, Supply: 10_000_000},
				{Name: "btc", Decimals: 8, Minters: []string{"bridge"}, Supply: 150_000_000, Minted: 200_000_000, Burned: 50_000_000}}}
		case "/api/v1/bank/balances/" + holder.String():
			v = bank.BalancesView{Height: 7, Address: holder, Balances: map[string]uint64{"aitbc": 0, "btc": 25_000_000}}
		default:
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestChainInfoShowsEachDenominationsSupply: chain info prints btc's
// supply, minted and burned beside AITBC's, and --output json carries them.
func TestChainInfoShowsEachDenominationsSupply(t *testing.T) {
	e := newWalletEnv(t, false)
	e.nodeURL = denomNode(t, address.Address{1}).URL
	out := e.ok("chain", "info")
	if !strings.Contains(out, "asset BTC       supply 1.5 (minted 2, burned 0.5; minters bridge)") {
		t.Fatalf("chain info:\n%s", out)
	}
	var j struct {
		ChainID string           `json:"chain_id"`
		Denoms  []bank.DenomView `json:"denoms"`
	}
	if err := json.Unmarshal([]byte(e.ok("chain", "info", "--output", "json")), &j); err != nil || j.ChainID != "t" || len(j.Denoms) != 2 || j.Denoms[1].Supply != 150_000_000 {
		t.Fatalf("json %+v %v", j, err)
	}
}

// TestBalanceShowsOtherAssetsWhenHeld: an address holding btc sees it
// under its AITBC balance; --output json lists it in base units too.
func TestBalanceShowsOtherAssetsWhenHeld(t *testing.T) {
	holder := address.Address{1}
	e := newWalletEnv(t, false)
	node := denomNode(t, holder)
	// The local keystore path asks the node for the AITBC balance through
	// /api/v1/accounts; forward that to the fake node of the wallet env.
	fake := e.nodeURL
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/bank/", func(w http.ResponseWriter, r *http.Request) { proxy(t, w, node.URL+r.URL.Path) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { proxy(t, w, fake+r.URL.Path) })
	both := httptest.NewServer(mux)
	defer both.Close()
	e.nodeURL = both.URL
	out := e.ok("balance", "--address", holder.String())
	if !strings.Contains(out, holder.String()+": 0.25 BTC") {
		t.Fatalf("balance:\n%s", out)
	}
	var j struct {
		Amount coin.Amount `json:"amount"`
		Assets []struct {
			Denom  string `json:"denom"`
			Amount string `json:"amount"`
			Units  uint64 `json:"units"`
		} `json:"assets"`
	}
	if err := json.Unmarshal([]byte(e.ok("balance", "--address", holder.String(), "--output", "json")), &j); err != nil || len(j.Assets) != 1 || j.Assets[0].Units != 25_000_000 || j.Assets[0].Denom != "btc" {
		t.Fatalf("json %+v %v", j, err)
	}
}

func proxy(t *testing.T, w http.ResponseWriter, url string) {
	resp, err := http.Get(url)
	if err != nil {
		t.Error(err)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

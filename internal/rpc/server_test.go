package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/rpc"
)

var errMissing = errors.New("missing")

// fakeBackend answers every query with fixed data; Submit refuses with a
// chain error so the mapping to HTTP can be checked.
type fakeBackend struct{}

func (fakeBackend) Health() rpc.Health                { return rpc.Health{Status: "ok"} }
func (fakeBackend) ChainInfo() (rpc.ChainInfo, error) { return rpc.ChainInfo{ChainID: "c"}, nil }
func (fakeBackend) Account(a address.Address) (rpc.Account, error) {
	return rpc.Account{Address: a}, nil
}
func (fakeBackend) Submit(context.Context, []byte) (string, error) {
	return "", bank.ErrInsufficientFunds
}
func (fakeBackend) SubmitMany(_ context.Context, raws [][]byte) []rpc.SubmitOutcome {
	out := make([]rpc.SubmitOutcome, len(raws))
	for i := range out {
		out[i].Err = bank.ErrInsufficientFunds
	}
	return out
}
func (fakeBackend) Tx(string) (rpc.Transaction, error) { return rpc.Transaction{}, errMissing }
func (fakeBackend) Proof(string) (rpc.TxProof, error)  { return rpc.TxProof{}, errMissing }
func (fakeBackend) Block(int64) (rpc.Block, error)     { return rpc.Block{Height: 1}, nil }
func (fakeBackend) Head() (rpc.Head, error)            { return rpc.Head{Height: 1}, nil }
func (fakeBackend) Sync() rpc.SyncStatus               { return rpc.SyncStatus{} }
func (fakeBackend) Transactions(a address.Address, _ int) (rpc.TxList, error) {
	return rpc.TxList{Address: a}, nil
}

// The modules' own routes, run against an empty in-memory state.
func (fakeBackend) Routes() []module.Route {
	var out []module.Route
	for _, m := range modules.New().All {
		if q, ok := m.(module.Querier); ok {
			out = append(out, q.Routes()...)
		}
	}
	return out
}

var emptyState = func() *state.Store {
	st, err := state.OpenInMemory()
	if err != nil {
		panic(err)
	}
	return st
}()

func (fakeBackend) Query(fn func(module.Query) error) error {
	return fn(module.Query{State: emptyState, Height: 1, ChainID: "c"})
}
func (fakeBackend) Audit() module.Audit { return module.Audit{Height: 1, OK: true} }

func mapMissing(err error) (int, string, bool) {
	if errors.Is(err, errMissing) {
		return http.StatusNotFound, "tx_not_found", true
	}
	return 0, "", false
}

func TestBadRequestsGetSpecificErrors(t *testing.T) {
	srv := httptest.NewServer(rpc.NewServer(fakeBackend{}, mapMissing, prometheus.NewRegistry(), nil))
	defer srv.Close()
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/api/v1/block/abc", "", 400, "invalid_height"},
		{"GET", "/api/v1/block/0", "", 400, "invalid_height"},
		{"GET", "/api/v1/account/aitbc1notanaddress", "", 400, "invalid_address"},
		{"GET", "/api/v1/account/cosmos1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnrql8a", "", 400, "invalid_address"},
		{"GET", "/api/v1/account/" + address.Address{}.String() + "/transactions?limit=0", "", 400, "invalid_limit"},
		{"POST", "/api/v1/transaction/submit", "", 400, "invalid_request"},
		{"POST", "/api/v1/transaction/submit", `{"tx": 5}`, 400, "invalid_request"},
		{"POST", "/api/v1/transaction/submit", `{"tx":"AA==","extra":1}`, 400, "invalid_request"},
		{"POST", "/api/v1/transaction/submit", `{"tx":"%%%"}`, 400, "malformed_tx"},
		{"POST", "/api/v1/transaction/submit", `{"tx":"AAEC"}`, 400, "insufficient_funds"},
		{"POST", "/api/v1/transactions/submit", `{}`, 400, "invalid_request"},
		{"POST", "/api/v1/transactions/submit", `{"txs":[]}`, 400, "invalid_request"},
		{"POST", "/api/v1/transactions/submit", `{"txs":["AA==","%%%"]}`, 400, "malformed_tx"},
		{"POST", "/api/v1/transactions/submit", `{"txs":"AA=="}`, 400, "invalid_request"},
		{"POST", "/api/v1/transactions/submit", `{"txs":[` + strings.Repeat(`"AA==",`, rpc.MaxSubmitBatch) + `"AA=="]}`, 400, "batch_too_large"},
		{"POST", "/api/v1/transaction/get", `{}`, 400, "invalid_hash"},
		{"POST", "/api/v1/transaction/get", `{"tx_hash":"0x00"}{}`, 400, "invalid_request"},
		{"POST", "/api/v1/transaction/get", `{"tx_hash":"0x00"}`, 404, "tx_not_found"},
		{"GET", "/api/v1/nothing", "", 404, "not_found"},
		{"GET", "/api/v1/miners/notanaddress", "", 400, "invalid_address"},
		{"GET", "/api/v1/miners/" + address.Address{}.String(), "", 404, "miner_not_found"},
		{"GET", "/api/v1/deposits/" + address.Address{}.String() + "/bad", "", 400, "invalid_address"},
		{"GET", "/api/v1/jobs/00112233", "", 400, "invalid_id"},
		{"GET", "/api/v1/jobs/00112233445566778899aabbccddeeff", "", 404, "job_not_found"},
		{"GET", "/api/v1/receipts/zz", "", 400, "invalid_id"},
		{"DELETE", "/api/v1/health", "", 405, "method_not_allowed"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var eb httpx.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != tc.status || eb.Error.Code != tc.code {
			t.Errorf("%s %s %s: %d %q, want %d %q", tc.method, tc.path, tc.body, resp.StatusCode, eb.Error.Code, tc.status, tc.code)
		}
		if tc.code != "" && eb.Error.Message == "" {
			t.Errorf("%s %s: empty error message", tc.method, tc.path)
		}
	}
}

// TestBatchSubmitAnswersEachTransaction: a well-formed batch is answered
// 200 with one outcome per transaction, refusals carrying the same code a
// single submission would get.
func TestBatchSubmitAnswersEachTransaction(t *testing.T) {
	srv := httptest.NewServer(rpc.NewServer(fakeBackend{}, mapMissing, prometheus.NewRegistry(), nil))
	defer srv.Close()
	c := rpc.NewClient(srv.URL)
	res, err := c.SubmitMany(context.Background(), [][]byte{{1}, {2}, {3}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 0 || res.Rejected != 3 || len(res.Results) != 3 {
		t.Fatalf("accepted %d rejected %d results %d, want 0, 3, 3", res.Accepted, res.Rejected, len(res.Results))
	}
	for i, r := range res.Results {
		if r.Status != "rejected" || r.Error == nil || r.Error.Code != "insufficient_funds" || r.Error.Message == "" {
			t.Errorf("result %d: %+v", i, r)
		}
	}
}

// TestOpenAPIListsEveryRoute keeps docs/api/node.openapi.yaml in step with
// the server.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	spec, err := os.ReadFile("../../docs/api/node.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := rpc.NewServer(fakeBackend{}, nil, prometheus.NewRegistry(), nil)
	for _, r := range s.Routes() {
		method, path, _ := strings.Cut(r, " ")
		i := strings.Index(string(spec), "\n  "+path+":\n")
		if i < 0 {
			t.Errorf("%s missing from the OpenAPI file", path)
			continue
		}
		block := string(spec[i+1:])
		if j := strings.Index(block[3:], "\n  /"); j >= 0 {
			block = block[:j+3]
		}
		if !strings.Contains(block, "\n    "+strings.ToLower(method)+":") {
			t.Errorf("%s %s: method missing from the OpenAPI file", method, path)
		}
	}
}

package app_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/faucet"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	mkt "github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/multisig"
	"github.com/aitbc/aitbc/internal/chain/modules/pools"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// busyEconomy is newEconomy with the faucet on, after a run that leaves
// something open in every module: balances, a pool with a member, a
// listing with an open bid and an agreement, an open job, stakes with an
// unbonding under way, a 2-of-3 multisig with an open proposal, faucet
// drips, rewards accrued in the epoch.
func busyEconomy(t *testing.T) *market {
	// newEconomy turns the faucet off; this chain has one, funded small.
	m := newEconomyWith(t, 7, map[string]any{"faucet": faucet.Params{Enabled: true, Fund: 5000 * coin.Unit, Amount: 100 * coin.Unit, Period: 3600}})
	m.mustOK(m.do(bob, faucet.NewDripMsg(bob.addr, 60*coin.Unit)))
	m.mustOK(m.do(bob, faucet.NewDripMsg(staker2.addr, 0)))
	m.register(minerA, coin.Unit, "tolstoy-1m")
	m.register(minerB, coin.Unit, "tolstoy-1m")
	m.mustOK(m.do(coord, pools.NewCreateMsg("north", 500)))
	m.mustOK(m.do(minerA, pools.NewJoinMsg("north")))
	m.mustOK(m.do(staker1, staking.NewStakeMsg(minerA.addr, 40*coin.Unit)))
	m.mustOK(m.do(staker2, staking.NewStakeMsg(minerB.addr, 30*coin.Unit)))
	// A job settled, one left assigned with its escrow.
	m.mustOK(m.create(jobID(1), 2*coin.Unit, 600))
	m.mustOK(m.assign(jobID(1), minerA))
	m.mustOK(m.settle(coord, receipt(jobID(1), minerA, 100, jobs.PriceFor(100, coin.Unit))))
	m.mustOK(m.create(jobID(2), 3*coin.Unit, 600))
	m.mustOK(m.assign(jobID(2), minerB))
	// The market: a listing, an agreement, an open bid.
	m.mustOK(m.do(minerB, mkt.NewCreateMsg(mkt.ListingSpec{ID: "svc-a", Name: "inference", Type: mkt.TypeAIInference, Price: 2 * coin.Unit})))
	m.mustOK(m.do(alice, mkt.NewBidMsg("svc-a", 2*coin.Unit, 3, false)))
	m.mustOK(m.do(minerB, mkt.NewAcceptMsg(m.lastBid("svc-a"))))
	m.mustOK(m.do(staker1, mkt.NewBidMsg("svc-a", 2*coin.Unit, 1, false)))
	// A multisig with an open proposal.
	m.mustOK(m.do(alice, multisig.NewCreateMsg("ops", 2, []address.Address{staker1.addr, staker2.addr, coord.addr})))
	m.mustOK(m.do(alice, bank.NewSendMsg(multisig.Address("ops"), 20*coin.Unit)))
	m.mustOK(m.do(staker1, multisig.NewProposeMsg("ops", bank.NewSendMsg(minerB.addr, 5*coin.Unit))))
	// Unbonding under way at the export (5 blocks).
	m.mustOK(m.do(staker1, staking.NewUnstakeMsg(minerA.addr, 15*coin.Unit)))
	return m
}

func (m *market) lastBid(service string) string {
	m.t.Helper()
	var out string
	_ = m.app.Committed(func(q module.Query) error {
		v, err := routeOf(keeper[*mkt.Keeper](m.harness), "/api/v1/market/services/{id}").Handle(q, params{"id": service})
		if err != nil {
			m.t.Fatal(err)
		}
		b, _ := json.Marshal(v)
		var s struct {
			Bids []struct {
				ID string `json:"bid_id"`
			} `json:"open_bids"`
		}
		_ = json.Unmarshal(b, &s)
		if len(s.Bids) == 0 {
			m.t.Fatalf("no open bid on %s: %s", service, b)
		}
		out = s.Bids[len(s.Bids)-1].ID
		return nil
	})
	return out
}

// startFrom starts a new chain from an exported genesis (through its JSON,
// as a genesis file carries it) at the height after the export, as
// CometBFT does with the genesis document's initial_height.
func startFrom(t *testing.T, g app.Genesis, initialHeight int64) (*harness, error) {
	t.Helper()
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, store: st, proposer: val.addr[:]}
	h.open()
	gb, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.app.InitChain(context.Background(), &abci.RequestInitChain{
		ChainId: chainID, AppStateBytes: gb, InitialHeight: initialHeight,
		Time: time.Unix(1_700_000_000+initialHeight, 0),
	})
	h.height = initialHeight - 1
	return h, err
}

// hashedState is every key of the app hash's state with its value.
func hashedState(t *testing.T, st *state.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err := st.Iterate(nil, false, func(k, v []byte) bool {
		if state.IsHashed(k) {
			out[string(k)] = hex.EncodeToString(v)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// answer is a module's REST answer as JSON.
func answer(t *testing.T, h *harness, mod, path string, p params) string {
	t.Helper()
	var out string
	for _, m := range h.app.Modules() {
		if m.Name() != mod {
			continue
		}
		_ = h.app.Committed(func(q module.Query) error {
			v, err := routeOf(m.(module.Querier), path).Handle(q, p)
			if err != nil {
				t.Fatalf("%s %v: %v", path, p, err)
			}
			b, _ := json.Marshal(v)
			out = string(b)
			return nil
		})
	}
	return out
}

// TestExportRoundTrip: a chain with something open in every module is
// exported at its height H; a new chain starts from the export at H+1.
// After one more block on each, the two states are the same to the byte
// and answer every query alike (balances, listings, bids, agreements,
// jobs, stakes, pools, multisig, faucet, supply); the audit passes; and
// the new chain goes on where the old stopped: the unbonding matures, the
// open job settles, the multisig proposal executes, an old transaction
// cannot be replayed.
func TestExportRoundTrip(t *testing.T) {
	m := busyEconomy(t)
	g, err := m.app.Export(0)
	if err != nil {
		t.Fatal(err)
	}
	H := m.height
	if g.State == nil || g.State.Height != H || len(g.Accounts) != 0 {
		t.Fatalf("export: state %+v, %d accounts", g.State, len(g.Accounts))
	}
	for _, name := range []string{"bank", "jobs", "miners", "market", "staking", "rewards", "pools", "multisig", "faucet"} {
		if len(g.State.Modules[name]) == 0 {
			t.Errorf("the export has no state for %s", name)
		}
	}
	// Validators compare their exports: the same state gives the same bytes.
	again, err := m.app.Export(H)
	if a, b := mustJSON(t, g), mustJSON(t, again); err != nil || !bytes.Equal(a, b) {
		t.Errorf("two exports of height %d differ (%v)", H, err)
	}
	if _, err := m.app.Export(H - 1); !errors.Is(err, app.ErrExportHeight) {
		t.Errorf("export at a past height: %v, want ErrExportHeight", err)
	}
	s1, b1 := m.supply()

	n, err := startFrom(t, g, H+1)
	if err != nil {
		t.Fatal(err)
	}
	m2 := &market{harness: n, nonces: map[address.Address]uint64{}}
	for k, v := range m.nonces {
		m2.nonces[k] = v
	}
	m.block()
	m2.block()
	if a, b := hashedState(t, m.store), hashedState(t, n.store); len(a) != len(b) {
		t.Fatalf("old chain has %d state keys, new %d", len(a), len(b))
	} else {
		for k, v := range a {
			if b[k] != v {
				t.Errorf("key %q: old %s, new %s", k, v, b[k])
			}
		}
	}
	everyone := []key{alice, bob, coord, minerA, minerB, staker1, staker2, val}
	for _, k := range everyone {
		if a, b := m.balance(k.addr), m2.balance(k.addr); a != b {
			t.Errorf("balance of %s: old %s, new %s", k.addr, a, b)
		}
	}
	for _, q := range []struct {
		mod, path string
		p         params
	}{
		{"market", "/api/v1/market/services/{id}", params{"id": "svc-a"}},
		{"market", "/api/v1/market/agreements", nil},
		{"market", "/api/v1/market/bids", nil},
		{"jobs", "/api/v1/jobs/{id}", params{"id": hex.EncodeToString(jobID(2))}},
		{"jobs", "/api/v1/jobs/{id}", params{"id": hex.EncodeToString(jobID(1))}},
		{"staking", "/api/v1/staking/delegators/{address}", params{"address": staker1.addr.String()}},
		{"staking", "/api/v1/staking/operators", nil},
		{"pools", "/api/v1/pools/{name}", params{"name": "north"}},
		{"multisig", "/api/v1/multisig/{name}", params{"name": "ops"}},
		{"rewards", "/api/v1/rewards", nil},
		{"miners", "/api/v1/miners", nil},
	} {
		a, b := answer(t, m.harness, q.mod, q.path, q.p), answer(t, n, q.mod, q.path, q.p)
		if a != b || len(a) < 10 {
			t.Errorf("%s %v:\nold %s\nnew %s", q.path, q.p, a, b)
		}
	}
	n.audit()
	s2, b2 := m2.supply()
	s1b, b1b := m.supply()
	if s2 != s1b || b2 != b1b || b1b < b1 || s1 == 0 {
		t.Errorf("supply: old %s burned %s (at H: %s, %s), new %s burned %s", s1b, b1b, s1, b1, s2, b2)
	}

	// The new chain goes on from the old one's state.
	d := m2.delegator(staker1.addr)
	if len(d.Unbondings) != 1 {
		t.Fatalf("staker1's unbonding after the import: %+v", d)
	}
	before := m2.balance(staker1.addr)
	for m2.height < d.Unbondings[0].Matures {
		m2.block()
	}
	if got := m2.balance(staker1.addr); got < before+15*coin.Unit {
		t.Errorf("the unbonding did not mature on the new chain: %s, was %s", got, before)
	}
	m2.mustOK(m2.settle(coord, receipt(jobID(2), minerB, 50, jobs.PriceFor(50, coin.Unit))))
	if j := m2.job(jobID(2)); j == nil || jobs.StatusName(j.Status) != "settled" {
		t.Errorf("job 2 on the new chain: %+v", j)
	}
	was := m2.balance(multisig.Address("ops"))
	m2.mustOK(m2.do(coord, multisig.NewSignMsg("ops", 0)))
	if got := m2.balance(multisig.Address("ops")); got != was-5*coin.Unit {
		t.Errorf("the multisig's proposal paid %s, want 5", was-got)
	}
	// A transaction the old chain committed cannot run again: nonces
	// carried over.
	old := &tx.Tx{ChainID: chainID, Nonce: 0, Fee: app.DefaultParams().MinFee, Msg: bank.NewSendMsg(bob.addr, coin.Unit)}
	old.Sign(alice.priv)
	raw, _ := old.Encode()
	if r := m2.block(raw).TxResults[0]; r.Code == 0 || !strings.Contains(r.Log, "nonce") {
		t.Errorf("replayed nonce 0: code %d %q", r.Code, r.Log)
	}
	// The faucet remembers what it gave in the period: bob has 40 left.
	m2.mustFail(m2.do(alice, faucet.NewDripMsg(bob.addr, 41*coin.Unit)), faucet.ErrLimit)
	n.audit()
}

// TestExportedStateRefusals: a genesis whose exported state does not fit
// is refused at InitChain with ErrExportedState, and nothing is started.
func TestExportedStateRefusals(t *testing.T) {
	m := busyEconomy(t)
	g, err := m.app.Export(0)
	if err != nil {
		t.Fatal(err)
	}
	H := m.height
	clone := func() app.Genesis {
		b, _ := json.Marshal(g)
		var c app.Genesis
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	bankRecords := func(c *app.Genesis, edit func(r *module.Records)) {
		var r module.Records
		if err := json.Unmarshal(c.State.Modules["bank"], &r); err != nil {
			t.Fatal(err)
		}
		edit(&r)
		c.State.Modules["bank"], _ = json.Marshal(r)
	}
	for _, c := range []struct {
		name   string
		edit   func(c *app.Genesis)
		height int64
		want   string
	}{
		{"wrong initial height", func(*app.Genesis) {}, 1, "must start at"},
		{"another state version", func(c *app.Genesis) { c.State.StateVersion = 1 }, H + 1, "state version 1"},
		{"accounts beside the state", func(c *app.Genesis) {
			c.Accounts = []app.GenesisAccount{{Address: bob.addr, Balance: coin.Unit}}
		}, H + 1, "accounts must be empty"},
		{"a balance raised by hand", func(c *app.Genesis) {
			bankRecords(c, func(r *module.Records) {
				for i, rec := range r.Records {
					if bytes.HasPrefix(rec.Key, bank.BalancePrefix) {
						r.Records[i].Value = bytes.Repeat([]byte{0x7f}, 8)
						return
					}
				}
			})
		}, H + 1, "invariant broken"},
		{"a record outside the module", func(c *app.Genesis) {
			bankRecords(c, func(r *module.Records) {
				r.Records = append(r.Records, module.Record{Key: []byte("jobs/x"), Value: []byte{1}})
			})
		}, H + 1, "not under"},
		{"a module this chain lacks", func(c *app.Genesis) { c.State.Modules["oracle"] = json.RawMessage(`{"records":[]}`) }, H + 1, "not a module"},
		{"parameters beside the state", func(c *app.Genesis) {
			c.Modules = map[string]json.RawMessage{"jobs": json.RawMessage(`{}`)}
		}, H + 1, "parameters are in its state"},
		{"a bad parameter record", func(c *app.Genesis) {
			var r module.Records
			_ = json.Unmarshal(c.State.Modules["faucet"], &r)
			for i := range r.Records {
				if string(r.Records[i].Key) == "faucet/params" {
					r.Records[i].Value = []byte{0xff}
				}
			}
			c.State.Modules["faucet"], _ = json.Marshal(r)
		}, H + 1, "parameters"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := clone()
			c.edit(&bad)
			_, err := startFrom(t, bad, c.height)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error saying %q", err, c.want)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

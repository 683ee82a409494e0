package app_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// TestSplitSettlementsHoldInvariantsUnderRandomSequences drives random
// blocks that mix split-job settlements (jobs/settle_stages: valid ones,
// ones naming a span server that deregistered meanwhile, and forged ones:
// a signature broken after signing, a stage over a span its server does
// not announce, an overclaimed route, a route that does not chain, a
// duplicate stage, a stage of another job, a settlement by another
// coordinator, servers nobody registered) with job creations from balances
// and deposits, deposits, withdrawals, cancellations, transfers and span
// servers registering, moving and deregistering. The harness checks every
// invariant after every block (Commit fails on a broken one). Besides:
// forged settlements never succeed; and for every block, each span
// server's balance changes by exactly the shares its settled stages earn
// (less its own fees), a server with no agent record gets nothing, and
// each settled job pays out its escrow to the unit (paid + fee +
// commission + refund), its paid and refund as the rule says. Each run is
// reproducible from its seed.
func TestSplitSettlementsHoldInvariantsUnderRandomSequences(t *testing.T) {
	seen := map[string]int{}
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			for k, n := range randomSplitChain(t, seed, 120) {
				seen[k] += n
			}
		})
	}
	for _, k := range []string{"settled", "settled around a gone server", "forged refused", "valid refused", "agents/register",
		"agents/deregister", "settled from a deposit", "forged signature", "forged span", "forged overclaim", "forged chain",
		"forged duplicate", "forged other job", "forged not the coordinator", "forged nobody on chain", "jobs/create", "jobs/create_for", "jobs/cancel", "jobs/deposit", "jobs/withdraw", "bank/send", "job expired"} {
		if seen[k] == 0 {
			t.Errorf("no %q in any run: %v", k, seen)
		}
	}
	t.Logf("outcomes: %v", seen)
}

// spanSets are the spans a random server may announce (tolstoy-1m's four
// layers).
var spanSets = [][2]int{{0, 1}, {2, 3}, {0, 3}, {1, 2}}

func randomSplitChain(t *testing.T, seed uint64, blocks int) map[string]int {
	seen := map[string]int{}
	rng := rand.New(rand.NewPCG(seed, 2027))
	custs := []*actor{{key: alice}, {key: bob}}
	coords := []*actor{{key: coord}, {key: newKey(21)}}
	servers := []*actor{{key: minerA}, {key: minerB}, {key: spanC}, {key: newKey(23)}}
	strangers := []key{newKey(40), newKey(41)} // never registered
	var all []*actor
	all = append(append(append(all, custs...), coords...), servers...)
	jp := jobs.DefaultParams()
	jp.ReleaseDelay = 6
	jp.MinTTL = 3
	jb, _ := json.Marshal(jp)
	g := fixedSupply(app.Genesis{Params: app.DefaultParams(), Modules: map[string]json.RawMessage{"jobs": jb}})
	for _, a := range all {
		g.Accounts = append(g.Accounts, app.GenesisAccount{Address: a.addr, Balance: 500 * coin.Unit})
	}
	h := newHarnessWith(t, g)
	m := &market{harness: h}
	fee := app.DefaultParams().MinFee
	pick := func(list []*actor) *actor { return list[rng.IntN(len(list))] }
	record := func(a address.Address) *agents.Agent {
		var ag *agents.Agent
		if err := h.app.Committed(func(q module.Query) error {
			var err error
			ag, err = keeper[*agents.Keeper](h).Get(q.State, a)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ag
	}
	// serving finds a registered server announcing first..last, or nil.
	serving := func(first, last int, not *actor) *actor {
		var c []*actor
		for _, s := range servers {
			if a := record(s.addr); s != not && a != nil && a.Serves("tolstoy-1m", first, last) {
				c = append(c, s)
			}
		}
		if len(c) == 0 {
			return nil
		}
		return c[rng.IntN(len(c))]
	}
	type meta struct{ cust, coord *actor }
	known := map[string]*meta{}
	var order []string // known's keys in creation order: the walk must not follow map order
	newID := func() []byte {
		id := make([]byte, jobs.IDLen)
		binary.BigEndian.PutUint64(id, rng.Uint64())
		return id
	}
	amount := func() coin.Amount { return coin.Amount(rng.IntN(30)+1) * coin.Unit / 2 }
	ph := sha256.Sum256([]byte("prompt"))
	res := sha256.Sum256([]byte("result"))
	sign := func(k key, st jobs.StageReceipt) jobs.StageReceipt {
		st.SignWith(k.priv.Public().(ed25519.PublicKey), func(b []byte) []byte { return ed25519.Sign(k.priv, b) })
		return st
	}
	stageOf := func(k key, id []byte, session string, first, last uint32, tokens uint64, in, out string) jobs.StageReceipt {
		return sign(k, jobs.StageReceipt{JobID: id, ChainID: chainID, Session: session, Model: "tolstoy-1m", First: first, Last: last,
			Tokens: tokens, InHash: chainOf(in), OutHash: chainOf(out)})
	}
	// Every server registers a span in the first block.
	var raws [][]byte
	for i, s := range servers {
		sp := spanSets[i%len(spanSets)]
		raws = append(raws, signTx(s, agents.NewRegisterSpansMsg("span", hashTolstoy, []string{"inference", "span"}, "http://127.0.0.1:8031",
			[]agents.Span{{Model: "tolstoy-1m", First: sp[0], Last: sp[1]}}), fee))
	}
	for i, r := range h.block(raws...).TxResults {
		if r.Code != 0 {
			t.Fatalf("registration: %s", r.Log)
		}
		servers[i].nonce++
	}

	type settleCase struct {
		id     []byte
		set    jobs.MsgSettleStages
		forged string // "" valid
	}
	for b := 0; b < blocks; b++ {
		var raws [][]byte
		var kinds []string
		signers := map[*actor]bool{}
		var settles []settleCase // in this block, with their tx index
		var settleAt []int
		// A block settles or moves agents, never both: the shares are
		// checked against the records as of the block before.
		settleBlock := rng.IntN(2) == 0
		for range rng.IntN(6) + 1 {
			var who *actor
			var msg tx.Msg
			kind := ""
			op := rng.IntN(12)
			switch {
			case op <= 4 && settleBlock && len(order) > 0:
				k := order[rng.IntN(len(order))]
				if rng.IntN(3) == 0 {
					k = order[len(order)-1-rng.IntN(min(3, len(order)))] // recent jobs: more are still open
				}
				id, jm := []byte(k), known[k]
				who = jm.coord
				tokensIn, tokensOut := uint64(rng.IntN(8)+1), uint64(rng.IntN(100))
				pos := tokensIn + tokensOut - uint64(rng.IntN(2)) // the last token need not be fed back
				if pos == 0 {
					pos = 1
				}
				var route []jobs.StageReceipt
				if rng.IntN(3) == 0 {
					if s := serving(0, 3, nil); s != nil {
						route = []jobs.StageReceipt{stageOf(s.key, id, "w", 0, 3, pos, "tokens", "logits")}
					}
				}
				if route == nil {
					a, c := serving(0, 1, nil), serving(2, 3, nil)
					if a == nil || c == nil {
						continue
					}
					route = []jobs.StageReceipt{stageOf(a.key, id, "a", 0, 1, pos, "tokens", "h2"), stageOf(c.key, id, "c", 2, 3, pos, "h2", "logits")}
				}
				set := jobs.MsgSettleStages{JobID: id, ResultHash: res[:], TokensIn: tokensIn, TokensOut: tokensOut, Layers: 4,
					PricePer1k: coin.Amount(rng.IntN(3)+1) * coin.Unit, Route: uint32(len(route)), Stages: route}
				if rng.IntN(3) == 0 { // a server that dropped out after some positions
					d := pick(servers)
					if rng.IntN(2) == 0 { // often one that has left since
						for _, srv := range servers {
							if record(srv.addr) == nil {
								d = srv
							}
						}
					}
					set.Stages = append(set.Stages, stageOf(d.key, id, "d", 2, 3, uint64(rng.IntN(int(pos)))+1, "h2-part", "logits-part"))
				}
				forged := ""
				if rng.IntN(3) == 0 {
					switch rng.IntN(8) {
					case 0:
						forged = "signature"
						set.Stages[0].Tokens++ // after signing
					case 1:
						// Stage 0 by a registered server that does not
						// announce its layers.
						forged = "span"
						st := set.Stages[0]
						var liar *actor
						for _, srv := range servers {
							if a := record(srv.addr); a != nil && !a.Serves("tolstoy-1m", int(st.First), int(st.Last)) {
								liar = srv
								break
							}
						}
						if liar == nil {
							forged = ""
							break
						}
						set.Stages[0] = stageOf(liar.key, id, st.Session, st.First, st.Last, st.Tokens, "tokens", outTag(0, int(set.Route)))
					case 2:
						forged = "overclaim"
						for i := range set.Stages[:set.Route] {
							st := set.Stages[i]
							set.Stages[i] = stageOf(keyOf(servers, st.ServerAddr()), id, st.Session, st.First, st.Last, tokensIn+tokensOut+1, inTag(i), outTag(i, int(set.Route)))
						}
					case 3:
						forged = "chain"
						if set.Route < 2 {
							forged = ""
							break
						}
						st := set.Stages[1]
						set.Stages[1] = stageOf(keyOf(servers, st.ServerAddr()), id, st.Session, st.First, st.Last, st.Tokens, "elsewhere", "logits")
					case 4:
						forged = "duplicate"
						set.Stages = append(set.Stages, set.Stages[0])
					case 5:
						forged = "other job"
						st := set.Stages[0]
						set.Stages[0] = stageOf(keyOf(servers, st.ServerAddr()), newID(), st.Session, st.First, st.Last, st.Tokens, "tokens", outTag(0, int(set.Route)))
					case 6:
						forged = "not the coordinator"
						for _, c := range coords {
							if c != jm.coord {
								who = c
							}
						}
					case 7:
						forged = "nobody on chain"
						set.Stages = []jobs.StageReceipt{stageOf(strangers[0], id, "a", 0, 1, pos, "tokens", "h2"), stageOf(strangers[1], id, "c", 2, 3, pos, "h2", "logits")}
						set.Route = 2
					}
				}
				msg = jobs.NewSettleStagesMsg(set)
				kind = "settle"
				settles = append(settles, settleCase{id: id, set: set, forged: forged})
				settleAt = append(settleAt, len(raws))
			case op <= 4 && !settleBlock:
				who = pick(servers)
				if rng.IntN(3) == 0 && record(who.addr) != nil {
					msg = agents.NewDeregisterMsg()
				} else {
					sp := spanSets[rng.IntN(len(spanSets))]
					msg = agents.NewRegisterSpansMsg("span", hashTolstoy, []string{"inference", "span"}, "http://127.0.0.1:8031",
						[]agents.Span{{Model: "tolstoy-1m", First: sp[0], Last: sp[1]}})
				}
			case op <= 6:
				who = pick(custs)
				msg = jobs.NewCreateMsg(jobs.Spec{ID: newID(), Model: "tolstoy-1m", PromptHash: ph[:], MaxTokens: 100, MaxPrice: amount(), TTLSeconds: int64(rng.IntN(40) + 3)}, pick(coords).addr)
			case op == 7:
				who = pick(coords)
				msg = jobs.NewCreateForMsg(jobs.Spec{ID: newID(), Model: "tolstoy-1m", PromptHash: ph[:], MaxTokens: 100, MaxPrice: amount(), TTLSeconds: int64(rng.IntN(40) + 3)}, pick(custs).addr)
			case op == 8:
				who = pick(custs)
				msg = jobs.NewDepositMsg(pick(coords).addr, amount()*4)
			case op == 9:
				who = pick(custs)
				msg = jobs.NewWithdrawMsg(pick(coords).addr, amount())
			case op == 10 && len(order) > 0:
				k := order[rng.IntN(len(order))]
				who = known[k].coord
				if rng.IntN(2) == 0 {
					who = known[k].cust
				}
				msg = jobs.NewCancelMsg([]byte(k))
			default:
				// Among customers and coordinators only: a span server's
				// balance moves by its shares and its own fees.
				payers := append(append([]*actor{}, custs...), coords...)
				who = pick(payers)
				msg = bank.NewSendMsg(pick(payers).addr, amount())
			}
			if who == nil || signers[who] { // one transaction per signer and block: nonces stay simple
				if kind == "settle" {
					settles, settleAt = settles[:len(settles)-1], settleAt[:len(settleAt)-1]
				}
				continue
			}
			signers[who] = true
			raws = append(raws, signTx(who, msg, fee))
			kinds = append(kinds, kind)
		}

		// What the settlements would pay, from the state before the block.
		before := map[address.Address]coin.Amount{}
		for _, s := range servers {
			before[s.addr] = h.balance(s.addr)
		}
		escrows := map[string]*jobs.Job{}
		gone := map[address.Address]bool{}
		for _, s := range settles {
			escrows[string(s.id)] = m.job(s.id)
			for _, st := range s.set.Stages {
				if record(st.ServerAddr()) == nil {
					gone[st.ServerAddr()] = true
				}
			}
		}
		resp := h.block(raws...) // fails the test if an invariant breaks

		want := map[address.Address]coin.Amount{}
		for i, r := range resp.TxResults {
			x, _ := tx.Decode(raws[i])
			who := x.Sender()
			for _, a := range all {
				if a.addr == who && r.Code == 0 {
					a.nonce++
				}
			}
			if r.Code != 0 {
				seen["failed tx"]++
			} else if kinds[i] == "" {
				seen[x.Msg.Type]++
			}
			if r.Code == 0 && (x.Msg.Type == jobs.TypeCreate || x.Msg.Type == jobs.TypeCreateFor) {
				var id []byte
				jm := &meta{}
				if x.Msg.Type == jobs.TypeCreate {
					var c jobs.MsgCreate
					_ = x.Msg.DecodeBody(&c)
					id, jm.cust, jm.coord = c.Spec.ID, byAddr(all, who), byAddr(all, address.Address(c.Coordinator))
				} else {
					var c jobs.MsgCreateFor
					_ = x.Msg.DecodeBody(&c)
					id, jm.cust, jm.coord = c.Spec.ID, byAddr(all, address.Address(c.Customer)), byAddr(all, who)
				}
				known[string(id)] = jm
				order = append(order, string(id))
			}
			// A server pays the fee of each of its own transactions that
			// committed (a refused one is rolled back whole).
			if byAddr(servers, who) != nil && r.Code == 0 {
				want[who] -= fee
			}
			k := slices.Index(settleAt, i)
			if k < 0 {
				continue
			}
			sc := settles[k]
			if r.Code != 0 {
				if sc.forged != "" {
					seen["forged refused"]++
					seen["forged "+sc.forged]++
				} else {
					seen["valid refused"]++ // the job expired, was canceled or settled already
				}
				continue
			}
			if sc.forged != "" {
				t.Fatalf("block %d: a settlement forged by %s was accepted", b, sc.forged)
			}
			j0 := escrows[string(sc.id)]
			split := jobs.Split(jp, j0.Escrow, jobs.PriceFor(sc.set.TokensOut, sc.set.PricePer1k))
			var paid, withheld coin.Amount
			for _, p := range sc.set.StagePayments(split.Price) {
				if gone[p.Server] {
					withheld += p.Amount
					continue
				}
				want[p.Server] += p.Amount
				paid += p.Amount
			}
			j := m.job(sc.id)
			if j.Status != jobs.StatusSettled || j.Paid != paid || j.Refund != split.Refund+withheld || j.Fee != split.Fee || j.Commission != split.Commission ||
				j.Paid+j.Fee+j.Commission+j.Refund != j.Escrow {
				t.Fatalf("block %d: job %x escrow %s paid out as %s + fee %s + commission %s + refund %s; want paid %s, withheld %s", b, sc.id, j.Escrow, j.Paid, j.Fee, j.Commission, j.Refund, paid, withheld)
			}
			seen["settled"]++
			if j0.FromDeposit {
				seen["settled from a deposit"]++
			}
			if withheld > 0 {
				seen["settled around a gone server"]++
			}
		}
		for _, s := range servers {
			if got := h.balance(s.addr) - before[s.addr]; got != want[s.addr] {
				t.Fatalf("block %d: server %s's balance moved by %s, its shares less fees are %s", b, s.addr, got, want[s.addr])
			}
		}
	}
	if au := h.app.Audit(); !au.OK {
		t.Fatal(au.Err())
	}
	for _, k := range order {
		if j := m.job([]byte(k)); j != nil {
			seen["job "+jobs.StatusName(j.Status)]++
		}
	}
	return seen
}

func signTx(a *actor, msg tx.Msg, fee coin.Amount) []byte {
	x := &tx.Tx{ChainID: chainID, Nonce: a.nonce, Fee: fee, Msg: msg}
	x.Sign(a.priv)
	raw, _ := x.Encode()
	return raw
}

func byAddr(list []*actor, a address.Address) *actor {
	for _, x := range list {
		if x.addr == a {
			return x
		}
	}
	return nil
}

func keyOf(list []*actor, a address.Address) key {
	if x := byAddr(list, a); x != nil {
		return x.key
	}
	panic("no such server")
}

// inTag and outTag are the hash-chain tags of route stage i of n, as the
// walk's valid routes use them.
func inTag(i int) string {
	if i == 0 {
		return "tokens"
	}
	return "h2"
}

func outTag(i, n int) string {
	if i == n-1 {
		return "logits"
	}
	return "h2"
}

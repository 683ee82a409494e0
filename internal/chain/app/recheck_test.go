package app_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

var carol, dave = newKey(4), newKey(5)

// twoSenders starts a chain where alice and carol hold 100 AITBC each.
func twoSenders(t *testing.T, opts ...app.Option) *harness {
	return newHarnessWith(t, fixedSupply(app.Genesis{
		Params: app.DefaultParams(),
		Accounts: []app.GenesisAccount{
			{Address: alice.addr, Balance: 100 * coin.Unit},
			{Address: carol.addr, Balance: 100 * coin.Unit},
		},
	}), opts...)
}

// TestRecheckRefusesASenderTheBlockDrained: the mempool holds alice's
// nonces 0 and 1; another validator's block carries a different nonce 0
// of hers that spends almost everything. The recheck refuses nonce 0 (a
// replay now) and nonce 1 (no funds left), though nonce 1's nonce is
// right again: its recorded balance is not the committed one.
func TestRecheckRefusesASenderTheBlockDrained(t *testing.T) {
	h := twoSenders(t)
	fee := app.DefaultParams().MinFee
	a0, a1 := send(alice, bob.addr, coin.Unit, 0, fee, chainID), send(alice, bob.addr, coin.Unit, 1, fee, chainID)
	for _, raw := range [][]byte{a0, a1} {
		if r := h.check(raw); r.Code != 0 {
			t.Fatal(r.Log)
		}
	}
	h.block() // a pass in which both are rechecked, so both have records
	for _, raw := range [][]byte{a0, a1} {
		if r := h.recheck(raw); r.Code != 0 {
			t.Fatal(r.Log)
		}
	}
	drain := send(alice, bob.addr, 100*coin.Unit-fee-1, 0, fee, chainID)
	if r := h.block(drain); r.TxResults[0].Code != 0 {
		t.Fatal(r.TxResults[0].Log)
	}
	r := h.recheck(a0)
	wantCode(t, "the replaced nonce 0", r.Code, r.Codespace, tx.ErrBadNonce)
	r = h.recheck(a1)
	wantCode(t, "nonce 1 after the drain", r.Code, r.Codespace, tx.ErrNoFunds)
	if n, _ := h.app.NonceOf(alice.addr); n != 1 {
		t.Fatalf("mempool nonce of alice = %d, want 1 (nothing of hers pending)", n)
	}
	if s := h.app.RecheckStats(); s.Kept != 2 || s.Executed != 2 {
		t.Fatalf("recheck stats %+v, want 2 kept (the empty block) and 2 executed (the drain)", s)
	}
}

// TestRecheckKeepsAnUntouchedTransactionWithoutRunningIt: carol's
// transaction read nothing the block wrote, so its recheck keeps it
// without running the checks (the counters say which), and the mempool
// view still counts it: her next nonce follows it and a replay is
// refused. Bob's, whose sender the block charged, runs again. (Carol
// pays dave: a payment to the proposer would read a balance every block
// changes.)
func TestRecheckKeepsAnUntouchedTransactionWithoutRunningIt(t *testing.T) {
	h := twoSenders(t)
	fee := app.DefaultParams().MinFee
	h.block(send(alice, bob.addr, 10*coin.Unit, 0, fee, chainID))
	a1 := send(alice, bob.addr, coin.Unit, 1, fee, chainID)
	b0 := send(bob, alice.addr, coin.Unit, 0, fee, chainID)
	c0 := send(carol, dave.addr, coin.Unit, 0, fee, chainID)
	for _, raw := range [][]byte{a1, b0, c0} {
		if r := h.check(raw); r.Code != 0 {
			t.Fatal(r.Log)
		}
	}
	// Another validator's block: alice pays bob 5 more with a
	// transaction this node never saw (her nonce 1), so a1 is a replay
	// and bob's balance, which b0 read, changed.
	other := send(alice, bob.addr, 5*coin.Unit, 1, fee, chainID)
	h.block(other)
	before := h.app.RecheckStats()
	r := h.recheck(a1)
	wantCode(t, "alice's replaced nonce", r.Code, r.Codespace, tx.ErrBadNonce)
	if r := h.recheck(b0); r.Code != 0 {
		t.Fatal(r.Log)
	}
	if r := h.recheck(c0); r.Code != 0 {
		t.Fatal(r.Log)
	}
	got := h.app.RecheckStats()
	if kept, ran := got.Kept-before.Kept, got.Executed-before.Executed; kept != 1 || ran != 2 {
		t.Fatalf("rechecks kept %d and ran %d, want carol's kept and 2 run (alice's, bob's)", kept, ran)
	}
	if n, _ := h.app.NonceOf(carol.addr); n != 1 {
		t.Fatalf("mempool nonce of carol = %d, want 1: the kept transaction is in the view", n)
	}
	r = h.check(send(carol, dave.addr, 2*coin.Unit, 0, fee, chainID))
	wantCode(t, "carol's nonce 0 again", r.Code, r.Codespace, tx.ErrBadNonce)
	if r := h.check(send(carol, dave.addr, coin.Unit, 1, fee, chainID)); r.Code != 0 {
		t.Fatalf("carol's next nonce: %s", r.Log)
	}
	// And the kept one commits as it was checked.
	res := h.block(b0, c0)
	for i, x := range res.TxResults {
		if x.Code != 0 {
			t.Fatalf("tx %d: %s", i, x.Log)
		}
	}
	if got := h.balance(carol.addr); got != 99*coin.Unit-fee {
		t.Fatalf("carol holds %s, want %s", got, 99*coin.Unit-fee)
	}
}

// TestRecheckKeepingAgreesWithFullRecheck runs random submissions,
// blocks (with the mempool's transactions, foreign ones that spend the
// same nonces, drains, replays and gaps) and recheck passes (sometimes
// with a sender's nonces swapped in the list) on two chains, one keeping
// verdicts and one rechecking everything, and requires the same answer
// to every CheckTx, the same app hash after every block and the same
// mempool nonces after every pass.
func TestRecheckKeepingAgreesWithFullRecheck(t *testing.T) {
	fee := app.DefaultParams().MinFee
	keys := []key{newKey(20), newKey(21), newKey(22), newKey(23), newKey(24)}
	var accounts []app.GenesisAccount
	for _, k := range keys {
		accounts = append(accounts, app.GenesisAccount{Address: k.addr, Balance: 20 * coin.Unit})
	}
	var kept uint64
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			g := fixedSupply(app.Genesis{Params: app.DefaultParams(), Accounts: accounts})
			skip, full := newHarnessWith(t, g), newHarnessWith(t, g, app.WithFullRecheck())
			var pool [][]byte
			nonceOf := func(i int) uint64 {
				n, err := skip.app.NonceOf(keys[i].addr)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			// lowest: the lowest nonce of sender i in the pool, or its
			// mempool nonce.
			lowest := func(i int) uint64 {
				low := nonceOf(i)
				for _, raw := range pool {
					x, _ := tx.Decode(raw)
					if x.Sender() == keys[i].addr && x.Nonce < low {
						low = x.Nonce
					}
				}
				return low
			}
			newTx := func(nonce uint64) []byte {
				s := rng.IntN(len(keys))
				to := keys[rng.IntN(len(keys))].addr
				amount := coin.Amount(1 + rng.IntN(3)*int(coin.Unit))
				if rng.IntN(8) == 0 {
					amount = 15 * coin.Unit // drains most of an account
				}
				n := nonceOf(s)
				switch nonce {
				case 1:
					n = lowest(s)
				default:
					switch rng.IntN(10) {
					case 0:
						n++ // a gap
					case 1:
						if n > 0 {
							n-- // a replay
						}
					}
				}
				return send(keys[s], to, amount, n, fee, chainID)
			}
			for step := 0; step < 40; step++ {
				switch op := rng.IntN(10); {
				case op < 6: // a submission
					raw := newTx(0)
					r1, r2 := skip.check(raw), full.check(raw)
					if r1.Code != r2.Code || r1.Codespace != r2.Codespace {
						t.Fatalf("step %d: CheckTx %s/%d with keeping, %s/%d without", step, r1.Codespace, r1.Code, r2.Codespace, r2.Code)
					}
					if r1.Code == 0 {
						pool = append(pool, raw)
						if n := len(pool); n > 1 && rng.IntN(4) == 0 {
							pool[n-1], pool[n-2] = pool[n-2], pool[n-1] // inserted swapped
						}
					}
				default: // a block and its recheck pass
					var txs [][]byte
					for _, raw := range pool {
						if rng.IntN(3) > 0 {
							txs = append(txs, raw)
						} else if rng.IntN(2) == 0 {
							break
						}
					}
					if rng.IntN(3) == 0 {
						txs = append(txs, newTx(1)) // another validator's
					}
					b1, b2 := skip.block(txs...), full.block(txs...)
					if !bytes.Equal(b1.AppHash, b2.AppHash) {
						t.Fatalf("step %d: app hashes differ", step)
					}
					var left [][]byte
					for _, raw := range pool {
						if slices.ContainsFunc(txs, func(b []byte) bool { return bytes.Equal(b, raw) }) {
							continue
						}
						r1, r2 := skip.recheck(raw), full.recheck(raw)
						if r1.Code != r2.Code || r1.Codespace != r2.Codespace {
							x, _ := tx.Decode(raw)
							t.Fatalf("step %d: recheck of %s nonce %d: %s/%d (%s) with keeping, %s/%d (%s) without",
								step, x.Sender(), x.Nonce, r1.Codespace, r1.Code, r1.Log, r2.Codespace, r2.Code, r2.Log)
						}
						if r1.Code == 0 {
							left = append(left, raw)
						}
					}
					pool = left
					for _, k := range keys {
						n1, _ := skip.app.NonceOf(k.addr)
						n2, _ := full.app.NonceOf(k.addr)
						if n1 != n2 {
							t.Fatalf("step %d: mempool nonce of %s: %d with keeping, %d without", step, k.addr, n1, n2)
						}
					}
				}
			}
			if s := full.app.RecheckStats(); s.Kept != 0 {
				t.Fatalf("the full recheck kept %d", s.Kept)
			}
			kept += skip.app.RecheckStats().Kept
		})
	}
	if kept == 0 {
		t.Fatal("no recheck kept a verdict: the comparison compared nothing")
	}
	t.Logf("verdicts kept: %d", kept)
}

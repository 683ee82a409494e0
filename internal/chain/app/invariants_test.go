package app_test

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/bridge"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/chain/modules/faucet"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/modules/multisig"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// TestBrokenInvariantStopsTheChainAndSaysWhy: money that appears outside
// the bank (here written straight into the store) is caught at the next
// block, whose Commit fails naming the invariant, the height and the
// figures.
func TestBrokenInvariantStopsTheChainAndSaysWhy(t *testing.T) {
	h := newHarness(t)
	h.block(send(alice, bob.addr, coin.Unit, 0, app.DefaultParams().MinFee, chainID))
	// A balance of 5 AITBC from nowhere.
	key := append([]byte("bank/b/"), bob.addr[:]...)
	v := binary.BigEndian.AppendUint64(nil, uint64(6*coin.Unit))
	height, _ := h.app.Height()
	if err := h.store.Commit(height, time.Unix(1_700_000_000+height, 0), []byte("x"), "", []state.KV{{Key: key, Value: v}}); err != nil {
		t.Fatal(err)
	}
	h.open() // reload from the tampered store
	h.height++
	if _, err := h.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: h.height, Time: time.Unix(1_700_000_000+h.height, 0), ProposerAddress: h.proposer}); err != nil {
		t.Fatal(err)
	}
	_, err := h.app.Commit(context.Background(), &abci.RequestCommit{})
	if err == nil {
		t.Fatal("a block on a state with 5 AITBC from nowhere committed without complaint")
	}
	for _, want := range []string{"bank/supply", fmt.Sprintf("height %d", h.height), "balances sum to 1004.9995"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if au := h.app.Audit(); au.OK {
		t.Fatal("audit reports the tampered state as sound")
	}
}

// actor is an account of the property test with its own nonce.
type actor struct {
	key
	nonce uint64
}

// TestInvariantsHoldUnderRandomSequences drives random blocks of
// transfers, deposits and withdrawals, jobs created from balances and from
// deposits, assignments, settlements, cancellations by customer and
// coordinator, expiries, miner registrations and unbondings, stakes and
// unstakes, jobs batches, multisig accounts, proposals and signatures,
// faucet drips, spot checks (attested settlements held and drawn,
// verifiers registering and leaving, pass and fail reports by the drawn
// verifier and by others, deadlines passing), with issuance and epoch
// payouts on — valid and not — and
// the harness audits every block (Commit fails on a broken
// invariant). Each run is reproducible from its seed.
func TestInvariantsHoldUnderRandomSequences(t *testing.T) {
	seen := map[string]int{}
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			for k, n := range randomChain(t, seed, 150) {
				seen[k] += n
			}
		})
	}
	// The walk must have reached every way money moves, or it proves little.
	for _, k := range []string{"bank/send", "jobs/deposit", "jobs/withdraw", "jobs/create", "jobs/create_for", "jobs/assign",
		"jobs/settle", "jobs/cancel", "miners/register", "miners/deregister", "job settled", "job expired", "job canceled",
		"failed tx", "staking/stake", "staking/unstake", "jobs/batch", "multisig/create", "multisig/propose", "multisig/sign", "faucet/drip",
		bridge.TypeAddress, bridge.TypeAttest, bridge.TypeWithdraw, bridge.TypePaid, bridge.TypeProposePayout, bridge.TypeSignPayout, chainex.TypePlace, chainex.TypeCancel, "exchange trade",
		audits.TypeRegister, audits.TypeUnregister, audits.TypeReport, "check passed", "check fraud_confirmed", "check overruled", "check timed_out"} {
		if seen[k] == 0 {
			t.Errorf("no %s in any run: %v", k, seen)
		}
	}
	t.Logf("outcomes: %v", seen)
}

// randomChain runs the walk and counts successful transactions by type,
// jobs by final status and failed transactions.
func randomChain(t *testing.T, seed uint64, blocks int) map[string]int {
	seen := map[string]int{}
	rng := rand.New(rand.NewPCG(seed, 99))
	custs := []*actor{{key: alice}, {key: bob}, {key: newKey(20)}}
	coords := []*actor{{key: coord}, {key: newKey(21)}}
	mins := []*actor{{key: minerA}, {key: minerB}, {key: newKey(22)}}
	var all []*actor
	all = append(append(append(all, custs...), coords...), mins...)
	jp := jobs.DefaultParams()
	jp.ReleaseDelay = 8
	jp.MinTTL = 3
	mp := miners.DefaultParams()
	mp.UnbondingBlocks = 5
	jb, _ := json.Marshal(jp)
	mb, _ := json.Marshal(mp)
	sp := staking.DefaultParams()
	sp.UnbondingBlocks = 5
	sb, _ := json.Marshal(sp)
	rp := rewards.DefaultParams()
	rp.EpochBlocks = 10
	rb, _ := json.Marshal(rp)
	// The Bitcoin bridge with one operator (the first coordinator): btc
	// enters only by its attestations and leaves by withdrawals, so the
	// exchange's orders trade bridged btc as on a devnet --btc.
	bxprv, xpub, err := bridge.AccountKey(make([]byte, 32), "regtest")
	if err != nil {
		t.Fatal(err)
	}
	bp := bridge.DefaultParams()
	bp.XPub, bp.Confirmations, bp.Threshold, bp.Operators = xpub, 1, 1, []string{coords[0].addr.String()}
	bb, _ := json.Marshal(bp)
	// Spot checks of most attested jobs, with short windows so that
	// deadlines pass within the walk.
	ap := audits.DefaultParams()
	ap.SpotCheckBps, ap.CheckWindowBlocks, ap.MinBond = 6000, 8, 5*coin.Unit
	ab, _ := json.Marshal(ap)
	g := app.Genesis{Params: app.DefaultParams(), Modules: map[string]json.RawMessage{"jobs": jb, "miners": mb, "staking": sb, "rewards": rb, bridge.Name: bb, audits.Name: ab}}
	for _, a := range all {
		g.Accounts = append(g.Accounts, app.GenesisAccount{Address: a.addr, Balance: 500 * coin.Unit})
	}
	h := newHarnessWith(t, g)
	var auk *audits.Keeper
	for _, m := range h.app.Modules() {
		if k, ok := m.(*audits.Keeper); ok {
			auk = k
		}
	}
	// check reads a job's spot check (nil: none).
	check := func(id []byte) *audits.Check {
		var c *audits.Check
		if err := h.app.Committed(func(q module.Query) error {
			var err error
			c, err = auk.Check(q.State, id)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	pick := func(list []*actor) *actor { return list[rng.IntN(len(list))] }
	var ids [][]byte // jobs created so far (maybe failed)
	jobID := func() []byte {
		if len(ids) > 0 && rng.IntN(3) > 0 {
			return ids[rng.IntN(len(ids))]
		}
		id := make([]byte, jobs.IDLen)
		binary.BigEndian.PutUint64(id, rng.Uint64())
		ids = append(ids, id)
		return id
	}
	// What the walk knows of jobs that were created, so that most
	// assignments and settlements are well-formed and some succeed.
	type meta struct{ cust, coord, miner *actor }
	known := map[string]*meta{}
	knownJob := func() ([]byte, *meta) {
		if len(known) == 0 || rng.IntN(4) == 0 {
			return jobID(), nil
		}
		keys := make([]string, 0, len(known))
		for k := range known {
			keys = append(keys, k)
		}
		slices.Sort(keys) // map order is random; the walk must not be
		k := keys[rng.IntN(len(keys))]
		return []byte(k), known[k]
	}
	amount := func() coin.Amount { return coin.Amount(rng.IntN(30)+1) * coin.Unit / 2 }
	ph := sha256.Sum256([]byte("prompt"))
	fee := app.DefaultParams().MinFee
	depositAddr := map[*actor]string{} // the bridge's deposit addresses, by index as the module gives them
	var nextIndex uint32
	var holders []*actor // those with a deposit address, in the order they got it
	var withdrawals, orders uint64
	for b := 0; b < blocks; b++ {
		var raws [][]byte
		signers := map[*actor]bool{}
		var awaiting [][]byte // jobs whose spot check awaits a report
		for _, j := range ids {
			if c := check(j); c != nil && (c.Status == audits.StatusAssigned || c.Status == audits.StatusRechecking) {
				awaiting = append(awaiting, j)
			}
		}
		for range rng.IntN(6) {
			var who *actor
			var msg tx.Msg
			if rng.IntN(8) == 0 {
				// A job's whole life in one block (create, assign, attested
				// settlement by three signers), so that enough jobs settle
				// for the spot checks' outcomes to be reached.
				cu, co, mi := pick(custs), pick(coords), pick(mins)
				if signers[cu] || signers[co] || signers[mi] {
					continue
				}
				id := jobID()
				tokens := uint64(rng.IntN(600) + 1)
				r := jobs.Receipt{JobID: id, ChainID: chainID, Customer: cu.addr[:], Model: "m", PromptHash: ph[:],
					ResultHash: ph[:], TokensOut: tokens, Price: jobs.PriceFor(tokens, coin.Unit)}
				ah := sha256.Sum256(append([]byte("attestation "), id...))
				r.AttestHash = ah[:]
				r.Sign(mi.priv)
				for _, step := range []struct {
					who *actor
					msg tx.Msg
				}{
					{cu, jobs.NewCreateMsg(jobs.Spec{ID: id, Model: "m", PromptHash: ph[:], MaxTokens: 700, MaxPrice: 5 * coin.Unit, TTLSeconds: 30}, co.addr)},
					{co, jobs.NewAssignMsg(id, mi.addr)},
					{mi, jobs.NewSettleMsg(r)},
				} {
					signers[step.who] = true
					x := &tx.Tx{ChainID: chainID, Nonce: step.who.nonce, Fee: fee, Msg: step.msg}
					x.Sign(step.who.priv)
					raw, _ := x.Encode()
					raws = append(raws, raw)
				}
				continue
			}
			op := rng.IntN(35)
			if len(awaiting) > 0 && rng.IntN(4) == 0 {
				op = 33 // reports often enough that checks pass, fail, are overruled and confirmed
			}
			switch op {
			case 0:
				who = pick(all)
				msg = bank.NewSendMsg(pick(all).addr, amount())
			case 1:
				who = pick(custs)
				msg = jobs.NewDepositMsg(pick(coords).addr, amount())
			case 2:
				who = pick(custs)
				msg = jobs.NewWithdrawMsg(pick(coords).addr, amount())
			case 3, 4:
				who = pick(custs)
				msg = jobs.NewCreateMsg(jobs.Spec{ID: jobID(), Model: "m", PromptHash: ph[:], MaxTokens: 500, MaxPrice: amount(), TTLSeconds: int64(rng.IntN(60) + 3)}, pick(coords).addr)
			case 5:
				who = pick(coords)
				msg = jobs.NewCreateForMsg(jobs.Spec{ID: jobID(), Model: "m", PromptHash: ph[:], MaxTokens: 500, MaxPrice: amount(), TTLSeconds: int64(rng.IntN(60) + 3)}, pick(custs).addr)
			case 6, 12:
				id, jm := knownJob()
				who = pick(coords)
				if jm != nil && rng.IntN(5) > 0 {
					who = jm.coord
				}
				msg = jobs.NewAssignMsg(id, pick(mins).addr)
			case 7, 8, 13, 14:
				id, jm := knownJob()
				m, cust := pick(mins), pick(custs)
				if jm != nil && jm.miner != nil && rng.IntN(5) > 0 {
					m, cust = jm.miner, jm.cust
				}
				tokens := uint64(rng.IntN(600))
				price := jobs.PriceFor(tokens, coin.Unit)
				if rng.IntN(5) == 0 {
					price++ // a receipt that must not pay
				}
				r := jobs.Receipt{JobID: id, ChainID: chainID, Customer: cust.addr[:], Model: "m", PromptHash: ph[:],
					ResultHash: ph[:], TokensOut: tokens, Price: price}
				if rng.IntN(3) > 0 { // attested: held for a spot check when drawn
					ah := sha256.Sum256(append([]byte("attestation "), id...))
					r.AttestHash = ah[:]
				}
				r.Sign(m.priv)
				who = m
				if jm != nil && rng.IntN(2) == 0 {
					who = jm.coord
				}
				msg = jobs.NewSettleMsg(r)
			case 9:
				who = pick(append(append([]*actor{}, custs...), coords...))
				msg = jobs.NewCancelMsg(jobID())
			case 10:
				who = pick(mins)
				var err error
				msg, err = miners.NewRegisterMsg(miners.Capabilities{Models: []string{"m"}, GPU: "cpu", PricePer1k: coin.Unit}, 100*coin.Unit)
				if err != nil {
					t.Fatal(err)
				}
			case 11:
				who = pick(mins)
				msg = miners.NewDeregisterMsg()
				if rng.IntN(3) > 0 {
					msg, _ = miners.NewRegisterMsg(miners.Capabilities{Models: []string{"m"}, GPU: "cpu", PricePer1k: coin.Unit}, 100*coin.Unit)
				}
			case 15, 16:
				who = pick(all)
				msg = staking.NewStakeMsg(pick(mins).addr, amount())
			case 17:
				who = pick(all)
				msg = staking.NewUnstakeMsg(pick(mins).addr, amount())
			case 18:
				who = pick(coords)
				var items []tx.Msg
				for range rng.IntN(4) + 1 {
					switch rng.IntN(3) {
					case 0:
						items = append(items, jobs.NewCreateForMsg(jobs.Spec{ID: jobID(), Model: "m", PromptHash: ph[:], MaxTokens: 500, MaxPrice: amount(), TTLSeconds: int64(rng.IntN(60) + 3)}, pick(custs).addr))
					case 1:
						id, _ := knownJob()
						items = append(items, jobs.NewAssignMsg(id, pick(mins).addr))
					default:
						id, jm := knownJob()
						m, cust := pick(mins), pick(custs)
						if jm != nil && jm.miner != nil {
							m, cust = jm.miner, jm.cust
						}
						tokens := uint64(rng.IntN(600))
						r := jobs.Receipt{JobID: id, ChainID: chainID, Customer: cust.addr[:], Model: "m", PromptHash: ph[:],
							ResultHash: ph[:], TokensOut: tokens, Price: jobs.PriceFor(tokens, coin.Unit)}
						r.Sign(m.priv)
						items = append(items, jobs.NewSettleMsg(r))
					}
				}
				msg = jobs.NewBatchMsg(items)
			case 19: // a 2-of-3 multisig of three actors (the first one made wins; the others are refused)
				who = pick(all)
				msg = multisig.NewCreateMsg(fmt.Sprint("ms", rng.IntN(2)), uint32(rng.IntN(4)), []address.Address{pick(all).addr, pick(all).addr, pick(all).addr})
			case 20:
				who = pick(all)
				inner := bank.NewSendMsg(pick(all).addr, amount())
				if rng.IntN(3) == 0 {
					inner = staking.NewStakeMsg(pick(mins).addr, amount())
				}
				msg = multisig.NewProposeMsg(fmt.Sprint("ms", rng.IntN(2)), inner)
				if rng.IntN(4) == 0 {
					msg = bank.NewSendMsg(multisig.Address(fmt.Sprint("ms", rng.IntN(2))), amount())
				}
			case 21:
				who = pick(all)
				msg = multisig.NewSignMsg(fmt.Sprint("ms", rng.IntN(2)), uint64(rng.IntN(4)))
			case 22: // the faucet pays its own fee; most repeats are refused
				who = pick(all)
				msg = faucet.NewDripMsg(pick(all).addr, amount()*coin.Amount(rng.IntN(80)))
			case 23:
				who, msg = pick(all), bridge.NewAddressMsg()
			case 24, 25: // a deposit of up to 0.03 BTC (some below the minimum) to someone's address
				if len(depositAddr) == 0 {
					continue
				}
				owner := pick(all)
				a, ok := depositAddr[owner]
				if !ok {
					continue
				}
				var txid [32]byte
				binary.BigEndian.PutUint64(txid[:], rng.Uint64())
				who = coords[0]
				if rng.IntN(8) == 0 {
					who = pick(all) // mostly not an operator
				}
				msg = bridge.NewAttestMsg(txid, 0, a, uint64(rng.IntN(3_000_000)), sha256.Sum256(txid[:]), int64(b))
			case 26:
				who = pick(all)
				msg = bridge.NewWithdrawMsg("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", uint64(rng.IntN(2_000_000)))
			case 27: // the operator moves a pending withdrawal's payout on: propose, sign, record
				who = coords[0]
				id := uint64(rng.IntN(int(withdrawals) + 1)) // drawn as before, so the walk's other draws stay the same
				if b%4 == 0 {
					msg = bridge.NewPaidMsg(id, sha256.Sum256([]byte(fmt.Sprint(b)))) // refused: no such payout
					break
				}
				var ok bool
				if msg, ok = payoutStep(t, h.app, bp, bxprv); !ok {
					continue
				}
			case 28, 29: // limit and market orders around 1 BTC = 100,000 AITBC
				who = pick(all)
				side := chainex.Side(rng.IntN(2) + 1)
				if side == chainex.Buy && len(holders) > 0 && rng.IntN(3) > 0 {
					who = pick(holders) // mostly those who may hold btc
				}
				price := uint64(990_000 + rng.IntN(20_001))
				msg = chainex.NewPlaceMsg(side, rng.IntN(4) == 0, price, uint64(rng.IntN(20)+1)*uint64(coin.Unit)+uint64(rng.IntN(3))*1000, int64(rng.IntN(3))*int64(b+2))
			case 30:
				who = pick(all)
				msg = chainex.NewCancelMsg(uint64(rng.IntN(int(orders)+1)) + 1)
			case 31: // a verifier's bond, some below min_bond
				who, msg = pick(all), audits.NewRegisterMsg(amount()*coin.Amount(rng.IntN(4)))
			case 32:
				who, msg = pick(all), audits.NewUnregisterMsg()
			case 33, 34: // a report, mostly on an open check by the verifier it awaits
				id, _ := knownJob()
				who = pick(all)
				if len(awaiting) > 0 && rng.IntN(5) > 0 {
					id = awaiting[rng.IntN(len(awaiting))]
					cur, _ := check(id).Current()
					for _, a := range all {
						if a.addr == cur {
							who = a
						}
					}
				}
				if rng.IntN(2) == 0 {
					msg = audits.NewReportMsg(id, true, nil, "")
				} else {
					msg = audits.NewReportMsg(id, false, ph[:], "commitments differ")
				}
			}
			if signers[who] { // one transaction per signer and block: nonces stay simple
				continue
			}
			signers[who] = true
			x := &tx.Tx{ChainID: chainID, Nonce: who.nonce, Fee: fee, Msg: msg}
			x.Sign(who.priv)
			raw, _ := x.Encode()
			raws = append(raws, raw)
		}
		res := h.block(raws...) // fails the test if an invariant breaks
		for i, r := range res.TxResults {
			if r.Code != 0 {
				seen["failed tx"]++
			}
			if r.Code == 0 {
				x, _ := tx.Decode(raws[i])
				seen[x.Msg.Type]++
				byAddr := func(b []byte) *actor {
					for _, a := range all {
						if string(a.addr[:]) == string(b) {
							return a
						}
					}
					return nil
				}
				sender := x.Sender()
				switch x.Msg.Type {
				case bridge.TypeAddress:
					if a := byAddr(sender[:]); a != nil && depositAddr[a] == "" {
						da, err := bp.DepositAddress(nextIndex)
						if err != nil {
							t.Fatal(err)
						}
						depositAddr[a] = da.EncodeAddress()
						holders = append(holders, a)
						nextIndex++
					}
				case bridge.TypeWithdraw:
					withdrawals++
				case chainex.TypePlace:
					orders++
				case jobs.TypeCreate:
					var m jobs.MsgCreate
					_ = x.Msg.DecodeBody(&m)
					known[string(m.Spec.ID)] = &meta{cust: byAddr(sender[:]), coord: byAddr(m.Coordinator)}
				case jobs.TypeCreateFor:
					var m jobs.MsgCreateFor
					_ = x.Msg.DecodeBody(&m)
					known[string(m.Spec.ID)] = &meta{cust: byAddr(m.Customer), coord: byAddr(sender[:])}
				case jobs.TypeAssign:
					var m jobs.MsgAssign
					_ = x.Msg.DecodeBody(&m)
					if jm := known[string(m.ID)]; jm != nil {
						jm.miner = byAddr(m.Miner)
					}
				}
				for _, a := range all {
					if a.addr == x.Sender() {
						a.nonce++
					}
				}
			}
		}
	}
	au := h.app.Audit()
	if !au.OK {
		t.Fatal(au.Err())
	}
	_ = h.app.Committed(func(q module.Query) error {
		n, err := chainex.TradeCount(q.State)
		seen["exchange trade"] += int(n)
		return err
	})
	// The random walk reached the states worth checking.
	var escrow, deposits coin.Amount
	escrow = h.balance(address.Module(jobs.EscrowAccount))
	deposits = h.balance(address.Module(jobs.DepositsAccount))
	t.Logf("seed %d: %d blocks, %d job ids, escrow %s, deposits %s, stake %s", seed, blocks, len(ids), escrow, deposits, h.balance(address.Module(miners.StakeAccount)))
	m := &market{harness: h}
	for _, id := range ids {
		if j := m.job(id); j != nil {
			seen["job "+jobs.StatusName(j.Status)]++
		}
		if c := check(id); c != nil {
			seen["check "+audits.StatusName(c.Status)]++
		}
	}
	return seen
}

// TestGenesisRefusesBadModuleParameters: a module's parameters out of range,
// malformed, or for a module the chain does not have stop InitChain.
type routeReq map[string]string

func (r routeReq) PathValue(n string) string { return r[n] }
func (r routeReq) Param(n string) string     { return r[n] }

// payoutStep is the 1-of-1 bridge operator's next message for the first
// pending withdrawal, read from the committed state: a proposal spending
// the largest free outputs, its signature share, or the payment record.
func payoutStep(t *testing.T, a *app.App, p bridge.Params, xprv string) (tx.Msg, bool) {
	t.Helper()
	var bk *bridge.Keeper
	for _, m := range a.Modules() {
		if k, ok := m.(*bridge.Keeper); ok {
			bk = k
		}
	}
	route := func(q module.Query, path string, r routeReq) any {
		for _, rt := range bk.Routes() {
			if rt.Path == path {
				v, err := rt.Handle(q, r)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
		t.Fatalf("no route %s", path)
		return nil
	}
	var msg tx.Msg
	ok := false
	if err := a.Committed(func(q module.Query) error {
		pend := route(q, "/api/v1/bridge/withdrawals", routeReq{"status": "pending", "limit": "1"}).([]bridge.WithdrawalView)
		if len(pend) == 0 {
			return nil
		}
		w := pend[0]
		if w.PayoutTxid == "" {
			us := route(q, "/api/v1/bridge/utxos", routeReq{"limit": "500"}).([]bridge.UTXOView)
			slices.SortFunc(us, func(x, y bridge.UTXOView) int { return cmp.Compare(y.Amount, x.Amount) })
			need, sum := w.Payout+w.Fee, uint64(0)
			m := wire.NewMsgTx(2)
			for _, u := range us {
				if sum == need || sum >= need+bridge.DustSat {
					break
				}
				if u.LockedBy != nil {
					continue
				}
				id, vout, err := bridge.ParseOutpoint(u.Outpoint)
				if err != nil {
					return err
				}
				m.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash(id), Index: vout}, nil, nil))
				sum += u.Amount
			}
			if sum != need && sum < need+bridge.DustSat {
				return nil
			}
			to, err := p.CheckAddress(w.To)
			if err != nil {
				return err
			}
			s, _ := txscript.PayToAddrScript(to)
			m.AddTxOut(wire.NewTxOut(int64(w.Payout), s))
			if sum > need {
				c, err := p.Custody(bridge.ChangeChain, 0)
				if err != nil {
					return err
				}
				m.AddTxOut(wire.NewTxOut(int64(sum-need), c.PkScript()))
			}
			msg, err = bridge.NewProposePayoutMsg(w.ID, m)
			ok = err == nil
			return err
		}
		pv := route(q, "/api/v1/bridge/withdrawals/{id}/payout", routeReq{"id": fmt.Sprint(w.ID)}).(bridge.PayoutView)
		txid, err := chainhash.NewHashFromStr(pv.Txid)
		if err != nil {
			return err
		}
		if pv.Complete {
			msg, ok = bridge.NewPaidMsg(w.ID, *txid), true
			return nil
		}
		raw, err := hex.DecodeString(pv.Tx)
		if err != nil {
			return err
		}
		m, err := bridge.DecodePayoutTx(raw)
		if err != nil {
			return err
		}
		var ins []bridge.PayoutInput
		for _, in := range pv.Inputs {
			ins = append(ins, bridge.PayoutInput{Amount: in.Amount, Chain: in.Chain, Index: in.Index})
		}
		_, hs, err := bridge.SigHashes(p, m, ins)
		if err != nil {
			return err
		}
		var sigs [][]byte
		for i, in := range ins {
			k, err := hdkeychain.NewKeyFromString(xprv)
			if err != nil {
				return err
			}
			if k, err = k.Derive(in.Chain); err == nil {
				k, err = k.Derive(in.Index)
			}
			if err != nil {
				return err
			}
			pk, err := k.ECPrivKey()
			if err != nil {
				return err
			}
			sigs = append(sigs, append(ecdsa.Sign(pk, hs[i]).Serialize(), byte(txscript.SigHashAll)))
		}
		msg, ok = bridge.NewSignPayoutMsg(w.ID, *txid, sigs), true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return msg, ok
}

func TestGenesisRefusesBadModuleParameters(t *testing.T) {
	for name, mods := range map[string]map[string]json.RawMessage{
		"jobs fee over 100%":            {"jobs": json.RawMessage(`{"fee_bps": 20000}`)},
		"negative delay":                {"jobs": json.RawMessage(`{"release_delay_s": -1}`)},
		"no unbonding":                  {"miners": json.RawMessage(`{"unbonding_blocks": 0}`)},
		"malformed":                     {"miners": json.RawMessage(`{"min_stake": "lots"}`)},
		"module not on chain":           {"no-such-module": json.RawMessage(`{}`)},
		"treasury admin not an address": {"treasury": json.RawMessage(`{"admin": "council"}`)},
		"multisig account threshold 0":  {"multisig": json.RawMessage(`{"expiry_blocks": 5, "accounts": [{"name": "council", "threshold": 0, "signers": ["` + alice.addr.String() + `"]}]}`)},
		"multisig account twice":        {"multisig": json.RawMessage(`{"expiry_blocks": 5, "accounts": [{"name": "c", "threshold": 1, "signers": ["` + alice.addr.String() + `"]}, {"name": "c", "threshold": 1, "signers": ["` + alice.addr.String() + `"]}]}`)},
	} {
		st, err := state.OpenInMemory()
		if err != nil {
			t.Fatal(err)
		}
		a, err := app.New(st, chainID, nil)
		if err != nil {
			t.Fatal(err)
		}
		gb, _ := json.Marshal(app.Genesis{Params: app.DefaultParams(), Modules: mods})
		if _, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, AppStateBytes: gb}); err == nil {
			t.Errorf("%s: genesis accepted", name)
		}
		st.Close()
	}
}

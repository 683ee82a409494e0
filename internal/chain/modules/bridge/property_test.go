package bridge_test

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/modules/bridge"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// TestRandomSequencesKeepTheBooks runs random bridge messages — address
// requests, attestations (right, dust, duplicate, by non-operators),
// withdrawals (good, dust, beyond the balance, to bad addresses), payment
// records and a late halt — from random signers through the real
// application, every block audited (bridge/supply, bridge/pending and
// the bank's btc books), and checks at the end that the accounts' btc sum
// to the supply, which is minted less withdrawn.
func TestRandomSequencesKeepTheBooks(t *testing.T) {
	users := []*acct{newAcct(1), newAcct(2), newAcct(3)}
	ops := []*acct{newAcct(11), newAcct(12), newAcct(13)}
	eve := newAcct(20)
	p, _ := testParams(t, ops...)
	c := newChain(t, p, append(append(append([]*acct{}, users...), ops...), eve)...)
	r := rand.New(rand.NewPCG(7, 25))
	addrs := map[*acct]string{}
	var txids [][32]byte
	var wds uint64
	to := "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
	for step := 0; step < 300; step++ {
		u := users[r.IntN(len(users))]
		var who *acct
		var msg tx.Msg
		switch k := r.IntN(10); {
		case k == 0:
			who, msg = u, bridge.NewAddressMsg()
		case k <= 4 && len(addrs) > 0:
			// attest an old or new deposit to some user's address
			// a deposit is its outpoint with a fixed address and amount
			// (operators agree), one attestation in 8 disagreeing
			var id [32]byte
			if len(txids) > 0 && r.IntN(3) > 0 {
				id = txids[r.IntN(len(txids))]
			} else {
				binary.BigEndian.PutUint64(id[:], r.Uint64())
				txids = append(txids, id)
			}
			owners := make([]string, 0, len(addrs))
			for _, x := range users {
				if a, ok := addrs[x]; ok {
					owners = append(owners, a)
				}
			}
			a := owners[int(id[0])%len(owners)]
			amt := binary.BigEndian.Uint64(id[:]) % 3_000_000
			if r.IntN(8) == 0 {
				amt++
			}
			who = ops[r.IntN(len(ops))]
			if r.IntN(8) == 0 {
				who = eve
			}
			msg = bridge.NewAttestMsg(id, 0, a, amt, h32(byte(id[7])), int64(id[6]))
		case k <= 7:
			amt := uint64(r.IntN(2_000_000))
			dest := to
			if r.IntN(6) == 0 {
				dest = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
			}
			who, msg = u, bridge.NewWithdrawMsg(dest, amt)
		case k == 8 && wds > 0:
			who, msg = ops[r.IntN(len(ops))], bridge.NewPaidMsg(uint64(r.IntN(int(wds))), h32(byte(step)))
		default:
			continue
		}
		if step == 280 {
			who, msg = ops[0], bridge.NewHaltMsg("random halt")
		}
		err := c.do(who, msg)
		if err == nil && msg.Type == bridge.TypeAddress {
			addrs[who] = c.address(who)
		}
		if err == nil && msg.Type == bridge.TypeWithdraw {
			wds++
		}
	}
	v, err := c.route("/api/v1/bridge").Handle(moduleQuery(c), req{})
	if err != nil {
		t.Fatal(err)
	}
	bv := v.(bridge.View)
	var sum uint64
	for _, u := range append(append(append([]*acct{}, users...), ops...), eve) {
		sum += c.btc(u.addr)
	}
	if sum != bv.Supply || bv.Supply != bv.Minted-bv.Withdrawn || bv.Minted == 0 || bv.Withdrawn == 0 {
		t.Fatalf("accounts hold %d sat of btc; view %+v", sum, bv)
	}
}

package rentals_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/rentals"
)

// TestRandomRentalsKeepEveryCoin: random opens, extensions and ends by
// three customers and the provider, at random block intervals, with the
// listing's capacity of two. After every block the module's invariants
// hold (world.endBlock), the money of all parties and the escrow adds up
// to what was minted, no lease ever drew more than it locked, and every
// lease past its paid-up end is closed.
func TestRandomRentalsKeepEveryCoin(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		prov := addr(1)
		custs := []address.Address{addr(2), addr(3), addr(4)}
		fund := map[address.Address]coin.Amount{}
		for _, c := range custs {
			fund[c] = 200_000
		}
		w := newWorld(t, prov, 2, fund)
		rng := rand.New(rand.NewPCG(seed, 7))
		parties := append([]address.Address{prov}, custs...)
		escrow := address.Module(rentals.EscrowAccount)
		var ids []string
		seen := map[string]int{}
		for block := 0; block < 120; block++ {
			for range rng.IntN(3) {
				c := custs[rng.IntN(len(custs))]
				var err error
				switch op := rng.IntN(4); {
				case op == 0 || len(ids) == 0:
					err = w.exec(c, rentals.NewOpenMsg("gpu-1", uint64(5+rng.IntN(60)), 0))
					if err == nil {
						ids = append(ids, w.lastLease(c))
					}
					seen["open"]++
				case op == 1:
					err = w.exec(c, rentals.NewExtendMsg(ids[rng.IntN(len(ids))], uint64(5+rng.IntN(30)), 0))
					seen["extend"]++
				default:
					who := c
					if rng.IntN(3) == 0 {
						who = prov
					}
					err = w.exec(who, rentals.NewEndMsg(ids[rng.IntN(len(ids))]))
					seen["end"]++
				}
				if err != nil {
					seen["refused"]++
					var want bool
					for _, e := range []error{rentals.ErrNoCapacity, rentals.ErrNotActive, rentals.ErrNotParty, rentals.ErrDuration, bank.ErrInsufficientFunds} {
						want = want || errors.Is(err, e)
					}
					if !want {
						t.Fatalf("seed %d: unexpected refusal %v", seed, err)
					}
				}
			}
			w.now = w.now.Add(time.Duration(rng.IntN(4000)) * time.Millisecond) // blocks 2 s to 6 s apart
			w.endBlock()
			var sum coin.Amount
			for _, p := range parties {
				sum += w.bal(p)
			}
			if sum+w.bal(escrow) != 600_000 {
				t.Fatalf("seed %d block %d: parties %d + escrow %d != 600,000", seed, block, sum, w.bal(escrow))
			}
			for _, id := range ids {
				l := w.lease(id)
				if l.Drawn > l.Locked {
					t.Fatalf("lease %s overdrawn: %+v", id, l)
				}
				// The block just ended at w.now - 2 s: a lease paid up to
				// then or earlier must have closed in it.
				if l.Status == rentals.StatusActive && l.EndMs <= w.now.Add(-2*time.Second).UnixMilli() {
					t.Fatalf("lease %s still active past its end: %+v", id, l)
				}
			}
		}
		if seen["open"] == 0 || seen["refused"] == 0 || len(ids) < 3 {
			t.Fatalf("seed %d: the walk did little: %v, %d leases", seed, seen, len(ids))
		}
	}
}

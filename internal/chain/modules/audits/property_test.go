package audits_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
)

// TestInvariantsHoldUnderRandomAuditSequences walks random sequences of
// settlements, reports (right and wrong verifiers, pass and fail),
// registrations, departures and idle blocks; every block is audited by
// the application (audits.held, audits.bonds, the jobs' escrow, staking,
// the supply), and the walk must reach every outcome.
func TestInvariantsHoldUnderRandomAuditSequences(t *testing.T) {
	seen := map[string]int{}
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			p := everyJob()
			p.SpotCheckBps, p.CheckWindowBlocks = 7000, 6
			c := newChain(t, p)
			c.setup(50*coin.Unit, v1, v2, v3)
			vs := []key{v1, v2, v3}
			next := byte(1)
			var open [][]byte
			for range 120 {
				switch r := rng.IntN(10); {
				case r < 3:
					id := jobID(next)
					id[1] = byte(seed)
					next++
					c.settle(c.job(id, uint64(1+rng.IntN(200)), rng.IntN(5) > 0))
					open = append(open, id)
				case r < 7:
					// A report on a check awaiting one, mostly by its verifier.
					var waiting [][]byte
					for _, id := range open {
						if ch := c.check(id); ch != nil {
							if _, ok := ch.Current(); ok {
								waiting = append(waiting, id)
							}
						}
					}
					if len(waiting) == 0 {
						c.block()
						continue
					}
					id := waiting[rng.IntN(len(waiting))]
					cur, _ := c.check(id).Current()
					by := keyOf(cur)
					if rng.IntN(5) == 0 {
						by = vs[rng.IntN(len(vs))]
					}
					pass := rng.IntN(2) == 0
					reason := ""
					if !pass {
						reason = "commitments not reproduced"
					}
					if res := c.do(by, audits.NewReportMsg(id, pass, []byte{byte(r)}, reason)); res.Code == 0 {
						seen["report"]++
					} else {
						seen["refused report"]++
					}
				case r == 7:
					v := vs[rng.IntN(len(vs))]
					if rng.IntN(4) == 0 {
						if r := c.do(v, audits.NewUnregisterMsg()); r.Code == 0 {
							seen["unregister"]++
						}
					} else if r := c.do(v, audits.NewRegisterMsg(100*coin.Unit)); r.Code == 0 {
						seen["register"]++
					}
				default:
					c.block()
				}
			}
			for range p.CheckWindowBlocks * 2 { // every open check ends: reported or timed out
				c.block()
			}
			for _, id := range open {
				if ch := c.check(id); ch != nil {
					seen[audits.StatusName(ch.Status)]++
				} else {
					seen["not drawn"]++
				}
			}
			if held := c.balance(heldAddr()); held != 0 {
				t.Fatalf("audits.held holds %s after every window ended", held)
			}
			c.conserved()
		})
	}
	for _, k := range []string{"report", "refused report", "passed", "fraud_confirmed", "overruled", "timed_out", "not drawn"} {
		if seen[k] == 0 {
			t.Errorf("no %s in any run: %v", k, seen)
		}
	}
	t.Logf("outcomes: %v", seen)
}

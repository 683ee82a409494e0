package audits

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
)

// drawDomain separates the module's draws from any other use of a hash.
const drawDomain = "AITBC/audits/draw/v1\x00"

// Draw is the number a draw of kind ("select", "verifier", "second") for
// job id takes from a block's hash. Every node computes the same; nobody
// who sent a transaction in the block could know it.
func Draw(blockHash []byte, kind string, id []byte) uint64 {
	h := sha256.New()
	h.Write([]byte(drawDomain))
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write(blockHash)
	h.Write(id)
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}

// Selected reports whether a job settled in the block with hash blockHash
// is drawn for a check at spot_check_bps.
func Selected(blockHash, id []byte, spotCheckBps uint64) bool {
	return Draw(blockHash, "select", id)%10_000 < spotCheckBps
}

// EndBlock implements module.EndBlocker: the draws for the jobs settled,
// and the fail claims made, in this block (with its hash), then the
// checks whose window ended.
func (k *Keeper) EndBlock(ctx *module.Context) error {
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	var ids [][]byte
	if err := ctx.KV.Iterate(drawPrefix, false, func(key, _ []byte) bool {
		ids = append(ids, bytes.Clone(key[len(drawPrefix):]))
		return true
	}); err != nil {
		return err
	}
	for _, id := range ids {
		ctx.KV.Delete(keyDraw(id))
		if err := k.draw(ctx, p, id); err != nil {
			return err
		}
	}
	return k.expire(ctx, p)
}

func (k *Keeper) draw(ctx *module.Context, p Params, id []byte) error {
	c, err := k.Check(ctx.KV, id)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("audits: draw for job %x without its check", id)
	}
	switch c.Status {
	case StatusPending:
		if !Selected(ctx.BlockHash, id, p.SpotCheckBps) {
			// Not drawn: paid now, in the block that settled it, and no
			// record kept.
			if err := k.payOut(ctx, c, c.Amount); err != nil {
				return err
			}
			ctx.KV.Delete(keyCheck(id))
			return nil
		}
		if err := k.updateMiner(ctx.KV, c.MinerAddr(), func(m *MinerRecord) { m.Drawn++ }); err != nil {
			return err
		}
		v, ok, err := k.pick(ctx, p, c, "verifier")
		if err != nil {
			return err
		}
		if !ok {
			if err := k.payOut(ctx, c, c.Amount); err != nil {
				return err
			}
			return k.finish(ctx, c, StatusUnchecked)
		}
		c.Verifier = v[:]
		return k.assign(ctx, p, c, v, StatusAssigned)
	case StatusDisputed:
		v, ok, err := k.pick(ctx, p, c, "second")
		if err != nil {
			return err
		}
		if !ok {
			// Nobody can check the claim: it stands unproven, so the miner
			// is freed and paid, and the claimant is not slashed either.
			if err := k.updateVerifier(ctx.KV, c.VerifierAddr(), func(r *Verifier) { r.Open-- }); err != nil {
				return err
			}
			if err := k.release(ctx, c, c.Amount); err != nil {
				return err
			}
			return k.finish(ctx, c, StatusUnchecked)
		}
		c.Second = v[:]
		return k.assign(ctx, p, c, v, StatusRechecking)
	}
	return fmt.Errorf("audits: draw for job %x in status %s", id, StatusName(c.Status))
}

func (k *Keeper) assign(ctx *module.Context, p Params, c *Check, v address.Address, status uint8) error {
	if err := k.updateVerifier(ctx.KV, v, func(r *Verifier) { r.Open++ }); err != nil {
		return err
	}
	c.Status, c.Deadline = status, ctx.Height+p.CheckWindowBlocks
	ctx.KV.Set(keyDue(c.Deadline, c.JobID), []byte{1})
	ctx.KV.Set(keyAssigned(v, c.JobID), []byte{1})
	return put(ctx.KV, keyCheck(c.JobID), c)
}

// pick draws a verifier for c among those bonded at least min_bond, not
// the job's miner, customer or payee, nor its first verifier.
func (k *Keeper) pick(ctx *module.Context, p Params, c *Check, kind string) (address.Address, bool, error) {
	var eligible []address.Address
	var bad error
	err := ctx.KV.Iterate(VerifierPrefix, false, func(key, val []byte) bool {
		a, err := address.FromBytes(key[len(VerifierPrefix):])
		if err != nil {
			bad = fmt.Errorf("audits: corrupt verifier key %x", key)
			return false
		}
		if a == c.MinerAddr() || a == c.CustomerAddr() || a == c.PayToAddr() || (len(c.Verifier) > 0 && a == c.VerifierAddr()) {
			return true
		}
		v, err := decode[Verifier](key, val)
		if err != nil {
			bad = err
			return false
		}
		if v.Bond >= p.MinBond {
			eligible = append(eligible, a)
		}
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil || len(eligible) == 0 {
		return address.Address{}, false, err
	}
	return eligible[Draw(ctx.BlockHash, kind, c.JobID)%uint64(len(eligible))], true, nil
}

// expire ends the checks whose verifier let its window pass (it may
// report up to its deadline height, whose transactions run before this): its bond is
// cut, and the miner is paid in full (and freed, in a dispute). A fail
// claim whose second verifier timed out stands unproven: its claimant is
// not slashed.
func (k *Keeper) expire(ctx *module.Context, p Params) error {
	var ids [][]byte
	var keys [][]byte
	if err := ctx.KV.Iterate(duePrefix, false, func(key, _ []byte) bool {
		rest := key[len(duePrefix):]
		if int64(binary.BigEndian.Uint64(rest[:8])) > ctx.Height {
			return false
		}
		keys = append(keys, bytes.Clone(key))
		ids = append(ids, bytes.Clone(rest[8:]))
		return true
	}); err != nil {
		return err
	}
	for i, id := range ids {
		ctx.KV.Delete(keys[i])
		c, err := k.Check(ctx.KV, id)
		if err != nil {
			return err
		}
		if c == nil {
			return fmt.Errorf("audits: deadline of job %x without its check", id)
		}
		cur, ok := c.Current()
		if !ok {
			return fmt.Errorf("audits: deadline of job %x that awaits no report", id)
		}
		ctx.KV.Delete(keyAssigned(cur, id))
		cut, err := k.cutBond(ctx, cur, p.TimeoutSlashBps, func(v *Verifier) { v.Open--; v.TimedOut++ })
		if err != nil {
			return err
		}
		if c.Status == StatusRechecking {
			if err := k.updateVerifier(ctx.KV, c.VerifierAddr(), func(r *Verifier) { r.Open-- }); err != nil {
				return err
			}
		}
		if err := k.release(ctx, c, c.Amount); err != nil {
			return err
		}
		c.BondSlash = cut
		if err := k.finish(ctx, c, StatusTimedOut); err != nil {
			return err
		}
	}
	return nil
}

package coordinator

// Private jobs (docs/VERIFICATION.md, "Private receipts"): the customer
// asks that its usage stays off the public record. The coordinator creates
// such a job with jobs/create_for_private (a wallet-paid one the customer
// created with jobs/create_private), tells the miner, which signs a
// private receipt committing to its usage with a blinding it draws and
// hands the coordinator the blinding, and settles it with
// jobs/settle_private and a proof made with the coordinator's proving key.
// The public receipt, with token counts and price, stays between the
// customer, the coordinator and the miner.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	chainzk "github.com/aitbc/aitbc/internal/chain/zk"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/zk"
)

// ErrPrivateUnavailable refuses a private job this coordinator cannot
// settle: it has no proving key, or the chain no verifying key.
var ErrPrivateUnavailable = errors.New("coordinator: private jobs unavailable")

// Prover proves private settlements (*zk.Prover): loaded once, kept.
type Prover interface {
	Prove(s zk.Statement, o zk.Opening) ([]byte, error)
}

// privateChain is what private settlement reads from the chain beyond
// ChainView: whether a job is private, and the facts its proof's
// statement is made of. FromRPC's view has it.
type privateChain interface {
	Privacy(ctx context.Context, id string) (jobs.PrivacyView, error)
	SettleFacts(ctx context.Context, id string) (jobs.Params, jobs.View, error)
}

// Privacy asks the node whether job id is private.
func (v rpcView) Privacy(ctx context.Context, id string) (jobs.PrivacyView, error) {
	raw, err := jobs.ParseID(id)
	if err != nil {
		return jobs.PrivacyView{}, err
	}
	return jobs.QueryPrivacy(ctx, v.c, raw)
}

// SettleFacts reads the jobs parameters and the job's record.
func (v rpcView) SettleFacts(ctx context.Context, id string) (jobs.Params, jobs.View, error) {
	p, err := jobs.QueryParams(ctx, v.c)
	if err != nil {
		return p, jobs.View{}, err
	}
	j, err := jobs.QueryJob(ctx, v.c, id)
	return p, j, err
}

func (s *Service) privateChain() (privateChain, error) {
	pc, ok := s.view.(privateChain)
	if !ok || s.cfg.Prover == nil {
		return nil, errf(ErrPrivateUnavailable, "this coordinator has no proving key for private jobs")
	}
	return pc, nil
}

// checkPrivateRequest runs at Submit: a private job needs the prover, and
// a wallet-paid job's privacy is what the chain says it is (a public
// escrow cannot be settled privately, nor a private one publicly).
func (s *Service) checkPrivateRequest(ctx context.Context, r *JobRequest, j *store.Job) error {
	if r.ID == "" {
		if r.Private {
			if _, err := s.privateChain(); err != nil {
				return err
			}
			j.Private = true
		}
		return nil
	}
	pc, ok := s.view.(privateChain)
	if !ok {
		if r.Private {
			return errf(ErrPrivateUnavailable, "this coordinator cannot read job privacy from its chain view")
		}
		return nil
	}
	pv, err := pc.Privacy(ctx, j.ID)
	if err != nil {
		return fmt.Errorf("coordinator: chain: %w", err)
	}
	switch {
	case pv.Private != r.Private:
		return errf(ErrEscrowMismatch, "job %s is %s on chain, the request asks private=%v", j.ID, map[bool]string{true: "private", false: "public"}[pv.Private], r.Private)
	case pv.Private:
		if _, err := s.privateChain(); err != nil {
			return err
		}
		j.Private = true
	}
	return nil
}

// checkPrivateResult checks a private job's result: the miner signed a
// private receipt for the same run as its public one, whose commitment
// opens to the public receipt's usage with the blinding it sent.
func (s *Service) checkPrivateResult(j *store.Job, mc *minerConn, e minerproto.Envelope) error {
	if !j.Private {
		return nil
	}
	pub, err := jobs.DecodeReceipt(e.Receipt)
	if err != nil {
		return err
	}
	var pr jobs.PrivateReceipt
	if err := tx.Unmarshal(e.PrivateReceipt, &pr); err != nil {
		return fmt.Errorf("private receipt: %w", err)
	}
	if err := pr.Verify(mc.pub); err != nil {
		return fmt.Errorf("private receipt: %w", err)
	}
	o, err := openingOf(pub, e.ZKBlinding)
	if err != nil {
		return err
	}
	o.PricePer1000 = uint64(j.PricePer1k) // the price the miner was told to charge, as its public receipt did
	c, err := chainzk.Commit(o)
	if err != nil {
		return err
	}
	want := jobs.PrivateOf(pub, c)
	want.Sig = pr.Sig
	wb, _ := tx.Marshal(want)
	if string(wb) != string(e.PrivateReceipt) {
		return errors.New("private receipt does not match the public receipt and blinding")
	}
	return nil
}

// openingOf is what a private receipt's commitment hides, less the price
// per 1,000 (the caller's: the job's): the public receipt's token counts
// and the miner's blinding.
func openingOf(r *jobs.Receipt, blindingHex string) (zk.Opening, error) {
	var o zk.Opening
	b, err := hex.DecodeString(blindingHex)
	if err != nil || len(b) != 32 {
		return o, errors.New("private result: blinding must be 64 hex digits")
	}
	copy(o.Blinding[:], b)
	o.TokensIn, o.TokensOut = r.TokensIn, r.TokensOut
	return o, nil
}

// privateSettleMsg builds a private job's settlement: the statement from
// the chain's own Split (jobs.PrivateStatement), proven for the usage.
func (s *Service) privateSettleMsg(ctx context.Context, j *store.Job) (*tx.Msg, error) {
	pc, err := s.privateChain()
	if err != nil {
		return nil, err
	}
	pub, err := jobs.DecodeReceipt(j.Receipt)
	if err != nil {
		return nil, err
	}
	var pr jobs.PrivateReceipt
	if err := tx.Unmarshal(j.PrivateReceipt, &pr); err != nil {
		return nil, fmt.Errorf("coordinator: private receipt of %s: %w", j.ID, err)
	}
	o, err := openingOf(pub, j.ZKBlinding)
	if err != nil {
		return nil, err
	}
	p, cj, err := pc.SettleFacts(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	o.PricePer1000 = uint64(j.PricePer1k)
	var com [chainzk.CommitmentSize]byte
	copy(com[:], pr.Commitment)
	paid := jobs.PriceFor(pub.TokensOut, cj.PricePer1k)
	st, err := jobs.PrivateStatement(p, &jobs.Job{Escrow: cj.Escrow, PricePer1k: cj.PricePer1k, MaxTokens: cj.MaxTokens}, com, paid)
	if err != nil {
		return nil, err
	}
	proof, err := s.cfg.Prover.Prove(st, o)
	if err != nil {
		return nil, fmt.Errorf("coordinator: prove settlement of %s: %w", j.ID, err)
	}
	msg := jobs.NewSettlePrivateMsg(pr, paid, proof)
	return &msg, nil
}

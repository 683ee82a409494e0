package jobs

// Private jobs: a customer may ask that its usage stays off the public
// record. Such a job is created with jobs/create_private (or a
// coordinator's jobs/create_for_private) and settled only with
// jobs/settle_private, whose receipt holds a commitment to the usage
// (internal/zk: MiMC of tokens in, tokens out, price per 1,000 and a
// blinding) instead of the token counts and price, and whose Groth16 proof
// shows that the money the chain is about to move is exactly what that
// usage costs. The chain checks the proof against the verifying key in
// its state (genesis entry "private_vk") before it moves any coin.
//
// What stays public: the job's model, prompt hash and escrow (as for every
// job), the amounts paid, fee, commission and refund (they are transfers),
// and the assigned miner's listed price. So the token count is hidden only
// up to what paid ÷ price reveals; tokens in are hidden entirely
// (docs/VERIFICATION.md, "Private receipts").

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/chain/zk"
)

// Message types of private jobs.
const (
	TypeCreatePrivate    = "jobs/create_private"
	TypeCreateForPrivate = "jobs/create_for_private"
	TypeSettlePrivate    = "jobs/settle_private"
)

// MaxPrivateSettlesPerBlock bounds the proofs one block verifies: about
// 2 ms each on one core (docs/PERFORMANCE.md), so at most ~30 ms of a
// 300 ms block. A settlement beyond it is refused (ErrPrivateBusy) and
// the coordinator sends it again in a later block.
const MaxPrivateSettlesPerBlock = 16

// Errors of private jobs (codes from 40, apart from the module's others).
var (
	ErrPrivateProof    = errs.Register("jobs", 40, "private_proof_invalid", "private settlement proof rejected")
	ErrNotPrivate      = errs.Register("jobs", 41, "job_not_private", "job is public: settle it with its receipt")
	ErrPrivateJob      = errs.Register("jobs", 42, "job_is_private", "job is private: settle it with a commitment and a proof")
	ErrPrivateDisabled = errs.Register("jobs", 43, "private_jobs_disabled", "the chain has no verifying key for private jobs")
	ErrPrivateEscrow   = errs.Register("jobs", 44, "private_escrow_short", "escrow does not cover a private job's price, fee and commission")
	ErrPrivateBusy     = errs.Register("jobs", 45, "private_block_full", "block already verified its share of private settlement proofs")
	ErrCommitment      = errs.Register("jobs", 46, "private_commitment_invalid", "commitment is not a BN254 scalar")
)

// PrivateReceiptDomain prefixes the digest a miner signs for a private job.
const PrivateReceiptDomain = "AITBC/receipt/private/v1\x00"

// PrivateReceipt is a miner's signed account of a private job: a Receipt
// whose token counts and price are replaced by Commitment.
type PrivateReceipt struct {
	_          struct{} `cbor:",toarray"`
	JobID      []byte
	ChainID    string
	Miner      []byte
	Customer   []byte
	Model      string
	PromptHash []byte
	ResultHash []byte
	Commitment []byte // zk.Commit of (tokens in, tokens out, price per 1,000, blinding): 32 bytes
	StartMs    int64
	EndMs      int64
	AttestHash []byte // as Receipt.AttestHash; empty when none
	Sig        []byte
}

// PrivateOf turns a miner's public receipt into the private one it signs
// for the same run: everything but the usage, plus commitment.
func PrivateOf(r *Receipt, commitment [zk.CommitmentSize]byte) PrivateReceipt {
	return PrivateReceipt{JobID: r.JobID, ChainID: r.ChainID, Miner: r.Miner, Customer: r.Customer, Model: r.Model,
		PromptHash: r.PromptHash, ResultHash: r.ResultHash, Commitment: commitment[:], StartMs: r.StartMs, EndMs: r.EndMs,
		AttestHash: r.AttestHash}
}

// SignBytes is the digest the miner signs.
func (r *PrivateReceipt) SignBytes() []byte {
	doc := *r
	doc.Sig = nil
	b, err := tx.Marshal(doc)
	if err != nil {
		panic(err) // plain fields always encode
	}
	h := sha256.New()
	h.Write([]byte(PrivateReceiptDomain))
	h.Write(b)
	return h.Sum(nil)
}

// SignWith signs with the miner's key (as Receipt.SignWith).
func (r *PrivateReceipt) SignWith(pub ed25519.PublicKey, sign func(msg []byte) []byte) {
	a := address.FromPubKey(pub)
	r.Miner = a[:]
	r.Sig = sign(r.SignBytes())
}

// CheckShape validates sizes, without the signature.
func (r *PrivateReceipt) CheckShape() error {
	switch {
	case len(r.JobID) != IDLen:
		return fmt.Errorf("%w: job id is %d bytes", ErrReceipt, len(r.JobID))
	case len(r.Miner) != address.Len || len(r.Customer) != address.Len:
		return fmt.Errorf("%w: miner or customer address", ErrReceipt)
	case len(r.PromptHash) != sha256.Size || len(r.ResultHash) != sha256.Size:
		return fmt.Errorf("%w: prompt and result hashes must be SHA-256", ErrReceipt)
	case r.EndMs < r.StartMs:
		return fmt.Errorf("%w: ends before it starts", ErrReceipt)
	case len(r.AttestHash) != 0 && len(r.AttestHash) != sha256.Size:
		return fmt.Errorf("%w: attestation hash is %d bytes", ErrReceipt, len(r.AttestHash))
	case len(r.Sig) != ed25519.SignatureSize:
		return fmt.Errorf("%w: signature is %d bytes", ErrReceipt, len(r.Sig))
	}
	return nil
}

// Verify checks the shape and that pub, the miner's key, signed it.
func (r *PrivateReceipt) Verify(pub ed25519.PublicKey) error {
	if err := r.CheckShape(); err != nil {
		return err
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key", ErrReceipt)
	}
	if a := address.FromPubKey(pub); string(a[:]) != string(r.Miner) {
		return fmt.Errorf("%w: key does not belong to miner", ErrReceipt)
	}
	if !tx.VerifySignature(pub, r.SignBytes(), r.Sig) {
		return fmt.Errorf("%w: bad signature", ErrReceipt)
	}
	return nil
}

// Hash is the SHA-256 of the receipt's canonical bytes, anchored on chain
// as a public receipt's is.
func (r *PrivateReceipt) Hash() ([32]byte, error) {
	b, err := tx.Marshal(r)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// MsgSettlePrivate settles a private job: the miner's private receipt,
// the price it claims (paid to the miner, public anyway as a transfer) and
// the proof that the committed usage costs exactly that.
type MsgSettlePrivate struct {
	_       struct{} `cbor:",toarray"`
	Receipt PrivateReceipt
	Paid    coin.Amount
	Proof   []byte
}

// NewCreatePrivateMsg builds a private job paid from the signer's balance.
func NewCreatePrivateMsg(s Spec, coordinator address.Address) tx.Msg {
	return must(tx.NewMsg(TypeCreatePrivate, MsgCreate{Spec: s, Coordinator: coordinator[:]}))
}

// NewCreateForPrivateMsg builds a private job for customer, paid from its
// deposit with the signing coordinator.
func NewCreateForPrivateMsg(s Spec, customer address.Address) tx.Msg {
	return must(tx.NewMsg(TypeCreateForPrivate, MsgCreateFor{Spec: s, Customer: customer[:]}))
}

// NewSettlePrivateMsg builds a private settlement.
func NewSettlePrivateMsg(r PrivateReceipt, paid coin.Amount, proof []byte) tx.Msg {
	return must(tx.NewMsg(TypeSettlePrivate, MsgSettlePrivate{Receipt: r, Paid: paid, Proof: proof}))
}

// PrivateStatement is what the proof of a private settlement must show
// for job j, its parameters p, the commitment and the price paid: the
// chain computes it, and so does the prover (the coordinator), from the
// same Split, so that both agree on every public input.
func PrivateStatement(p Params, j *Job, commitment [zk.CommitmentSize]byte, paid coin.Amount) (zk.Statement, error) {
	s := Split(p, j.Escrow, paid)
	if s.Price != paid {
		return zk.Statement{}, fmt.Errorf("%w: escrow %s, price %s needs %s", ErrPrivateEscrow, j.Escrow, paid, p.MaxCost(paid))
	}
	return zk.Statement{Commitment: commitment, Escrow: uint64(j.Escrow), Paid: uint64(s.Price), Fees: uint64(s.Fee + s.Commission),
		Refund: uint64(s.Refund), MaxPricePer1k: uint64(j.PricePer1k), MaxTokens: j.MaxTokens}, nil
}

// Keys of private jobs' state.
var (
	keyPrivateVK    = []byte("jobs/zk/vk")
	keyPrivateBlock = []byte("jobs/zk/block") // height and count of proofs verified in it
	privatePrefix   = []byte("jobs/zk/p/")    // job id → its commitment once settled, {0} before
	privateOpen     = []byte{0}               // a private job not yet settled
)

func keyPrivate(id []byte) []byte {
	return append(privatePrefix[:len(privatePrefix):len(privatePrefix)], id...)
}

// IsPrivate reports whether job id was created private.
func (*Keeper) IsPrivate(r state.Reader, id []byte) (bool, error) {
	b, err := r.Get(keyPrivate(id))
	return b != nil, err
}

// PrivateCommitment is a settled private job's commitment (nil before).
func (*Keeper) PrivateCommitment(r state.Reader, id []byte) ([]byte, error) {
	b, err := r.Get(keyPrivate(id))
	if err != nil || len(b) != zk.CommitmentSize {
		return nil, err
	}
	return b, nil
}

// refusePrivate is the public settlement's guard.
func (k *Keeper) refusePrivate(r state.Reader, id []byte) error {
	if p, err := k.IsPrivate(r, id); err != nil {
		return err
	} else if p {
		return fmt.Errorf("%w: %x", ErrPrivateJob, id)
	}
	return nil
}

// privateVerifiers caches parsed verifying keys by their hash: parsing
// one costs more than verifying a proof, and the key changes only with a
// new genesis.
type privateVerifiers struct {
	mu sync.Mutex
	m  map[[32]byte]*zk.Verifier
}

func (c *privateVerifiers) get(vk []byte) (*zk.Verifier, error) {
	h := sha256.Sum256(vk)
	c.mu.Lock()
	v := c.m[h]
	c.mu.Unlock()
	if v != nil {
		return v, nil
	}
	v, err := zk.NewVerifier(vk)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) > 4 {
		c.m = map[[32]byte]*zk.Verifier{}
	}
	c.m[h] = v
	c.mu.Unlock()
	return v, nil
}

// PrivateVerifyingKey reads the chain's verifying key (nil: private jobs
// are disabled).
func (*Keeper) PrivateVerifyingKey(r state.Reader) ([]byte, error) { return r.Get(keyPrivateVK) }

// privateGenesis is the part of the jobs genesis entry for private jobs.
type privateGenesis struct {
	VerifyingKey []byte `json:"private_vk,omitempty"` // base64 of zk.Keys.Verifying
}

// initPrivate stores the genesis verifying key, after checking it parses.
func (k *Keeper) initPrivate(ctx *module.Context, raw []byte) error {
	if raw == nil {
		return nil
	}
	var g privateGenesis
	if err := json.Unmarshal(raw, &g); err != nil {
		return fmt.Errorf("jobs: genesis private_vk: %w", err)
	}
	if len(g.VerifyingKey) == 0 {
		return nil
	}
	if _, err := k.private.get(g.VerifyingKey); err != nil {
		return fmt.Errorf("jobs: genesis private_vk: %w", err)
	}
	ctx.KV.Set(keyPrivateVK, g.VerifyingKey)
	return nil
}

func (k *Keeper) execPrivate(ctx *module.Context, p Params, msg tx.Msg) error {
	switch msg.Type {
	case TypeCreatePrivate, TypeCreateForPrivate:
		if vk, err := k.PrivateVerifyingKey(ctx.KV); err != nil {
			return err
		} else if vk == nil {
			return ErrPrivateDisabled
		}
		var spec Spec
		var cust, coord address.Address
		if msg.Type == TypeCreatePrivate {
			var m MsgCreate
			if err := msg.DecodeBody(&m); err != nil {
				return err
			}
			c, err := address.FromBytes(m.Coordinator)
			if err != nil {
				return fmt.Errorf("%w: coordinator: %v", ErrInvalidJob, err)
			}
			spec, cust, coord = m.Spec, ctx.Signer, c
		} else {
			var m MsgCreateFor
			if err := msg.DecodeBody(&m); err != nil {
				return err
			}
			c, err := address.FromBytes(m.Customer)
			if err != nil {
				return fmt.Errorf("%w: customer: %v", ErrInvalidJob, err)
			}
			spec, cust, coord = m.Spec, c, ctx.Signer
		}
		if err := k.create(ctx, p, spec, cust, coord, msg.Type == TypeCreateForPrivate); err != nil {
			return err
		}
		ctx.KV.Set(keyPrivate(spec.ID), privateOpen)
		return nil
	case TypeSettlePrivate:
		var m MsgSettlePrivate
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.settlePrivate(ctx, p, &m)
	}
	return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

// settlePrivate settles a private job: guard clauses (the receipt, the
// job, the miner's signature, the proof), then the same payouts as a
// public settlement.
func (k *Keeper) settlePrivate(ctx *module.Context, p Params, m *MsgSettlePrivate) error {
	r := &m.Receipt
	if err := r.CheckShape(); err != nil {
		return fmt.Errorf("%w: %v", ErrReceiptInvalid, err)
	}
	var com [zk.CommitmentSize]byte
	if len(r.Commitment) != zk.CommitmentSize || !zk.Canonical(r.Commitment) {
		return fmt.Errorf("%w: need 32 big-endian bytes below the BN254 scalar field's modulus, got %d bytes %x", ErrCommitment, len(r.Commitment), r.Commitment)
	}
	copy(com[:], r.Commitment)
	if len(m.Proof) == 0 || len(m.Proof) > zk.MaxProofSize {
		return fmt.Errorf("%w: proof of %d bytes (1-%d)", ErrPrivateProof, len(m.Proof), zk.MaxProofSize)
	}
	j, err := k.job(ctx, r.JobID)
	if err != nil {
		return err
	}
	if priv, err := k.IsPrivate(ctx.KV, j.ID); err != nil {
		return err
	} else if !priv {
		return fmt.Errorf("%w: %x", ErrNotPrivate, j.ID)
	}
	if err := checkSettleable(ctx, j, r.ChainID, r.Miner, r.Customer, r.Model, r.PromptHash); err != nil {
		return err
	}
	mi, err := k.miners.Get(ctx.KV, j.MinerAddr())
	if err != nil {
		return err
	}
	if mi == nil {
		return fmt.Errorf("%w: miner %s left the registry", ErrReceiptInvalid, j.MinerAddr())
	}
	if err := r.Verify(ed25519.PublicKey(mi.PubKey)); err != nil {
		return fmt.Errorf("%w: %v", ErrReceiptInvalid, err)
	}
	st, err := PrivateStatement(p, j, com, m.Paid)
	if err != nil {
		return err
	}
	vk, err := k.PrivateVerifyingKey(ctx.KV)
	if err != nil {
		return err
	}
	if vk == nil {
		return ErrPrivateDisabled
	}
	n, err := k.countPrivate(ctx)
	if err != nil {
		return err
	}
	v, err := k.private.get(vk)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPrivateDisabled, err)
	}
	if err := v.Verify(st, m.Proof); err != nil {
		return fmt.Errorf("%w: %v", ErrPrivateProof, err)
	}
	h, err := r.Hash()
	if err != nil {
		return err
	}
	// The proof holds: pay out exactly as a public settlement would. The
	// miner registry and the rewards module count work in tokens; a
	// private job reports the tokens its pay buys at the listed price
	// (what paid and that price already reveal), not the hidden count.
	tokens := uint64(0)
	if j.PricePer1k > 0 {
		tokens = uint64(m.Paid.MulDiv(1000, uint64(j.PricePer1k)))
	}
	if k.bindings != nil {
		bound, err := k.bindings.Settling(ctx.KV, j.ID, tokens)
		if err != nil {
			return err
		}
		if bound {
			// The agreement pays its provider by the token count, which a
			// private job does not reveal.
			return fmt.Errorf("%w: %x is bound to a marketplace agreement, which pays by public token counts", ErrPrivateJob, j.ID)
		}
	}
	s := Split(p, j.Escrow, m.Paid)
	payTo := j.MinerAddr()
	if k.earnings != nil {
		if payTo, err = k.earnings.Settled(ctx, j.MinerAddr(), tokens, s.Price, s.Fee); err != nil {
			return err
		}
	}
	if s.Price > 0 {
		if err := k.bank.Send(ctx.KV, k.escrow, payTo, s.Price); err != nil {
			return err
		}
	}
	if err := k.bank.CollectFee(ctx.KV, k.escrow, s.Fee); err != nil {
		return err
	}
	if s.Commission > 0 {
		if err := k.bank.Send(ctx.KV, k.escrow, j.CoordinatorAddr(), s.Commission); err != nil {
			return err
		}
	}
	if err := k.refund(ctx.KV, j, s.Refund); err != nil {
		return err
	}
	if err := k.miners.RecordSettlement(ctx.KV, j.MinerAddr(), tokens); err != nil {
		return err
	}
	j.Status, j.Paid, j.Fee, j.Commission, j.Refund, j.ReceiptHash, j.Settled = StatusSettled, s.Price, s.Fee, s.Commission, s.Refund, h[:], ctx.Height
	ctx.KV.Set(keyReceipt(h), j.ID)
	ctx.KV.Set(keyPrivate(j.ID), com[:])
	putPrivateCount(ctx.KV, ctx.Height, n+1)
	ctx.Touch(j.MinerAddr())
	ctx.Touch(j.CustomerAddr())
	return k.put(ctx.KV, j)
}

// countPrivate returns how many proofs this block has verified, refusing
// one more beyond the bound.
func (k *Keeper) countPrivate(ctx *module.Context) (int64, error) {
	b, err := ctx.KV.Get(keyPrivateBlock)
	if err != nil {
		return 0, err
	}
	var rec privateCount
	if b != nil {
		if err := tx.Unmarshal(b, &rec); err != nil {
			return 0, fmt.Errorf("jobs: corrupt private proof count: %w", err)
		}
	}
	if rec.Height != ctx.Height {
		return 0, nil
	}
	if rec.N >= MaxPrivateSettlesPerBlock {
		return 0, fmt.Errorf("%w: %d in block %d", ErrPrivateBusy, rec.N, ctx.Height)
	}
	return rec.N, nil
}

type privateCount struct {
	_      struct{} `cbor:",toarray"`
	Height int64
	N      int64
}

func putPrivateCount(kv *state.Cache, height, n int64) {
	b, err := tx.Marshal(privateCount{Height: height, N: n})
	if err != nil {
		panic(err) // two integers always encode
	}
	kv.Set(keyPrivateBlock, b)
}

// PrivacyView is GET /api/v1/jobs/{id}/privacy: whether a job is
// private and, once settled, the commitment its receipt holds in place of
// token counts and price.
type PrivacyView struct {
	ID         string `json:"job_id"`
	Private    bool   `json:"private"`
	Commitment string `json:"commitment,omitempty"` // hex, 32 bytes
}

func (k *Keeper) queryPrivacy(q module.Query, in module.Request) (any, error) {
	id, err := ParseID(in.PathValue("id"))
	if err != nil {
		return nil, err
	}
	j, err := k.Get(q.State, id)
	if err != nil {
		return nil, err
	}
	if j == nil {
		return nil, fmt.Errorf("%w: %x", ErrJobNotFound, id)
	}
	b, err := q.State.Get(keyPrivate(id))
	if err != nil {
		return nil, err
	}
	out := PrivacyView{ID: hex.EncodeToString(id), Private: b != nil}
	if len(b) == zk.CommitmentSize {
		out.Commitment = hex.EncodeToString(b)
	}
	return out, nil
}

// QueryPrivacy asks a node whether job id is private, and its commitment.
func QueryPrivacy(ctx context.Context, g module.Getter, id []byte) (PrivacyView, error) {
	var out PrivacyView
	return out, g.GetJSON(ctx, "/api/v1/jobs/"+hex.EncodeToString(id)+"/privacy", &out)
}

// describePrivate describes private jobs' messages: a settlement shows
// its commitment and what was paid, never usage.
func (k *Keeper) describePrivate(msg tx.Msg) (any, error) {
	switch msg.Type {
	case TypeCreatePrivate, TypeCreateForPrivate:
		var m MsgCreate
		if msg.Type == TypeCreatePrivate {
			if err := msg.DecodeBody(&m); err != nil {
				return nil, err
			}
		} else {
			var f MsgCreateFor
			if err := msg.DecodeBody(&f); err != nil {
				return nil, err
			}
			m.Spec = f.Spec
		}
		return map[string]any{"job_id": hex.EncodeToString(m.Spec.ID), "model": m.Spec.Model, "max_tokens": m.Spec.MaxTokens,
			"max_price": m.Spec.MaxPrice, "ttl_s": m.Spec.TTLSeconds, "private": true}, nil
	case TypeSettlePrivate:
		var m MsgSettlePrivate
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		h, _ := m.Receipt.Hash()
		return map[string]any{"job_id": hex.EncodeToString(m.Receipt.JobID), "private": true,
			"commitment": hex.EncodeToString(m.Receipt.Commitment), "paid": m.Paid, "proof_bytes": len(m.Proof),
			"receipt_hash": hex.EncodeToString(h[:])}, nil
	}
	return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

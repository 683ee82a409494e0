package jobs

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// A split job runs through a route of span servers (internal/swarm,
// docs/DISTRIBUTED.md) rather than on one assigned miner. Each span server
// signs a stage receipt for each of its inference sessions: the layers it
// ran, how many positions (tokens) it processed, and hash chains of every
// position's input and output, one row at a time. The coordinator settles
// the job with jobs/settle_stages carrying every stage receipt: first
// the final route in layer order, each stage's input chain equal to the
// output chain of the stage before it, then the stages of servers that
// dropped out mid-generation. The chain checks every signature and every
// span against the server's agent record, and pays each server in
// proportion to layers × tokens it computed.

// TypeSettleStages settles a split job with its chain of stage receipts.
const TypeSettleStages = "jobs/settle_stages"

// StageDomain prefixes the digest a span server signs.
const StageDomain = "AITBC/stage/v1\x00"

// Bounds of a stage settlement.
const (
	MaxStages   = 64   // stage receipts of one job (route and dropped servers)
	MaxLayers   = 4096 // layers of a split model
	MaxSession  = 64   // bytes of a session id
	StageHashSz = 32
)

// Errors of stage settlements. Codes from 60 on: the jobs codespace's
// low numbers are shared by the other parts of the module.
var (
	ErrStageInvalid   = errs.Register("jobs", 60, "invalid_stage_receipt", "a stage receipt is malformed or does not match the job")
	ErrStageSignature = errs.Register("jobs", 61, "bad_stage_signature", "a stage receipt's signature or key does not check")
	ErrStageSpan      = errs.Register("jobs", 62, "stage_span_not_announced", "a stage's layers are not a span its server announced on chain")
	ErrStageOverclaim = errs.Register("jobs", 63, "stage_tokens_overclaimed", "a stage claims more tokens than the job processed")
	ErrStageRoute     = errs.Register("jobs", 64, "invalid_stage_route", "the route's stages do not cover the layers in order or do not chain")
	ErrStageDuplicate = errs.Register("jobs", 65, "duplicate_stage", "a stage receipt appears twice")
)

// StageReceipt is a span server's signed account of one session of a
// split job. InHash and OutHash are hash chains over the session's rows
// in position order (StageChain): the input rows (token ids for layer 0,
// hidden states otherwise) and the output rows (hidden states, or the
// logits the last span returned).
type StageReceipt struct {
	_       struct{} `cbor:",toarray"`
	JobID   []byte
	ChainID string
	Session string
	Server  []byte // the server's agent address
	PubKey  []byte // its ed25519 key (the address is derived from it)
	Model   string
	First   uint32 // layers First..Last, inclusive
	Last    uint32
	Tokens  uint64 // positions processed
	InHash  []byte
	OutHash []byte
	Sig     []byte
}

type stageDoc struct {
	_       struct{} `cbor:",toarray"`
	JobID   []byte
	ChainID string
	Session string
	Server  []byte
	Model   string
	First   uint32
	Last    uint32
	Tokens  uint64
	InHash  []byte
	OutHash []byte
}

// SignBytes is the digest the server signs.
func (s *StageReceipt) SignBytes() []byte {
	b, _ := tx.Marshal(stageDoc{JobID: s.JobID, ChainID: s.ChainID, Session: s.Session, Server: s.Server, Model: s.Model,
		First: s.First, Last: s.Last, Tokens: s.Tokens, InHash: s.InHash, OutHash: s.OutHash})
	h := sha256.Sum256(append([]byte(StageDomain), b...))
	return h[:]
}

// SignWith fills Server and PubKey from pub and signs.
func (s *StageReceipt) SignWith(pub ed25519.PublicKey, sign func(msg []byte) []byte) {
	a := address.FromPubKey(pub)
	s.Server, s.PubKey = a[:], append([]byte(nil), pub...)
	s.Sig = sign(s.SignBytes())
}

// Layers is the number of layers the stage ran.
func (s *StageReceipt) Layers() uint64 { return uint64(s.Last) - uint64(s.First) + 1 }

// ServerAddr is the stage's server.
func (s *StageReceipt) ServerAddr() address.Address { a, _ := address.FromBytes(s.Server); return a }

// Verify checks the receipt alone: sizes, key, signature.
func (s *StageReceipt) Verify() error {
	switch {
	case len(s.JobID) != IDLen || s.ChainID == "" || len(s.ChainID) > 64 || s.Model == "" || len(s.Model) > 128:
		return fmt.Errorf("%w: job id, chain id or model", ErrStageInvalid)
	case s.Session == "" || len(s.Session) > MaxSession:
		return fmt.Errorf("%w: session id of %d bytes", ErrStageInvalid, len(s.Session))
	case s.Last < s.First || s.Last >= MaxLayers || s.Tokens == 0:
		return fmt.Errorf("%w: layers %d-%d, %d tokens", ErrStageInvalid, s.First, s.Last, s.Tokens)
	case len(s.InHash) != StageHashSz || len(s.OutHash) != StageHashSz:
		return fmt.Errorf("%w: hashes must be %d bytes", ErrStageInvalid, StageHashSz)
	case len(s.Server) != address.Len || len(s.PubKey) != ed25519.PublicKeySize:
		return fmt.Errorf("%w: server address or key", ErrStageSignature)
	}
	if a := address.FromPubKey(s.PubKey); string(a[:]) != string(s.Server) {
		return fmt.Errorf("%w: key does not belong to server %x", ErrStageSignature, s.Server)
	}
	if !tx.VerifySignature(ed25519.PublicKey(s.PubKey), s.SignBytes(), s.Sig) {
		return fmt.Errorf("%w: server %s, layers %d-%d", ErrStageSignature, s.ServerAddr(), s.First, s.Last)
	}
	return nil
}

// StageChain extends a hash chain by one row at position pos:
// SHA-256(prev || pos as 8 bytes big-endian || row). The chain starts
// from 32 zero bytes.
func StageChain(prev []byte, pos uint64, row []byte) []byte {
	h := sha256.New()
	if len(prev) == 0 {
		prev = make([]byte, StageHashSz)
	}
	h.Write(prev)
	var p [8]byte
	for i := range 8 {
		p[i] = byte(pos >> (56 - 8*i))
	}
	h.Write(p[:])
	h.Write(row)
	return h.Sum(nil)
}

// MsgSettleStages settles a split job: signed by its coordinator, for an
// open (never assigned) job. The first Route stages are the final route in
// layer order; the others are sessions of servers that dropped out.
type MsgSettleStages struct {
	_          struct{} `cbor:",toarray"`
	JobID      []byte
	ResultHash []byte // SHA-256 of the result text
	TokensIn   uint64
	TokensOut  uint64
	Layers     uint32      // the model's layer count
	PricePer1k coin.Amount // the coordinator's price of split inference per 1,000 output tokens
	Route      uint32
	Stages     []StageReceipt
}

// NewSettleStagesMsg builds a jobs/settle_stages.
func NewSettleStagesMsg(m MsgSettleStages) tx.Msg { return must(tx.NewMsg(TypeSettleStages, m)) }

// Hash is the settlement's digest (the job's receipt hash once settled).
func (m *MsgSettleStages) Hash() [32]byte {
	b, _ := tx.Marshal(m)
	return sha256.Sum256(b)
}

// StageJob is what of a job a stage settlement is checked against.
type StageJob struct {
	ID        []byte
	ChainID   string
	Model     string
	MaxTokens uint64
}

// Check verifies the settlement without the chain's state: every stage's
// signature, its job, chain and model, that no (server, session) appears
// twice, that no stage claims more positions than the route processed and
// the route more than the job's tokens, and that the route covers layers
// 0..Layers-1 in order, each stage's input chain the output chain of the
// one before. `aitbc receipt verify` runs it offline.
func (m *MsgSettleStages) Check(j StageJob) error {
	n := len(m.Stages)
	switch {
	case string(m.JobID) != string(j.ID):
		return fmt.Errorf("%w: settlement of job %x for %x", ErrStageInvalid, m.JobID, j.ID)
	case len(m.ResultHash) != 32:
		return fmt.Errorf("%w: result hash must be 32 bytes", ErrStageInvalid)
	case n == 0 || n > MaxStages:
		return fmt.Errorf("%w: %d stages (1 to %d)", ErrStageInvalid, n, MaxStages)
	case m.Route == 0 || int(m.Route) > n:
		return fmt.Errorf("%w: a route of %d of %d stages", ErrStageRoute, m.Route, n)
	case m.Layers == 0 || m.Layers > MaxLayers:
		return fmt.Errorf("%w: %d layers", ErrStageInvalid, m.Layers)
	case m.TokensIn == 0 || m.TokensOut > j.MaxTokens:
		return fmt.Errorf("%w: %d tokens in, %d out (the job allows %d)", ErrStageInvalid, m.TokensIn, m.TokensOut, j.MaxTokens)
	case m.PricePer1k == 0:
		return fmt.Errorf("%w: price must be positive", ErrStageInvalid)
	}
	seen := map[string]bool{}
	for i := range m.Stages {
		s := &m.Stages[i]
		if err := s.Verify(); err != nil {
			return fmt.Errorf("stage %d: %w", i, err)
		}
		switch {
		case string(s.JobID) != string(j.ID) || s.ChainID != j.ChainID:
			return fmt.Errorf("%w: stage %d is of job %x on %q", ErrStageInvalid, i, s.JobID, s.ChainID)
		case s.Model != j.Model:
			return fmt.Errorf("%w: stage %d ran %q, the job is %q", ErrStageInvalid, i, s.Model, j.Model)
		case s.Last >= m.Layers:
			return fmt.Errorf("%w: stage %d runs layer %d of %d", ErrStageRoute, i, s.Last, m.Layers)
		}
		key := string(s.Server) + "/" + s.Session
		if seen[key] {
			return fmt.Errorf("%w: server %s session %s", ErrStageDuplicate, s.ServerAddr(), s.Session)
		}
		seen[key] = true
	}
	// Every route stage processed the same positions: a replacement's
	// cache was rebuilt by replaying all of them.
	route := m.Stages[:m.Route]
	positions := route[0].Tokens
	if positions > m.TokensIn+m.TokensOut {
		return fmt.Errorf("%w: %d positions for %d tokens in and %d out", ErrStageOverclaim, positions, m.TokensIn, m.TokensOut)
	}
	for i := range route {
		s := &route[i]
		if s.Tokens != positions {
			return fmt.Errorf("%w: route stage %d processed %d tokens, the route %d", ErrStageOverclaim, i, s.Tokens, positions)
		}
		if i == 0 && s.First != 0 || i > 0 && s.First != route[i-1].Last+1 {
			return fmt.Errorf("%w: stage %d starts at layer %d", ErrStageRoute, i, s.First)
		}
		if i > 0 && string(s.InHash) != string(route[i-1].OutHash) {
			return fmt.Errorf("%w: stage %d's input is not stage %d's output", ErrStageRoute, i, i-1)
		}
	}
	if route[len(route)-1].Last != m.Layers-1 {
		return fmt.Errorf("%w: the route ends at layer %d of %d", ErrStageRoute, route[len(route)-1].Last, m.Layers)
	}
	for i, s := range m.Stages[m.Route:] {
		if s.Tokens > positions {
			return fmt.Errorf("%w: dropped stage %d claims %d tokens, the route processed %d", ErrStageOverclaim, i, s.Tokens, positions)
		}
	}
	return nil
}

// StagePay is what one server is paid.
type StagePay struct {
	Server address.Address
	Amount coin.Amount
}

// StagePayments splits price over the stages in proportion to layers ×
// tokens, rounding each share down; the units rounding leaves go to the
// route's first stage (the one that embedded the prompt). A server of
// several stages gets their sum, in order of first appearance.
func (m *MsgSettleStages) StagePayments(price coin.Amount) []StagePay {
	if len(m.Stages) == 0 {
		return nil
	}
	var total uint64
	for i := range m.Stages {
		total += m.Stages[i].Layers() * m.Stages[i].Tokens
	}
	idx := map[address.Address]int{}
	var out []StagePay
	var paid coin.Amount
	for i := range m.Stages {
		s := &m.Stages[i]
		var share coin.Amount
		if total > 0 { // Check makes every stage's layers and tokens at least 1
			share = price.MulDiv(s.Layers()*s.Tokens, total)
		}
		paid += share
		a := s.ServerAddr()
		j, ok := idx[a]
		if !ok {
			j = len(out)
			idx[a] = j
			out = append(out, StagePay{Server: a})
		}
		out[j].Amount += share
	}
	out[idx[m.Stages[0].ServerAddr()]].Amount += price - paid
	return out
}

// SpanAgents is what stage settlements need of the agents module.
type SpanAgents interface {
	Get(r state.Reader, a address.Address) (*agents.Agent, error)
}

// SetSpanAgents connects the agents module (modules.New does, once).
func (k *Keeper) SetSpanAgents(a SpanAgents) { k.spanAgents = a }

var errNoAgents = errors.New("jobs: split settlements need the agents module")

// settleStages pays a split job's span servers. Every check comes before
// the first transfer.
func (k *Keeper) settleStages(ctx *module.Context, p Params, m *MsgSettleStages) error {
	if k.spanAgents == nil {
		return errNoAgents
	}
	j, err := k.job(ctx, m.JobID)
	if err != nil {
		return err
	}
	if string(ctx.Signer[:]) != string(j.Coordinator) {
		return fmt.Errorf("%w: %x", ErrNotCoordinator, j.ID)
	}
	if j.Status != StatusOpen {
		return fmt.Errorf("%w: %x is %s; a split job settles unassigned", ErrJobState, j.ID, StatusName(j.Status))
	}
	if ctx.Time.Unix() >= j.Expires {
		return fmt.Errorf("%w: %x has expired", ErrJobState, j.ID)
	}
	if err := m.Check(StageJob{ID: j.ID, ChainID: ctx.ChainID, Model: j.Model, MaxTokens: j.MaxTokens}); err != nil {
		return err
	}
	gone, err := k.goneServers(ctx.KV, m)
	if err != nil {
		return err
	}
	s := Split(p, j.Escrow, PriceFor(m.TokensOut, m.PricePer1k))
	if s.Price > 0 {
		for _, pay := range m.StagePayments(s.Price) {
			if pay.Amount == 0 {
				continue
			}
			if gone[pay.Server] {
				// Withheld: back to the customer with the refund.
				s.Price -= pay.Amount
				s.Refund += pay.Amount
				continue
			}
			if err := k.bank.Send(ctx.KV, k.escrow, pay.Server, pay.Amount); err != nil {
				return err
			}
			ctx.Touch(pay.Server)
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
	h := m.Hash()
	j.Status, j.PricePer1k, j.Paid, j.Fee, j.Commission, j.Refund, j.ReceiptHash, j.Settled = StatusSettled, m.PricePer1k, s.Price, s.Fee, s.Commission, s.Refund, h[:], ctx.Height
	ctx.KV.Set(keyReceipt(h), j.ID)
	ctx.Touch(j.CustomerAddr())
	return k.put(ctx.KV, j)
}

// goneServers checks every stage's layers against its server's agent
// record and returns the servers that have none any more: they
// deregistered between serving and settlement.
//
// The rule (docs/DISTRIBUTED.md, "A server that left"): a stage whose
// server is registered must lie in a span the record announces, or the
// whole settlement is refused (stage_span_not_announced: the settlement
// contradicts the chain). A stage whose server has no record cannot be
// checked against an announcement, so its share is not paid to it — a
// coordinator could otherwise pay the escrow to keys it made up — but
// neither does it sink the settlement: the servers that are still
// registered are paid their shares exactly as if it were, and the gone
// servers' shares go back to the customer with the refund, so nobody
// gains from a server leaving and the others' work is not lost at the
// TTL. At least one stage must be by a registered server: a settlement
// nobody on chain can vouch for is refused.
func (k *Keeper) goneServers(r state.Reader, m *MsgSettleStages) (map[address.Address]bool, error) {
	gone := map[address.Address]bool{}
	known := false
	for i := range m.Stages {
		s := &m.Stages[i]
		a, err := k.spanAgents.Get(r, s.ServerAddr())
		if err != nil {
			return nil, err
		}
		if a == nil {
			gone[s.ServerAddr()] = true
			continue
		}
		if !a.Serves(s.Model, int(s.First), int(s.Last)) {
			return nil, fmt.Errorf("%w: stage %d: %s, layers %d-%d of %s", ErrStageSpan, i, s.ServerAddr(), s.First, s.Last, s.Model)
		}
		known = true
	}
	if !known {
		return nil, fmt.Errorf("%w: no stage's server is registered on chain", ErrStageSpan)
	}
	return gone, nil
}

// describeStages is the settlement for people.
func describeStages(m *MsgSettleStages) map[string]any {
	stages := make([]map[string]any, len(m.Stages))
	for i, s := range m.Stages {
		stages[i] = map[string]any{"server": s.ServerAddr(), "session": s.Session, "first_layer": s.First, "last_layer": s.Last,
			"tokens": s.Tokens, "in_hash": hex.EncodeToString(s.InHash), "out_hash": hex.EncodeToString(s.OutHash), "route": i < int(m.Route)}
	}
	return map[string]any{"job_id": hex.EncodeToString(m.JobID), "result_hash": hex.EncodeToString(m.ResultHash), "tokens_in": m.TokensIn,
		"tokens_out": m.TokensOut, "layers": m.Layers, "price_per_1k": m.PricePer1k, "stages": stages}
}

// Package store keeps the coordinator's durable state: tenants (with hashed
// API keys), jobs with their results and receipts, and what is pending on
// chain. The Store interface has an SQLite implementation (modernc, pure
// Go) for a single coordinator; the same interface can sit on PostgreSQL
// where several coordinators share work.
//
// Imported by the coordinator only.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
)

// Errors.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	ErrFull     = errors.New("store: full")
	// ErrLeaseLost: another coordinator sharing the store holds the job's
	// lease (this one was cut off for longer than a lease and the job was
	// taken over).
	ErrLeaseLost = errors.New("store: job leased by another coordinator")
)

// Tenant is a customer of the coordinator.
type Tenant struct {
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Address address.Address `json:"address"`
	Created time.Time       `json:"created"`
}

// KeyInfo describes one of a tenant's API keys (never the key itself).
type KeyInfo struct {
	ID       string     `json:"key_id"` // KeyIDOf its hash
	Created  time.Time  `json:"created"`
	LastUsed *time.Time `json:"last_used,omitempty"`
}

// Job status in the coordinator.
const (
	StatusQueued     = "queued"
	StatusDispatched = "dispatched" // sent to a miner, not yet acknowledged
	StatusRunning    = "running"
	StatusCompleted  = "completed" // result and verified receipt stored; settling
	StatusSettled    = "settled"   // settlement committed on chain
	StatusFailed     = "failed"    // refused or could not run; escrow returns at the TTL
	StatusExpired    = "expired"   // TTL passed before completion; refunded on chain
)

// ChatMessage is one message of a chat job.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// Images are the message's image inputs, base64 (minerproto.ChatMessage).
	Images []string `json:"images,omitempty"`
}

// Needs is the hardware a job requires of its miner.
type Needs struct {
	GPUs     int    `json:"gpus,omitempty"`
	MemoryMB uint64 `json:"memory_mb,omitempty"` // GPU memory
	GPUModel string `json:"gpu_model,omitempty"`
}

// Job is a job as the coordinator tracks it.
type Job struct {
	ID          string          `json:"id"` // 32 hex digits, also the on-chain id
	TenantID    string          `json:"tenant_id"`
	Customer    address.Address `json:"customer"`
	Kind        string          `json:"kind"` // "completion" or "chat"
	Model       string          `json:"model"`
	Prompt      string          `json:"prompt,omitempty"`
	Messages    []ChatMessage   `json:"messages,omitempty"`
	PromptHash  string          `json:"prompt_hash"` // hex SHA-256 of the canonical prompt
	MaxTokens   int             `json:"max_tokens"`
	Temperature float32         `json:"temperature"`
	TopP        float32         `json:"top_p"`
	Seed        uint64          `json:"seed"`
	Stop        []string        `json:"stop,omitempty"`
	MaxPrice    coin.Amount     `json:"max_price"`
	Payment     string          `json:"payment"` // "deposit" (coordinator creates it on chain) or "wallet" (customer did)
	TTLSeconds  int64           `json:"ttl_s"`
	Expires     time.Time       `json:"expires"`
	ServiceID   string          `json:"service_id,omitempty"` // marketplace agreement, later
	// Needs is the hardware a text job requires of its miner (the
	// scheduler's sched.Resources, field for field); nil for none.
	Needs *Needs `json:"needs,omitempty"`

	Status       string          `json:"status"`
	Miner        address.Address `json:"miner,omitempty"`
	PricePer1k   coin.Amount     `json:"price_per_1k"`
	Attempt      int             `json:"attempt"`
	Excluded     []string        `json:"excluded,omitempty"` // miners that failed this job
	Result       string          `json:"result,omitempty"`
	TokensIn     int             `json:"tokens_in"`
	TokensOut    int             `json:"tokens_out"`
	FinishReason string          `json:"finish_reason,omitempty"`
	Receipt      []byte          `json:"receipt,omitempty"` // canonical CBOR
	Split        bool            `json:"split,omitempty"`   // run through span servers; Receipt is its jobs/settle_stages
	Error        string          `json:"error,omitempty"`
	ErrorCode    string          `json:"error_code,omitempty"` // stable code of a failure, e.g. payment_not_confirmed

	// Attestation is the miner's commitments (canonical CBOR of a
	// verify.Attestation) whose hash the receipt signs, served to the
	// verifier a spot check draws (GET /v1/audits/jobs/{id}). Kept in the
	// job's JSON record, so neither store's schema changes.
	Attestation []byte `json:"attestation,omitempty"`
	// A private job (coordinator/private.go) settles with the miner's
	// private receipt and a proof; ZKBlinding opens its commitment.
	Private        bool   `json:"private,omitempty"`
	PrivateReceipt []byte `json:"private_receipt,omitempty"`
	ZKBlinding     string `json:"zk_blinding,omitempty"`

	// The payment gate (see package lifecycle): output is released only
	// before PaidUntil, or once the job is settled.
	PaidUntil        time.Time `json:"paid_until,omitempty"`
	PaymentConfirmed bool      `json:"payment_confirmed,omitempty"` // escrow locked on chain until Expires
	OutputHeld       bool      `json:"-"`                           // on copies handed out: Result and Receipt exist but the gate holds them

	OnChain  bool        `json:"on_chain"`            // the job exists on chain
	CreateTx string      `json:"create_tx,omitempty"` // create_for, deposit jobs
	AssignTx string      `json:"assign_tx,omitempty"`
	SettleTx string      `json:"settle_tx,omitempty"`
	Paid     coin.Amount `json:"paid"`
	// ProtocolFee is the job's protocol fee. It is stored under its old
	// name, so that jobs recorded before the rename keep their figure.
	ProtocolFee coin.Amount `json:"fee_burned"`
	Refund      coin.Amount `json:"refund"`

	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	Started   time.Time `json:"started,omitempty"`
	Completed time.Time `json:"completed,omitempty"`
}

// Active reports whether the job still needs work from the coordinator.
func (j *Job) Active() bool {
	switch j.Status {
	case StatusQueued, StatusDispatched, StatusRunning, StatusCompleted:
		return true
	}
	return false
}

// Store is the coordinator's durable state.
type Store interface {
	CreateTenant(ctx context.Context, t Tenant, keyHash []byte) error
	TenantByKey(ctx context.Context, keyHash []byte) (*Tenant, error)
	TenantByAddress(ctx context.Context, a address.Address) (*Tenant, error)
	Tenants(ctx context.Context) ([]Tenant, error)
	AddTenantKey(ctx context.Context, tenantID string, keyHash []byte) error
	TenantKeys(ctx context.Context, tenantID string) ([]KeyInfo, error)
	RevokeKey(ctx context.Context, tenantID, keyID string) error
	TouchKey(ctx context.Context, keyHash []byte, t time.Time) error
	// UseRegistration records a tenant registration's signature (its
	// hash) as used until until; ErrExists if it was already used and is
	// still within its validity at now. It forgets signatures whose
	// validity ended, and answers ErrFull when more than max are live.
	UseRegistration(ctx context.Context, sigHash []byte, until, now time.Time, max int) error

	PutJob(ctx context.Context, j *Job) error // insert or replace
	Job(ctx context.Context, id string) (*Job, error)
	JobsByTenant(ctx context.Context, tenantID string, limit int) ([]*Job, error)
	ActiveJobs(ctx context.Context) ([]*Job, error)
	CountByStatus(ctx context.Context) (map[string]int, error)
	Close() error
}

// Shared is what a store adds when several coordinators share it
// (Postgres). Active jobs are leased: the coordinator that holds a job's
// lease is the only one that drives it (PutJob of a job leased to another
// fails with ErrLeaseLost), it renews its leases while it lives, and a job
// whose lease expired is taken over by another coordinator. Times are the
// database's clock, so coordinators' clocks need not agree.
type Shared interface {
	// Owner is this coordinator's name in leases.
	Owner() string
	// ClaimExpired leases to this coordinator up to n active jobs whose
	// lease expired, oldest first.
	ClaimExpired(ctx context.Context, n int) ([]*Job, error)
	// RenewLeases extends this coordinator's leases on ids and returns
	// those another coordinator holds now (ids not stored yet are neither).
	RenewLeases(ctx context.Context, ids []string) (lost []string, err error)
	// ClaimSettlement records that this coordinator sends the job's
	// settlement: ErrLeaseLost if another holds its lease, ErrNotFound if
	// there is no such job. The chain settles a job at most once; this
	// keeps two coordinators from both trying.
	ClaimSettlement(ctx context.Context, id string) error
	// Offer marks queued jobs this coordinator holds as free to take: it
	// has no free miner for them. Another coordinator takes one with
	// ClaimOffered; this one takes its offer back with Withdraw, which
	// returns the ids still its own (the others were taken).
	Offer(ctx context.Context, ids []string) error
	Withdraw(ctx context.Context, ids []string) (kept []string, err error)
	// ClaimOffered leases to this coordinator up to n queued jobs of model
	// that other coordinators offered and fits accepts, oldest first. fits
	// (nil: any) must not block.
	ClaimOffered(ctx context.Context, model string, n int, fits func(*Job) bool) ([]*Job, error)
	// ReservedElsewhere is what the tenant's active deposit jobs that
	// other coordinators drive hold of its deposit (their max prices, while
	// not yet created on chain): a submission here counts them too.
	ReservedElsewhere(ctx context.Context, tenantID string) (coin.Amount, error)
	// Listen calls fn with (job id, status) for every job any coordinator
	// stores, until ctx ends; it reconnects after a lost connection.
	Listen(ctx context.Context, fn func(id, status string)) error
}

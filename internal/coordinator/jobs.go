package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// Error is a coordinator error with its HTTP status and stable code.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

func errf(status int, code, format string, a ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

// Sentinel errors for errors.Is.
var (
	ErrJobNotFound  = &Error{Status: http.StatusNotFound, Code: "job_not_found", Message: "job not found"}
	ErrUnauthorized = &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "missing or unknown API key (header X-API-Key)"}
)

// Is matches coordinator errors by code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// JobRequest is what a tenant asks for.
type JobRequest struct {
	ID          string                   `json:"job_id,omitempty"` // a job the customer already created on chain (wallet payment)
	Model       string                   `json:"model"`
	Prompt      string                   `json:"prompt,omitempty"`
	Messages    []minerproto.ChatMessage `json:"messages,omitempty"`
	MaxTokens   int                      `json:"max_tokens,omitempty"`
	Temperature *float32                 `json:"temperature,omitempty"`
	TopP        float32                  `json:"top_p,omitempty"`
	Seed        uint64                   `json:"seed,omitempty"`
	Stop        []string                 `json:"stop,omitempty"`
	MaxPrice    coin.Amount              `json:"max_price,omitempty"` // escrow: 0 = enough for the dearest miner serving the model
	TTLSeconds  int64                    `json:"ttl,omitempty"`
	ServiceID   string                   `json:"service_id,omitempty"`
}

func (s *Service) validate(r *JobRequest) error {
	r.Model = strings.TrimSpace(r.Model)
	switch {
	case r.Model == "":
		return errf(400, "invalid_request", "model is required")
	case len(r.Model) > s.params.MaxModelID:
		return errf(400, "invalid_request", "model name longer than %d bytes", s.params.MaxModelID)
	case r.Prompt == "" && len(r.Messages) == 0:
		return errf(400, "empty_prompt", "prompt (or messages) must not be empty")
	case r.Prompt != "" && len(r.Messages) > 0:
		return errf(400, "invalid_request", "give prompt or messages, not both")
	}
	size := len(r.Prompt)
	for _, m := range r.Messages {
		if m.Role != "system" && m.Role != "user" && m.Role != "assistant" {
			return errf(400, "invalid_request", "message role must be system, user or assistant, not %q", m.Role)
		}
		size += len(m.Content)
	}
	if size > s.cfg.MaxPromptBytes {
		return errf(400, "prompt_too_long", "prompt is %d bytes, limit %d", size, s.cfg.MaxPromptBytes)
	}
	if strings.TrimSpace(r.Prompt) == "" && len(r.Messages) == 0 || !utf8.ValidString(r.Prompt) {
		return errf(400, "empty_prompt", "prompt must be non-blank UTF-8 text")
	}
	if r.MaxTokens == 0 {
		r.MaxTokens = s.cfg.DefaultMaxTokens
	}
	if r.MaxTokens < 1 || uint64(r.MaxTokens) > s.params.MaxTokens {
		return errf(400, "invalid_max_tokens", "max_tokens must be 1-%d", s.params.MaxTokens)
	}
	if r.Temperature != nil && (*r.Temperature < 0 || *r.Temperature > 2) {
		return errf(400, "invalid_request", "temperature must be 0-2")
	}
	if r.TopP < 0 || r.TopP > 1 {
		return errf(400, "invalid_request", "top_p must be 0-1")
	}
	if r.TTLSeconds == 0 {
		r.TTLSeconds = int64(s.cfg.DefaultTTL / time.Second)
	}
	if r.TTLSeconds < s.params.MinTTL || r.TTLSeconds > s.params.MaxTTL {
		return errf(400, "invalid_ttl", "ttl must be %d-%d seconds", s.params.MinTTL, s.params.MaxTTL)
	}
	return nil
}

// market returns the miners that serve model, connected ones first, as the
// scheduler sees them, plus how many are registered on chain for it.
func (s *Service) snapshotLocked() []*sched.Miner {
	out := make([]*sched.Miner, 0, len(s.miners))
	for _, mc := range s.miners {
		out = append(out, mc.view(s.registry[mc.addr]))
	}
	return out
}

// Submit accepts a job for tenant t: it validates the request, checks that
// some miner can serve it within its price, checks payment (the on-chain
// job for wallet payment, the tenant's deposit otherwise) and queues it.
func (s *Service) Submit(ctx context.Context, t *store.Tenant, r JobRequest) (*store.Job, error) {
	if err := s.validate(&r); err != nil {
		return nil, err
	}
	ph := minerproto.PromptHash(r.Prompt, r.Messages)
	now := s.cfg.Now().UTC()
	j := &store.Job{
		TenantID: t.ID, Customer: t.Address, Kind: "completion", Model: r.Model, Prompt: r.Prompt,
		PromptHash: hex.EncodeToString(ph[:]), MaxTokens: r.MaxTokens, TopP: r.TopP, Seed: r.Seed, Stop: r.Stop,
		TTLSeconds: r.TTLSeconds, Expires: now.Add(time.Duration(r.TTLSeconds) * time.Second),
		ServiceID: r.ServiceID, Status: store.StatusQueued, Created: now, Updated: now,
	}
	if r.Temperature != nil {
		j.Temperature = *r.Temperature
	}
	for _, m := range r.Messages {
		j.Messages = append(j.Messages, store.ChatMessage(m))
	}
	if len(r.Messages) > 0 {
		j.Kind = "chat"
	}

	// Market check: refuse what no miner can do, explain why.
	s.mu.Lock()
	snap := s.snapshotLocked()
	var registered []*sched.Miner
	for a, m := range s.registry {
		if m.Status == "active" {
			registered = append(registered, &sched.Miner{Address: a, Models: m.Models, PricePer1k: m.PricePer1k, Slots: 1})
		}
	}
	s.mu.Unlock()
	pool := snap
	if len(pool) == 0 {
		pool = registered // nobody connected: judge by the registry, the job waits
	}
	maxPrice := r.MaxPrice
	if maxPrice == 0 {
		var dearest coin.Amount
		for _, m := range pool {
			for _, name := range m.Models {
				if name == r.Model && sched.Cost(s.params, m.PricePer1k, uint64(r.MaxTokens)) > dearest {
					dearest = sched.Cost(s.params, m.PricePer1k, uint64(r.MaxTokens))
				}
			}
		}
		maxPrice = max(dearest, 1)
	}
	if _, np := s.sched.Place(sched.Job{Model: r.Model, MaxTokens: uint64(r.MaxTokens), MaxPrice: maxPrice}, pool); np != nil {
		switch np.Reason {
		case sched.NoModel:
			return nil, errf(404, "model_not_served", "%s; served now: %s", np.Error(), strings.Join(s.servedModels(), ", "))
		case sched.TooPricey:
			cheapest := sched.Cost(s.params, np.Cheapest, uint64(r.MaxTokens))
			return nil, errf(400, "max_price_too_low", "%s: %d tokens cost at least %s AITBC with the fee", np.Error(), r.MaxTokens, cheapest)
		case sched.NoMiners:
			if len(registered) == 0 {
				return nil, errf(503, "no_miners", "no miner is registered on chain")
			}
		}
	}

	var deposit coin.Amount
	if r.ID != "" {
		if err := s.checkWalletJob(ctx, t, &r, j); err != nil {
			return nil, err
		}
	} else {
		d, err := jobs.QueryDeposit(ctx, s.cfg.Chain, t.Address, s.cfg.Address)
		if err != nil {
			return nil, fmt.Errorf("coordinator: chain: %w", err)
		}
		deposit = d.Amount
		j.ID, j.Payment, j.MaxPrice = newJobID(), "deposit", maxPrice
	}

	s.mu.Lock()
	if _, dup := s.live[j.ID]; dup {
		s.mu.Unlock()
		return nil, errf(409, "job_exists", "job %s was already submitted", j.ID)
	}
	if j.Payment == "deposit" {
		// Check and reserve under one lock, so concurrent submissions
		// cannot together overdraw the deposit.
		if reserved := s.reserved[t.ID]; deposit < reserved+j.MaxPrice {
			s.mu.Unlock()
			return nil, errf(402, "insufficient_deposit", "deposit of %s with this coordinator is %s AITBC, %s reserved by running jobs, the job needs %s (aitbc deposit add --wallet ... --amount ...)",
				t.Address, deposit, reserved, j.MaxPrice)
		}
	}
	if err := s.cfg.Store.PutJob(ctx, j); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	lj := &liveJob{job: j, hub: newHub()}
	s.live[j.ID] = lj
	s.reserveLocked(lj)
	s.queue.push(j.Model, j.ID)
	s.mu.Unlock()
	s.metrics.submitted.WithLabelValues(j.Payment).Inc()
	s.log.Info("job submitted", "job", j.ID, "tenant", t.Name, "model", j.Model, "payment", j.Payment, "max_price", j.MaxPrice.String())
	s.poke()
	return cloneJob(j), nil
}

func (s *Service) servedModels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, q := range sched.Models(s.snapshotLocked()) {
		names = append(names, q.Model)
	}
	if len(names) == 0 {
		return []string{"(none)"}
	}
	return names
}

// checkWalletJob checks a job the customer created on chain: it must name
// this coordinator and match the request exactly.
func (s *Service) checkWalletJob(ctx context.Context, t *store.Tenant, r *JobRequest, j *store.Job) error {
	id := strings.ToLower(strings.TrimPrefix(r.ID, "0x"))
	if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
		return errf(400, "invalid_id", "job_id must be 32 hex digits")
	}
	cj, err := jobs.QueryJob(ctx, s.cfg.Chain, id)
	if err != nil {
		if httpx.IsCode(err, "job_not_found") {
			return errf(402, "escrow_not_found", "job %s is not on chain: create it (jobs/create) and wait for the block first", id)
		}
		return fmt.Errorf("coordinator: chain: %w", err)
	}
	switch {
	case cj.Coordinator != s.cfg.Address:
		return errf(400, "wrong_coordinator", "job %s names coordinator %s, this is %s", id, cj.Coordinator, s.cfg.Address)
	case cj.Customer != t.Address:
		return ErrJobNotFound // someone else's escrow: do not reveal it
	case cj.Status != "open":
		return errf(409, "job_exists", "job %s is %s on chain", id, cj.Status)
	case cj.Model != r.Model:
		return errf(400, "escrow_mismatch", "escrow is for model %q", cj.Model)
	case cj.PromptHash != j.PromptHash:
		return errf(400, "escrow_mismatch", "escrow commits to another prompt (hash %s)", cj.PromptHash)
	case cj.MaxTokens < uint64(r.MaxTokens):
		return errf(400, "escrow_mismatch", "escrow allows %d tokens", cj.MaxTokens)
	}
	j.ID, j.Payment, j.MaxPrice, j.OnChain, j.Expires = id, "wallet", cj.Escrow, true, cj.Expires
	return nil
}

func newJobID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func cloneJob(j *store.Job) *store.Job {
	c := *j
	return &c
}

// Job returns tenant t's job id. Another tenant's job is not found.
func (s *Service) Job(ctx context.Context, t *store.Tenant, id string) (*store.Job, error) {
	id = strings.ToLower(strings.TrimPrefix(id, "0x"))
	s.mu.Lock()
	lj := s.live[id]
	var j *store.Job
	if lj != nil {
		j = cloneJob(lj.job)
		if j.Status == store.StatusQueued {
			j.Error = s.waitReasonLocked(j)
		}
	} else if r := s.recent.get(id); r != nil {
		j = cloneJob(r)
	}
	s.mu.Unlock()
	if j == nil {
		var err error
		j, err = s.cfg.Store.Job(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrJobNotFound
		}
		if err != nil {
			return nil, err
		}
	}
	if j.TenantID != t.ID {
		return nil, ErrJobNotFound
	}
	return j, nil
}

// Jobs lists tenant t's newest jobs.
func (s *Service) Jobs(ctx context.Context, t *store.Tenant, limit int) ([]*store.Job, error) {
	list, err := s.cfg.Store.JobsByTenant(ctx, t.ID, limit)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, j := range list {
		if lj := s.live[j.ID]; lj != nil {
			list[i] = cloneJob(lj.job)
		}
	}
	return list, nil
}

// Subscribe streams tenant t's job id: the text so far, then events.
func (s *Service) Subscribe(ctx context.Context, t *store.Tenant, id string) (*store.Job, string, <-chan Event, func(), error) {
	j, err := s.Job(ctx, t, id)
	if err != nil {
		return nil, "", nil, nil, err
	}
	s.mu.Lock()
	lj := s.live[j.ID]
	s.mu.Unlock()
	if lj == nil { // finished: replay the result and close
		ch := make(chan Event, 1)
		ch <- Event{Type: EventDone, Status: j.Status, Error: j.Error}
		close(ch)
		return j, j.Result, ch, func() {}, nil
	}
	text, ch, cancel := lj.hub.subscribe()
	return j, text, ch, cancel, nil
}

// addrOrZero formats an address, or "" for the zero address.
func addrOrZero(a address.Address) string {
	if a.IsZero() {
		return ""
	}
	return a.String()
}

package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator/lifecycle"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/minerproto"
)

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
	Split       bool                     `json:"split,omitempty"` // run through span servers (split.go)
	// Private keeps the job's token counts and price off the public
	// record: it settles with a commitment and a proof (private.go).
	Private bool `json:"private,omitempty"`
	// Needs is the hardware a text job requires of its miner (ai-submit
	// --gpu-allocated --memory --gpu-model); data-processing, training and
	// image jobs name theirs in their spec instead.
	Needs *sched.Resources `json:"needs,omitempty"`
}

func (s *Service) validate(r *JobRequest) error {
	r.Model = strings.TrimSpace(r.Model)
	switch {
	case r.Model == "":
		return errf(ErrInvalidRequest, "model is required")
	case len(r.Model) > s.params.MaxModelID:
		return errf(ErrInvalidRequest, "model name longer than %d bytes", s.params.MaxModelID)
	case r.Prompt == "" && len(r.Messages) == 0:
		return errf(ErrEmptyPrompt, "prompt (or messages) must not be empty")
	case r.Prompt != "" && len(r.Messages) > 0:
		return errf(ErrInvalidRequest, "give prompt or messages, not both")
	}
	size := len(r.Prompt)
	for _, m := range r.Messages {
		if m.Role != "system" && m.Role != "user" && m.Role != "assistant" {
			return errf(ErrInvalidRequest, "message role must be system, user or assistant, not %q", m.Role)
		}
		size += len(m.Content)
	}
	if size > s.cfg.MaxPromptBytes {
		return errf(ErrPromptTooLong, "prompt is %d bytes, limit %d", size, s.cfg.MaxPromptBytes)
	}
	if len(r.Messages) > 0 {
		blank := true
		for _, m := range r.Messages {
			if !utf8.ValidString(m.Content) {
				return errf(ErrInvalidRequest, "message content must be UTF-8 text")
			}
			blank = blank && strings.TrimSpace(m.Content) == "" && len(m.Images) == 0
		}
		if err := checkImages(r.Messages); err != nil { // visionparts.go
			return err
		}
		if blank {
			return errf(ErrEmptyPrompt, "messages must hold some non-blank text")
		}
	}
	if strings.TrimSpace(r.Prompt) == "" && len(r.Messages) == 0 || !utf8.ValidString(r.Prompt) {
		return errf(ErrEmptyPrompt, "prompt must be non-blank UTF-8 text")
	}
	if r.MaxTokens == 0 {
		r.MaxTokens = s.cfg.DefaultMaxTokens
	}
	if r.MaxTokens < 1 || uint64(r.MaxTokens) > s.params.MaxTokens {
		return errf(ErrInvalidMaxTokens, "max_tokens must be 1-%d", s.params.MaxTokens)
	}
	if r.Temperature != nil && (*r.Temperature < 0 || *r.Temperature > 2) {
		return errf(ErrInvalidRequest, "temperature must be 0-2")
	}
	if r.TopP < 0 || r.TopP > 1 {
		return errf(ErrInvalidRequest, "top_p must be 0-1")
	}
	if r.TTLSeconds == 0 {
		r.TTLSeconds = int64(s.cfg.DefaultTTL / time.Second)
	}
	if r.TTLSeconds < s.params.MinTTL || r.TTLSeconds > s.params.MaxTTL {
		return errf(ErrInvalidTTL, "ttl must be %d-%d seconds", s.params.MinTTL, s.params.MaxTTL)
	}
	if r.Needs != nil {
		if jobkind.IsKindModel(r.Model) || jobkind.IsImageModel(r.Model) {
			return errf(ErrInvalidRequest, "a %s job names the hardware it needs in its spec (\"resources\"), not in needs", r.Model)
		}
		if err := r.Needs.Validate(); err != nil {
			return errf(ErrInvalidRequest, "needs: %s", strings.TrimPrefix(err.Error(), "sched: "))
		}
		if *r.Needs == (sched.Resources{}) {
			r.Needs = nil
		}
	}
	return nil
}

// marketCheck refuses what no miner can do and says why, and returns the
// job's max price (the request's, or enough for the dearest miner serving
// the model).
func (s *Service) marketCheck(r *JobRequest) (coin.Amount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pool := s.snapshotLocked()
	var registered []*sched.Miner
	for a, m := range s.registry {
		if m.Status == "active" {
			registered = append(registered, &sched.Miner{Address: a, Models: m.Models, PricePer1k: m.PricePer1k, Slots: 1, GPU: m.GPU, GPUMemoryMB: m.GPUMemoryMB})
		}
	}
	if len(pool) == 0 {
		pool = registered // nobody connected: judge by the registry, the job waits
	}
	maxPrice := r.MaxPrice
	if maxPrice == 0 {
		var dearest coin.Amount
		for _, m := range pool {
			for _, name := range m.Models {
				if c := sched.Cost(s.params, m.PricePer1k, uint64(r.MaxTokens)); name == r.Model && c > dearest {
					dearest = c
				}
			}
		}
		maxPrice = max(dearest, 1)
	}
	_, np := s.checker.Place(sched.Job{Model: r.Model, MaxTokens: uint64(r.MaxTokens), MaxPrice: maxPrice, Needs: needsOf(r.Model, r.Prompt, (*store.Needs)(r.Needs)),
		Vision: minerproto.HasImages(r.Messages)}, pool)
	if np == nil {
		return maxPrice, nil
	}
	switch np.Reason {
	case sched.NoModel:
		return 0, errf(ErrModelNotServed, "%s; served now: %s", np.Error(), strings.Join(s.servedModelsLocked(), ", "))
	case sched.TooPricey:
		cheapest := sched.Cost(s.params, np.Cheapest, uint64(r.MaxTokens))
		return 0, errf(ErrMaxPriceTooLow, "%s: %d tokens cost at least %s AITBC with the fee", np.Error(), r.MaxTokens, cheapest)
	case sched.NoResources:
		return 0, errf(ErrNoFittingHardware, "%s", np.Error())
	case sched.NoVision:
		return 0, errf(ErrNoVision, "%s", np.Error())
	case sched.NoMiners:
		if len(registered) == 0 {
			return 0, errf(ErrNoMiners, "no miner is registered on chain")
		}
	}
	return maxPrice, nil
}

// Submit accepts a job for tenant t: it validates the request, checks that
// some miner can serve it within its price, checks payment (the on-chain
// job for wallet payment, the tenant's deposit otherwise), stores it and
// queues it. The job is durably stored when Submit returns.
func (s *Service) Submit(ctx context.Context, t *store.Tenant, r JobRequest) (*store.Job, error) {
	if err := s.validate(&r); err != nil {
		return nil, err
	}
	kind, err := s.checkKindJob(ctx, t, &r) // files.go: data-processing and training
	if err != nil {
		return nil, err
	}
	ph := minerproto.PromptHash(r.Prompt, r.Messages)
	now := s.cfg.Now().UTC()
	j := &store.Job{
		TenantID: t.ID, Customer: t.Address, Kind: "completion", Model: r.Model, Prompt: r.Prompt,
		PromptHash: hex.EncodeToString(ph[:]), MaxTokens: r.MaxTokens, TopP: r.TopP, Seed: r.Seed, Stop: r.Stop,
		TTLSeconds: r.TTLSeconds, Expires: now.Add(time.Duration(r.TTLSeconds) * time.Second),
		ServiceID: r.ServiceID, Status: store.StatusQueued, Created: now, Updated: now,
		Needs: (*store.Needs)(r.Needs),
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
	if kind != "" {
		j.Kind = kind // "data-processing" or "training"
	}
	maxPrice, split, err := s.placeCheck(ctx, &r)
	if err != nil {
		return nil, err
	}
	j.Split = split

	// Payment, read from committed state (outside the lock).
	var window time.Time
	var dep ChainDeposit
	if r.ID != "" {
		cj, err := s.checkWalletJob(ctx, t, &r, j)
		if err != nil {
			return nil, err
		}
		window = lifecycle.WalletWindow(cj.CancelAt, cj.BlockTime, s.releaseDelay, s.cfg.Margin)
	} else {
		if dep, err = s.view.Deposit(ctx, t.Address, s.cfg.Address); err != nil {
			return nil, fmt.Errorf("coordinator: chain: %w", err)
		}
		j.ID, j.Payment, j.MaxPrice = newJobID(), "deposit", maxPrice
		window = lifecycle.DepositWindow(dep.BlockTime, s.releaseDelay, s.cfg.Margin)
	}
	if err := s.checkPrivateRequest(ctx, &r, j); err != nil { // private.go
		return nil, err
	}
	*j = lifecycle.Start(*j, window, s.limits)

	// Limits and the deposit are checked, and the job stored, together
	// (limits.go): on a shared store across every coordinator.
	admitted, err := s.storeNewJob(ctx, t, j, dep)
	if !admitted {
		return nil, err
	}

	s.mu.Lock()
	delete(s.submitting, j.ID)
	if err != nil {
		s.dropReservationLocked(j) // nothing was sent to the chain
		s.mu.Unlock()
		return nil, fmt.Errorf("coordinator: store: %w", err)
	}
	lj := &liveJob{job: j, hub: newHub(1)}
	s.live[j.ID] = lj
	// A deposit job's escrow is created on chain when it is dispatched
	// (dispatchLocked), not now: a job that waits and never runs costs no
	// transaction, and until then its reservation holds the deposit.
	if j.Split {
		s.startSplitLocked(lj)
	} else {
		s.queue.push(j.Model, j.ID)
	}
	out := s.gateLocked(j)
	s.mu.Unlock()
	s.metrics.submitted.WithLabelValues(j.Payment).Inc()
	s.log.Info("job submitted", "job", j.ID, "tenant", t.Name, "model", j.Model, "payment", j.Payment, "max_price", j.MaxPrice.String(), "paid_until", j.PaidUntil)
	s.poke()
	return out, nil
}

// activeJobsLocked counts tenant's jobs that are live (queued, running,
// or settling) or being submitted, and the prompt bytes of the live ones.
func (s *Service) activeJobsLocked(tenant string) (n, size int) {
	for _, lj := range s.live {
		if lj.job.TenantID == tenant && lj.job.Active() {
			n++
			size += promptBytes(lj.job)
		}
	}
	for _, tid := range s.submitting {
		if tid == tenant {
			n++
		}
	}
	return n, size
}

// promptBytes is the size of a job's prompt or messages.
func promptBytes(j *store.Job) int {
	n := len(j.Prompt)
	for _, m := range j.Messages {
		n += len(m.Content)
	}
	return n
}

func (s *Service) servedModelsLocked() []string {
	var names []string
	for _, q := range sched.Models(s.snapshotLocked()) {
		names = append(names, q.Model)
	}
	if len(names) == 0 {
		return []string{"(none)"}
	}
	return names
}

// checkWalletJob checks a job the customer created on chain: it must be
// open, name this coordinator and match the request exactly.
func (s *Service) checkWalletJob(ctx context.Context, t *store.Tenant, r *JobRequest, j *store.Job) (ChainJob, error) {
	id := strings.ToLower(strings.TrimPrefix(r.ID, "0x"))
	if b, err := hex.DecodeString(id); err != nil || len(b) != jobs.IDLen {
		return ChainJob{}, errf(ErrInvalidID, "job_id must be 32 hex digits")
	}
	cj, err := s.view.Job(ctx, id)
	if err != nil {
		if errors.Is(err, jobs.ErrJobNotFound) {
			return cj, errf(ErrEscrowNotFound, "job %s is not on chain: create it (jobs/create) and wait for the block first", id)
		}
		return cj, fmt.Errorf("coordinator: chain: %w", err)
	}
	switch {
	case cj.Coordinator != s.cfg.Address:
		return cj, errf(ErrWrongCoordinator, "job %s names coordinator %s, this is %s", id, cj.Coordinator, s.cfg.Address)
	case cj.Customer != t.Address:
		return cj, errf(ErrJobNotFound, "job not found") // someone else's escrow: do not reveal it
	case cj.Status != ChainOpen:
		return cj, errf(ErrJobExists, "job %s is %s on chain", id, cj.Status)
	case cj.Model != r.Model:
		return cj, errf(ErrEscrowMismatch, "escrow is for model %q", cj.Model)
	case cj.PromptHash != j.PromptHash:
		return cj, errf(ErrEscrowMismatch, "escrow commits to another prompt (hash %s)", cj.PromptHash)
	case cj.MaxTokens < uint64(r.MaxTokens):
		return cj, errf(ErrEscrowMismatch, "escrow allows %d tokens", cj.MaxTokens)
	}
	j.ID, j.Payment, j.MaxPrice, j.OnChain, j.Expires = id, "wallet", cj.Escrow, true, cj.Expires
	return cj, nil
}

func newJobID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// gateLocked returns a copy of j as its tenant may see it now: output the
// payment gate holds is left out and marked held.
func (s *Service) gateLocked(j *store.Job) *store.Job {
	return gate(j, s.cfg.Now())
}

func gate(j *store.Job, now time.Time) *store.Job {
	c := cloneJob(j)
	if (c.Result != "" || len(c.Receipt) > 0) && !lifecycle.Released(*c, now) {
		c.Result, c.Receipt, c.OutputHeld = "", nil, true
	}
	return c
}

// Job returns tenant t's job id, with its output only if released.
// Another tenant's job is not found.
func (s *Service) Job(ctx context.Context, t *store.Tenant, id string) (*store.Job, error) {
	id = strings.ToLower(strings.TrimPrefix(id, "0x"))
	s.mu.Lock()
	var j *store.Job
	if lj := s.live[id]; lj != nil {
		j = s.gateLocked(lj.job)
		if j.Status == store.StatusQueued {
			j.Error = s.waitReasonLocked(j)
		}
	} else if r := s.recent.get(id); r != nil {
		j = s.gateLocked(r)
	}
	s.mu.Unlock()
	if j == nil {
		stored, err := s.cfg.Store.Job(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errf(ErrJobNotFound, "job not found")
		}
		if err != nil {
			return nil, err
		}
		j = gate(stored, s.cfg.Now())
	}
	if j.TenantID != t.ID {
		return nil, errf(ErrJobNotFound, "job not found")
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
		switch lj, r := s.live[j.ID], s.recent.get(j.ID); {
		case lj != nil:
			list[i] = s.gateLocked(lj.job)
		case r != nil: // newer than the store, whose writes trail by a moment
			list[i] = s.gateLocked(r)
		default:
			list[i] = s.gateLocked(j)
		}
	}
	return list, nil
}

// Subscription is a stream of a job's events.
type Subscription struct {
	Job     *store.Job // the job when subscribed (output gated)
	Text    string     // the current attempt's text so far
	Seq     int        // the last token in Text
	Attempt int        // the attempt Text belongs to
	Events  <-chan Event
	Cancel  func() // call when done reading
}

// Follow subscribes to tenant t's job id: the text released so far, then
// every later event in order, ending with done. Nothing is dropped: a
// slow reader only falls behind.
func (s *Service) Follow(ctx context.Context, t *store.Tenant, id string) (*Subscription, error) {
	j, err := s.Job(ctx, t, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	lj := s.live[j.ID]
	s.mu.Unlock()
	if lj == nil && j.Active() { // driven by another coordinator on a shared store
		if sub := s.followRemote(t, j); sub != nil {
			return sub, nil
		}
	}
	if lj == nil { // finished: replay the result and close
		ch := make(chan Event, 1)
		ch <- Event{Type: EventDone, Status: j.Status, Error: j.Error, Code: j.ErrorCode}
		close(ch)
		return &Subscription{Job: j, Text: j.Result, Attempt: j.Attempt, Events: ch, Cancel: func() {}}, nil
	}
	text, seq, attempt, pos := lj.hub.snapshot()
	ch, cancel := lj.hub.follow(pos)
	return &Subscription{Job: j, Text: text, Seq: seq, Attempt: attempt, Events: ch, Cancel: cancel}, nil
}

// Subscribe is Follow in the shape of earlier versions: the job, its text
// so far, the events and a cancel function.
func (s *Service) Subscribe(ctx context.Context, t *store.Tenant, id string) (*store.Job, string, <-chan Event, func(), error) {
	sub, err := s.Follow(ctx, t, id)
	if err != nil {
		return nil, "", nil, nil, err
	}
	return sub.Job, sub.Text, sub.Events, sub.Cancel, nil
}

// addrOrZero formats an address, or "" for the zero address.
func addrOrZero(a address.Address) string {
	if a.IsZero() {
		return ""
	}
	return a.String()
}

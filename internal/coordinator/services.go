package coordinator

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator/chainwriter"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/rpc"
)

// The marketplace on the coordinator's API (seed 000): services are the
// market module's listings on chain, so every coordinator on the chain
// lists the same services; registering one writes the listing (a
// market/create_for the coordinator signs for its tenant, the provider).

// registerServiceRoutes adds the marketplace routes (called from Handler).
func (s *Service) registerServiceRoutes(handle func(string, http.HandlerFunc)) {
	handle("POST /v1/services/register", s.hRegisterService)
	handle("GET /v1/services", s.hServices)
	handle("GET /v1/services/{id}", s.hService)
	handle("POST /v1/services/{id}/rate", s.hRateService)
	handle("GET /v1/providers/{id}/reputation", s.hReputation)
}

// ServiceRegistration is the body of POST /v1/services/register: seed
// 000's service_config.json (service_id, name, type, specs, pricing,
// availability), and the sample configurations' spellings (id; pricing
// rate and unit; specs gpu and memory).
type ServiceRegistration struct {
	ServiceID    string         `json:"service_id"`
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	Type         string         `json:"type"`
	Description  string         `json:"description"`
	Specs        map[string]any `json:"specs"`
	Pricing      map[string]any `json:"pricing"`
	Availability map[string]any `json:"availability"`
	Capacity     uint32         `json:"capacity"`
	AutoAccept   bool           `json:"auto_accept"`
	Model        string         `json:"model"`
}

// maxSpecs bounds what a registration may carry into the listing's
// parameters (the chain allows 16).
const maxSpecs = 12

// Listing turns a registration into the chain's listing spec.
func (r ServiceRegistration) Listing() (market.ListingSpec, error) {
	bad := func(format string, a ...any) error { return errf(ErrInvalidRequest, format, a...) }
	id := r.ServiceID
	if id == "" {
		id = r.ID
	}
	if id != "" && !market.ValidID(id) {
		return market.ListingSpec{}, bad("service_id %q: 1-64 of a-z 0-9 . _ - starting with a letter or digit", id)
	}
	typ := market.NormalizeType(r.Type)
	if typ == "" {
		return market.ListingSpec{}, bad("type %q: one of %v (or gpu_compute)", r.Type, market.Types)
	}
	spec := market.ListingSpec{ID: id, Name: strings.TrimSpace(r.Name), Type: typ, Description: r.Description,
		Capacity: r.Capacity, AutoAccept: r.AutoAccept, Model: r.Model}
	if spec.Name == "" {
		return market.ListingSpec{}, bad("name is required")
	}
	// Pricing: {"rate_per_hour": 100} | {"rate": 100, "unit": "hour"} |
	// {"price": 2, "unit": "job"} | {"rate_per_job": ...} | {"rate_per_1k_tokens": ...}.
	var price any
	unit := ""
	for k, v := range r.Pricing {
		switch k {
		case "rate_per_hour", "per_hour":
			price, unit = v, market.UnitHour
		case "rate_per_job", "per_job":
			price, unit = v, market.UnitJob
		case "rate_per_1k_tokens", "per_1k_tokens":
			price, unit = v, market.UnitKTokens
		case "rate", "price", "amount":
			price = v
		case "unit", "model":
			if s, ok := v.(string); ok {
				if unit = market.NormalizeUnit(s); unit == "" {
					return market.ListingSpec{}, bad("pricing unit %q: hour, job or 1k-tokens", s)
				}
			}
		case "currency":
			if s, _ := v.(string); s != "" && !strings.EqualFold(s, coin.Denom) {
				return market.ListingSpec{}, bad("pricing currency must be %s", coin.Denom)
			}
		default:
			return market.ListingSpec{}, bad("pricing.%s is not understood (rate_per_hour, rate_per_job, rate_per_1k_tokens, rate, unit, currency)", k)
		}
	}
	p, err := amountOf(price)
	if err != nil || p == 0 {
		return market.ListingSpec{}, bad("pricing needs a positive rate (rate_per_hour, rate, ...): %v", err)
	}
	spec.Price, spec.Unit = p, unit
	if len(r.Specs) > maxSpecs {
		return market.ListingSpec{}, bad("at most %d specs", maxSpecs)
	}
	for k, v := range r.Specs {
		val := fmt.Sprint(v)
		if b, err := json.Marshal(v); err == nil && !isScalar(v) {
			val = string(b)
		}
		switch k {
		case "gpu", "gpu_type", "gpu_model":
			spec.GPU = val
		case "memory", "gpu_memory", "memory_gb", "gpu_memory_gb":
			mb, err := memoryMB(v)
			if err != nil {
				return market.ListingSpec{}, bad("specs.%s: %v", k, err)
			}
			spec.GPUMemoryMB = mb
		case "model":
			spec.Model = val
		}
		spec.Params = append(spec.Params, market.Param{Key: k, Value: val})
	}
	for k, v := range r.Availability {
		switch k {
		case "start_time", "from", "start":
			t, err := timeOf(v)
			if err != nil {
				return market.ListingSpec{}, bad("availability.%s: %v", k, err)
			}
			spec.From = t
		case "end_time", "until", "end":
			t, err := timeOf(v)
			if err != nil {
				return market.ListingSpec{}, bad("availability.%s: %v", k, err)
			}
			spec.Until = t
		case "timezone":
			if s, _ := v.(string); s != "" && s != "UTC" {
				return market.ListingSpec{}, bad("availability times are UTC (RFC 3339 with an offset)")
			}
		case "capacity":
			n, err := amountOf(v)
			if err != nil {
				return market.ListingSpec{}, bad("availability.capacity: %v", err)
			}
			spec.Capacity = uint32(n / coin.Unit)
		default:
			return market.ListingSpec{}, bad("availability.%s is not understood (start_time, end_time, timezone, capacity)", k)
		}
	}
	return spec, nil
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, float64, bool, nil:
		return true
	}
	return false
}

// amountOf reads a JSON number or string as AITBC.
func amountOf(v any) (coin.Amount, error) {
	switch x := v.(type) {
	case float64:
		return coin.Parse(strconv.FormatFloat(x, 'f', -1, 64))
	case string:
		return coin.Parse(strings.TrimSpace(x))
	case nil:
		return 0, errors.New("missing")
	}
	return 0, fmt.Errorf("%v is not an amount", v)
}

// memoryMB reads "24GB", "24576MB", 24 (GB).
func memoryMB(v any) (uint64, error) {
	s := strings.ToUpper(strings.TrimSpace(fmt.Sprint(v)))
	mult := uint64(1024)
	switch {
	case strings.HasSuffix(s, "GB"), strings.HasSuffix(s, "GIB"):
		s = strings.TrimSuffix(strings.TrimSuffix(s, "GIB"), "GB")
	case strings.HasSuffix(s, "MB"), strings.HasSuffix(s, "MIB"):
		s, mult = strings.TrimSuffix(strings.TrimSuffix(s, "MIB"), "MB"), 1
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 || f > 1<<20 {
		return 0, fmt.Errorf("%v is not a memory size (24GB, 24576MB)", v)
	}
	return uint64(f * float64(mult)), nil
}

func timeOf(v any) (int64, error) {
	s, _ := v.(string)
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, fmt.Errorf("%v is not an RFC 3339 time", v)
	}
	return t.Unix(), nil
}

// marketFail writes a marketplace error: the chain's (or the node's) code
// with its status, else the coordinator's table.
func (s *Service) marketFail(w http.ResponseWriter, err error) {
	var api *httpx.APIError
	var ce *errs.Error
	switch {
	case errors.As(err, &api) && api.Status >= 400 && api.Status < 500:
		httpx.WriteError(w, api.Status, api.Code, api.Message)
	case errors.As(err, &ce):
		status := http.StatusBadRequest
		if ce.Kind == errs.KindNotFound {
			status = http.StatusNotFound
		}
		httpx.WriteError(w, status, ce.Name, err.Error())
	default:
		s.fail(w, err)
	}
}

// errNoNode is answered when the coordinator has no node to read from.
var errNoNode = errors.New("coordinator: no node configured for marketplace queries")

func (s *Service) node() (module.Getter, error) {
	if s.cfg.Chain != nil {
		return s.cfg.Chain, nil
	}
	if g, ok := s.view.(module.Getter); ok {
		return g, nil
	}
	return nil, errNoNode
}

// submitMarket sends msg with the coordinator's key and waits (up to 30 s)
// for its block: a refusal comes back as the chain's error code.
func (s *Service) submitMarket(ctx context.Context, g module.Getter, send func(context.Context) (string, error)) (rpc.Transaction, error) {
	hash, err := send(ctx)
	if err != nil {
		return rpc.Transaction{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		var t rpc.Transaction
		err := g.GetJSON(wctx, "/api/v1/transaction/"+url.PathEscape(hash), &t)
		switch {
		case err == nil && t.Status == "committed":
			return t, nil
		case err == nil && t.Status == "failed":
			if e := errs.Lookup(t.Codespace, t.Code); e != nil {
				return t, fmt.Errorf("%w: %s", e, t.Error)
			}
			return t, errf(ErrInvalidRequest, "%s", t.Error)
		case err != nil && !httpx.IsCode(err, "tx_not_found") && !httpx.IsCode(err, "not_found"):
			var api *httpx.APIError
			if !errors.As(err, &api) || api.Status != http.StatusNotFound {
				return t, err
			}
		}
		select {
		case <-wctx.Done():
			return rpc.Transaction{}, fmt.Errorf("transaction %s not committed in time: %w", hash, wctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// RegisteredService is the answer to POST /v1/services/register.
type RegisteredService struct {
	market.ServiceView
	TxHash string `json:"tx_hash"`
	Height int64  `json:"height"`
}

func (s *Service) hRegisterService(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
		return
	}
	var reg ServiceRegistration
	if err := httpx.DecodeJSON(r, &reg); err != nil {
		s.fail(w, errf(ErrInvalidRequest, "%s", err.Error()))
		return
	}
	spec, err := reg.Listing()
	if err != nil {
		s.fail(w, err)
		return
	}
	g, nodeErr := s.node()
	// The tenant pays the listing fee from its deposit with this
	// coordinator (market.ListingFee, charged by the chain with the
	// listing, what a listing through the CLI costs): without it the
	// chain would refuse the listing, so it is refused here first.
	if d, err := s.depositOf(r.Context(), g, nodeErr, t.Address); err == nil && d.Amount < market.ListingFee {
		s.fail(w, errf(ErrInsufficientDeposit, "registering a service costs %s AITBC from your deposit with this coordinator (%s), which holds %s: deposit first (aitbc deposit add)",
			market.ListingFee, s.cfg.Address, d.Amount))
		return
	}
	// The coordinator signs the transaction and pays its fee, which the
	// deposit pays back: a valid listing still spends one of the tenant's
	// listings allowance (Limits.ListingRate).
	if !s.allowListing(r.Context(), w, t.ID) { // listing_rate.go: shared by the coordinators of a shared store
		return
	}
	if nodeErr != nil {
		s.fail(w, nodeErr)
		return
	}
	msg := market.NewCreateForMsg(spec, t.Address)
	res, err := s.submitMarket(r.Context(), g, func(ctx context.Context) (string, error) { return s.cfg.Sender.Send(ctx, msg) })
	if err != nil {
		s.marketFail(w, err)
		return
	}
	list, err := market.QueryServices(r.Context(), g, market.ServiceFilter{Provider: &t.Address, All: true})
	if err != nil {
		s.marketFail(w, err)
		return
	}
	for _, v := range list.Services {
		if v.Created == res.Height && v.Name == spec.Name && (spec.ID == "" || v.ID == spec.ID) {
			s.log.Info("service registered", "service", v.ID, "provider", t.Address.String(), "tx", res.Hash)
			httpx.WriteJSON(w, http.StatusCreated, RegisteredService{ServiceView: v, TxHash: res.Hash, Height: res.Height})
			return
		}
	}
	s.fail(w, fmt.Errorf("listing committed in block %d but not found", res.Height))
}

// depositOf reads a tenant's deposit with this coordinator, when it has a
// node to read it from.
func (s *Service) depositOf(ctx context.Context, g module.Getter, nodeErr error, a address.Address) (jobs.DepositView, error) {
	if nodeErr != nil {
		return jobs.DepositView{}, nodeErr
	}
	return jobs.QueryDeposit(ctx, g, a, s.cfg.Address)
}

// ServiceFilterOf reads GET /v1/services' filters: category (a type or the
// seed's "GPU Computing"), min_price/max_price or price_range "50-200",
// available=now, gpu (a substring of the GPU model), min_memory ("16GB",
// or MB), q, model, provider, type.
func ServiceFilterOf(q url.Values) (market.ServiceFilter, error) {
	var f market.ServiceFilter
	bad := func(format string, a ...any) error { return errf(ErrInvalidRequest, format, a...) }
	for _, k := range []string{"category", "type"} {
		if v := q.Get(k); v != "" {
			if f.Type = market.NormalizeType(v); f.Type == "" {
				return f, bad("%s %q: one of %v", k, v, market.Types)
			}
		}
	}
	lo, hi := q.Get("min_price"), q.Get("max_price")
	if pr := q.Get("price_range"); pr != "" {
		var ok bool
		if lo, hi, ok = strings.Cut(strings.Fields(pr + " ")[0], "-"); !ok {
			return f, bad("price_range %q: low-high, e.g. 50-200", pr)
		}
	}
	var err error
	if lo != "" {
		if f.MinPrice, err = coin.Parse(lo); err != nil {
			return f, bad("min price %q: %v", lo, err)
		}
	}
	if hi != "" {
		if f.MaxPrice, err = coin.Parse(hi); err != nil {
			return f, bad("max price %q: %v", hi, err)
		}
	}
	switch a := strings.ToLower(q.Get("available")); a {
	case "", "any", "false":
	case "now", "true", "available now":
		f.AvailableNow = true
	default:
		return f, bad("available %q: now", a)
	}
	if m := q.Get("min_memory"); m != "" {
		if f.MinMemoryMB, err = memoryMB(m); err != nil {
			return f, bad("min_memory: %v", err)
		}
	}
	if p := q.Get("provider"); p != "" {
		a, err := address.Parse(p)
		if err != nil {
			return f, errf(ErrInvalidAddress, "provider: %v", err)
		}
		f.Provider = &a
	}
	f.GPU, f.Query, f.Model = q.Get("gpu"), q.Get("q"), q.Get("model")
	return f, nil
}

func (s *Service) hServices(w http.ResponseWriter, r *http.Request) {
	f, err := ServiceFilterOf(r.URL.Query())
	if err != nil {
		s.fail(w, err)
		return
	}
	g, err := s.node()
	if err != nil {
		s.fail(w, err)
		return
	}
	list, err := market.QueryServices(r.Context(), g, f)
	if err != nil {
		s.marketFail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, list)
}

func (s *Service) hService(w http.ResponseWriter, r *http.Request) {
	g, err := s.node()
	if err != nil {
		s.fail(w, err)
		return
	}
	d, err := market.QueryService(r.Context(), g, r.PathValue("id"))
	if err != nil {
		s.marketFail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, d)
}

// hReputation answers a provider's reputation; {id} is its address, or the
// id of one of its services (the seed names providers by a slug).
func (s *Service) hReputation(w http.ResponseWriter, r *http.Request) {
	g, err := s.node()
	if err != nil {
		s.fail(w, err)
		return
	}
	id := r.PathValue("id")
	a, err := address.Parse(id)
	if err != nil {
		d, serr := market.QueryService(r.Context(), g, id)
		if serr != nil {
			s.fail(w, errf(ErrInvalidAddress, "%q is neither a provider address nor a service id", id))
			return
		}
		a = d.Provider
	}
	pv, err := market.QueryProvider(r.Context(), g, a)
	if err != nil {
		s.marketFail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, pv)
}

// RateRequest is the body of POST /v1/services/{id}/rate (seed 000's):
// rating 1-5 and a review. job_id picks the rated job; without it the
// tenant's newest delivered, unrated job under the service is rated.
// customer_id is accepted and must be the tenant's own when given.
type RateRequest struct {
	Rating     uint8  `json:"rating"`
	Review     string `json:"review"`
	CustomerID string `json:"customer_id"`
	JobID      string `json:"job_id"`
}

// RateResult is its answer.
type RateResult struct {
	ServiceID string `json:"service_id"`
	JobID     string `json:"job_id"`
	Rating    uint8  `json:"rating"`
	TxHash    string `json:"tx_hash"`
	Height    int64  `json:"height"`
}

func (s *Service) hRateService(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
		return
	}
	var req RateRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		s.fail(w, errf(ErrInvalidRequest, "%s", err.Error()))
		return
	}
	if req.Rating < 1 || req.Rating > 5 || len(req.Review) > 280 {
		httpx.WriteError(w, http.StatusBadRequest, market.ErrInvalidRating.Name, "rating must be 1-5 with a review of at most 280 bytes")
		return
	}
	if req.CustomerID != "" && req.CustomerID != t.ID && req.CustomerID != t.Name && req.CustomerID != t.Address.String() {
		s.fail(w, errf(ErrInvalidRequest, "customer_id %q is not this API key's tenant", req.CustomerID))
		return
	}
	g, err := s.node()
	if err != nil {
		s.fail(w, err)
		return
	}
	ctx := r.Context()
	service := r.PathValue("id")
	if _, err := market.QueryService(ctx, g, service); err != nil {
		s.marketFail(w, err)
		return
	}
	job := req.JobID
	if job == "" {
		if job, err = s.unratedJob(ctx, g, t, service); err != nil {
			s.marketFail(w, err)
			return
		}
	}
	id, err := hex.DecodeString(strings.TrimPrefix(job, "0x"))
	if err != nil {
		s.fail(w, errf(ErrInvalidID, "job_id %q: hex", job))
		return
	}
	msg := market.NewRateForMsg(id, req.Rating, req.Review, t.Address)
	res, err := s.submitMarket(ctx, g, func(ctx context.Context) (string, error) { return s.cfg.Sender.Send(ctx, msg) })
	if err != nil {
		s.marketFail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, RateResult{ServiceID: service, JobID: job, Rating: req.Rating, TxHash: res.Hash, Height: res.Height})
}

// unratedJob finds the tenant's newest job that ran under the service,
// settled, and has no rating yet.
func (s *Service) unratedJob(ctx context.Context, g module.Getter, t *store.Tenant, service string) (string, error) {
	jobs, err := s.cfg.Store.JobsByTenant(ctx, t.ID, 500)
	if err != nil {
		return "", err
	}
	rl, err := market.QueryRatings(ctx, g, market.Filter{Customer: &t.Address, Service: service})
	if err != nil {
		return "", err
	}
	rated := map[string]bool{}
	for _, x := range rl.Ratings {
		rated[x.JobID] = true
	}
	for _, j := range jobs { // newest first
		if j.Status != store.StatusSettled || rated[j.ID] {
			continue
		}
		b, err := market.QueryJob(ctx, g, j.ID)
		if err != nil || b.Service != service || b.Pending {
			continue
		}
		return j.ID, nil
	}
	return "", fmt.Errorf("%w: no delivered, unrated job of yours ran under service %s", market.ErrNotRateable, service)
}

// agreementFor finds the customer's live agreement on a service that can
// take another job, and the service's provider.
func agreementFor(ctx context.Context, g module.Getter, customer address.Address, service string) (string, address.Address, error) {
	d, err := market.QueryService(ctx, g, service)
	if err != nil {
		return "", address.Address{}, err
	}
	if err := availableNow(d.ServiceView); err != nil {
		return "", address.Address{}, err
	}
	al, err := market.QueryAgreements(ctx, g, market.Filter{Customer: &customer, Service: service})
	if err != nil {
		return "", address.Address{}, err
	}
	for _, a := range al.Agreements {
		full := a.Unit == market.UnitJob && uint64(a.Jobs-a.Failed) >= a.Units
		if a.Status == "active" && !full && a.Remaining > 0 {
			return a.ID, d.Provider, nil
		}
	}
	return "", address.Address{}, fmt.Errorf("%w: %s has no agreement with service %s that can take a job; bid on it and have the bid accepted first",
		market.ErrNotBindable, customer, service)
}

// availableNow refuses a service outside its availability window (the
// chain would refuse to bind a job to it), naming the window.
func availableNow(v market.ServiceView) error {
	if v.AvailableNow {
		return nil
	}
	at := func(t *time.Time) string {
		if t == nil {
			return "open"
		}
		return t.UTC().Format(time.RFC3339)
	}
	return fmt.Errorf("%w: service %s is available from %s to %s, not now; no job runs under it outside that window",
		market.ErrUnavailable, v.ID, at(v.From), at(v.Until))
}

// checkService refuses a job naming a service it cannot run under: an
// unknown service, one the tenant has no usable agreement with, or (a job
// the customer already created on chain) one its job is not bound to.
func (s *Service) checkService(ctx context.Context, t *store.Tenant, r *JobRequest) error {
	if r.ServiceID == "" {
		return nil
	}
	g, err := s.node()
	if err != nil {
		return err
	}
	var prov address.Address
	if r.ID != "" {
		b, err := market.QueryJob(ctx, g, r.ID)
		d, serr := market.QueryService(ctx, g, r.ServiceID)
		if serr != nil {
			return serr
		}
		if err := availableNow(d.ServiceView); err != nil {
			return err
		}
		if err != nil || b.Service != r.ServiceID {
			return fmt.Errorf("%w: job %s does not run under service %s (bind it to your agreement first)", market.ErrNotBindable, r.ID, r.ServiceID)
		}
		prov = d.Provider
	} else if _, prov, err = agreementFor(ctx, g, t.Address, r.ServiceID); err != nil {
		return err
	}
	// The agreement pays the provider for the delivery, so only a miner
	// serving the provider may run the job (sched.Job.Provider): its own,
	// or one it named that named it back (the chain refuses any other
	// assignment). A provider with none could never deliver it.
	pv, err := market.QueryProvider(ctx, g, prov)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noteProviderLocked(r.ServiceID, prov)
	s.noteServingLocked(prov, pv.Serving)
	if len(pv.Serving) == 0 {
		return fmt.Errorf("%w: service %s is provided by %s, which runs no active miner on chain and names none that consents (market add-miner, miner start --provider): a job under it could run nowhere",
			market.ErrNotBindable, r.ServiceID, prov)
	}
	return nil
}

// noteServingLocked remembers the miners that may run prov's bound jobs.
func (s *Service) noteServingLocked(prov address.Address, miners []address.Address) {
	if s.trust.serving == nil || len(s.trust.serving) >= maxKnownProviders {
		s.trust.serving = map[address.Address][]address.Address{}
	}
	s.trust.serving[prov] = miners
}

// servingLocked is the miners besides its own that may run prov's bound
// jobs, as last read from the chain (nil for an unbound job).
func (s *Service) servingLocked(prov *address.Address) []address.Address {
	if prov == nil {
		return nil
	}
	return s.trust.serving[*prov]
}

// trustEvery is how often the coordinator reads its connected miners'
// reputation and delegated stake from the chain for the scheduler.
const trustEvery = 5 * time.Second

// maxProviderLookups bounds the services whose provider one pass reads.
const maxProviderLookups = 32

// trustView is what the scheduler needs from the chain beyond the miner
// registry: each connected miner's reputation as a provider (the market
// module's score) and the stake delegated to it (the staking module), and
// the provider of each service a live job is bound to. Guarded by s.mu.
type trustView struct {
	at        time.Time
	rep       map[address.Address]uint32
	bonded    map[address.Address]coin.Amount
	providers map[string]address.Address // service id → provider: a listing's provider never changes
	// serving: provider → the miners that may run its bound jobs (its
	// own, and those named both ways), re-read every trustEvery for the
	// providers of live bound jobs: either side may end a relation.
	serving map[address.Address][]address.Address
}

// maxKnownProviders bounds the services whose provider the coordinator
// remembers; past it the memory starts over (refreshTrust reads again
// what live jobs need).
const maxKnownProviders = 4096

func (s *Service) noteProviderLocked(service string, prov address.Address) {
	if s.trust.providers == nil || len(s.trust.providers) >= maxKnownProviders {
		s.trust.providers = map[string]address.Address{}
	}
	s.trust.providers[service] = prov
}

// boundProviderLocked is the provider whose miner alone may run j, and
// whether it is known yet (true with nil for a job bound to no service).
func (s *Service) boundProviderLocked(j *store.Job) (*address.Address, bool) {
	if j.ServiceID == "" {
		return nil, true
	}
	p, ok := s.trust.providers[j.ServiceID]
	if !ok {
		return nil, false
	}
	return &p, true
}

// refreshTrust reads, outside the lock, the reputation and delegated
// stake of the connected miners (every trustEvery) and the provider of
// each service a live job is bound to that is not known yet; the answers
// are stored under the lock. A failed read keeps the previous figures.
func (s *Service) refreshTrust(ctx context.Context) {
	g, err := s.node()
	if err != nil {
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	due := now.Sub(s.trust.at) >= trustEvery
	var addrs []address.Address
	if due {
		for a := range s.miners {
			if len(addrs) < market.MaxReputations {
				addrs = append(addrs, a)
			}
		}
	}
	var services []string
	var provs []address.Address
	seen := map[string]bool{}
	seenProv := map[address.Address]bool{}
	for _, lj := range s.live {
		id := lj.job.ServiceID
		if p, ok := s.trust.providers[id]; ok && !seenProv[p] && len(provs) < maxProviderLookups {
			if _, known := s.trust.serving[p]; due || !known {
				seenProv[p] = true
				provs = append(provs, p)
			}
		}
		if _, ok := s.trust.providers[id]; id == "" || ok || seen[id] || len(services) >= maxProviderLookups {
			continue
		}
		seen[id] = true
		services = append(services, id)
	}
	s.mu.Unlock()

	found := map[string]address.Address{}
	for _, id := range services {
		d, err := market.QueryService(ctx, g, id)
		if err != nil {
			s.log.Warn("provider of a bound job's service", "service", id, "err", err)
			continue
		}
		found[id] = d.Provider
		if !seenProv[d.Provider] {
			seenProv[d.Provider] = true
			provs = append(provs, d.Provider)
		}
	}
	serving := map[address.Address][]address.Address{}
	for _, p := range provs {
		pv, err := market.QueryProvider(ctx, g, p)
		if err != nil {
			s.log.Warn("miners serving a bound job's provider", "provider", p, "err", err)
			continue
		}
		serving[p] = pv.Serving
	}
	var rep map[address.Address]uint32
	var bonded map[address.Address]coin.Amount
	if due {
		rep, bonded = s.readTrust(ctx, g, addrs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, p := range found {
		s.noteProviderLocked(id, p)
	}
	for p, m := range serving {
		s.noteServingLocked(p, m)
	}
	if len(found) > 0 || len(serving) > 0 {
		s.poke() // the jobs bound to these services may be placed now
	}
	if due {
		s.trust.at = now
		if rep != nil {
			s.trust.rep = rep
		}
		if bonded != nil {
			s.trust.bonded = bonded
		}
	}
}

// readTrust reads the reputations of addrs and every operator's bonded
// stake; a part that fails is nil.
func (s *Service) readTrust(ctx context.Context, g module.Getter, addrs []address.Address) (map[address.Address]uint32, map[address.Address]coin.Amount) {
	var rep map[address.Address]uint32
	if len(addrs) > 0 {
		if l, err := market.QueryReputations(ctx, g, addrs); err != nil {
			s.log.Warn("miners' reputation", "err", err)
		} else {
			rep = make(map[address.Address]uint32, len(l.Reputations))
			for _, r := range l.Reputations {
				rep[r.Provider] = r.Reputation.Score
			}
		}
	}
	var ops staking.Operators
	if err := g.GetJSON(ctx, "/api/v1/staking/operators", &ops); err != nil {
		s.log.Warn("miners' delegated stake", "err", err)
		return rep, nil
	}
	bonded := make(map[address.Address]coin.Amount, len(ops.Operators))
	for _, o := range ops.Operators {
		if o.Kind == "miner" {
			bonded[o.Address] = o.Bonded
		}
	}
	return rep, bonded
}

// sendBindLocked queues, right after a deposit job's create, its binding
// to the customer's agreement on the job's service, so that the job is
// bound before it can be assigned or settled (the writer sends in order):
// when it settles, the agreement pays the provider.
func (s *Service) sendBindLocked(lj *liveJob) {
	j := lj.job
	if j.ServiceID == "" {
		return
	}
	id, service, customer := j.ID, j.ServiceID, j.Customer
	s.chain.Enqueue(chainwriter.Op{Kind: "bind", JobID: id,
		Build: func(ctx context.Context) (*tx.Msg, error) {
			g, err := s.node()
			if err != nil {
				return nil, err
			}
			agr, _, err := agreementFor(ctx, g, customer, service)
			if err != nil {
				return nil, err
			}
			raw, _ := hex.DecodeString(id)
			msg := market.NewBindMsg(agr, raw)
			return &msg, nil
		},
		Done: func(hash string, err error) {
			if err != nil {
				s.log.Warn("job not bound to its service's agreement", "job", id, "service", service, "err", err)
				return
			}
			s.log.Info("job bound to its service's agreement", "job", id, "service", service, "tx", hash)
		}})
}

package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/coordinator"
)

// Service is a service on offer as the marketplace lists it. Until the
// market module brings listings, each registered miner's offer is one
// service: its id is the miner's address, its figures the registry's.
type Service struct {
	ID           string      `json:"service_id"`
	Provider     string      `json:"provider"`
	Type         string      `json:"type"`
	Models       []string    `json:"models"`
	GPU          string      `json:"gpu"`
	MemoryMB     uint64      `json:"gpu_memory_mb"`
	PricePer1k   coin.Amount `json:"price_per_1k_tokens"`
	Available    bool        `json:"available_now"`
	Availability string      `json:"availability"` // why it is or is not available now
	Stake        coin.Amount `json:"stake"`
	JobsSettled  uint64      `json:"jobs_settled"`
	TokensOut    uint64      `json:"tokens_out"`
	Heartbeat    time.Time   `json:"last_heartbeat"`
	TokensPerSec *float64    `json:"tokens_per_sec,omitempty"`
	SuccessRate  *float64    `json:"success_rate,omitempty"`
}

// serviceTypes are the kinds of work the miners' registry offers: each
// registered miner's offer is an inference service.
var serviceTypes = []string{"inference"}

// sameType reports whether two spellings name one service type
// ("inference" is the market module's "ai-inference").
func sameType(a, b string) bool {
	return a == b || market.NormalizeType(a) != "" && market.NormalizeType(a) == market.NormalizeType(b)
}

func (s *Server) services(ctx context.Context) ([]Service, string, error) {
	lb, err := s.leaderboard(ctx)
	if err != nil {
		return nil, "", err
	}
	var out []Service
	for _, m := range lb.Rows {
		if m.Status != "active" {
			continue
		}
		sv := Service{ID: m.Address, Provider: m.Address, Type: "inference", Models: m.Models, GPU: m.GPU, MemoryMB: m.GPUMemoryMB,
			PricePer1k: m.PricePer1k, Stake: m.Stake, JobsSettled: m.JobsSettled, TokensOut: m.TokensOut, Heartbeat: m.Heartbeat,
			TokensPerSec: m.TokensPerSec, SuccessRate: m.SuccessRate}
		switch {
		case !m.Connected:
			sv.Availability = "not connected to the coordinator"
		case m.Running >= m.Slots:
			sv.Availability = fmt.Sprintf("connected, all %d slots busy", m.Slots)
		default:
			sv.Available = true
			sv.Availability = fmt.Sprintf("connected, %d of %d slots free", m.Slots-m.Running, m.Slots)
		}
		out = append(out, sv)
	}
	return out, lb.CoordErr, nil
}

// filterForm is the marketplace's filter form as typed, so that it shows
// again with the results.
type filterForm struct {
	Type, MinPrice, MaxPrice, GPU, MinMemoryGB string
	Available                                  bool
}

func readFilter(q url.Values) (filterForm, ListingFilter, []string) {
	f := filterForm{Type: q.Get("type"), MinPrice: strings.TrimSpace(q.Get("min_price")), MaxPrice: strings.TrimSpace(q.Get("max_price")),
		GPU: q.Get("gpu"), MinMemoryGB: strings.TrimSpace(q.Get("min_memory_gb")), Available: q.Get("available") == "1"}
	lf := ListingFilter{Type: f.Type, GPU: f.GPU, AvailableNow: f.Available}
	var problems []string
	if f.MinPrice != "" {
		a, err := coin.Parse(f.MinPrice)
		if err != nil {
			problems = append(problems, "Lowest price must be an amount of AITBC, like 0.5.")
		}
		lf.MinPrice = a
	}
	if f.MaxPrice != "" {
		a, err := coin.Parse(f.MaxPrice)
		if err != nil {
			problems = append(problems, "Highest price must be an amount of AITBC, like 2.")
		}
		lf.MaxPrice = a
	}
	if f.MinMemoryGB != "" {
		gb, err := strconv.ParseFloat(f.MinMemoryGB, 64)
		if err != nil || gb < 0 || gb > 1e6 {
			problems = append(problems, "Memory must be a number of GB, like 8.")
		}
		lf.MinMemoryMB = uint64(gb * 1024)
	}
	return f, lf, problems
}

func (f ListingFilter) keeps(sv Service) bool {
	switch {
	case f.Type != "" && !sameType(f.Type, sv.Type):
	case sv.PricePer1k < f.MinPrice:
	case f.MaxPrice > 0 && sv.PricePer1k > f.MaxPrice:
	case f.AvailableNow && !sv.Available:
	case f.GPU != "" && f.GPU != sv.GPU:
	case sv.MemoryMB < f.MinMemoryMB:
	default:
		return true
	}
	return false
}

type marketData struct {
	Form     filterForm
	Problems []string
	Services []Service
	Total    int
	Types    []string
	GPUs     []string
	CoordErr string
	Market   bool
	Listings []Listing
}

func (s *Server) marketData(ctx context.Context, q url.Values) (marketData, error) {
	all, coordErr, err := s.services(ctx)
	if err != nil {
		return marketData{}, err
	}
	form, lf, problems := readFilter(q)
	d := marketData{Form: form, Problems: problems, Total: len(all), Types: serviceTypes, CoordErr: coordErr, Market: s.cfg.Market != nil}
	if d.Market {
		d.Types = market.Types
	}
	for _, sv := range all {
		if sv.GPU != "" && !slices.Contains(d.GPUs, sv.GPU) {
			d.GPUs = append(d.GPUs, sv.GPU)
		}
		if len(problems) == 0 && lf.keeps(sv) {
			d.Services = append(d.Services, sv)
		}
	}
	slices.Sort(d.GPUs)
	if s.cfg.Market != nil && len(problems) == 0 {
		if d.Listings, err = s.cfg.Market.Listings(ctx, lf); err != nil {
			return d, err
		}
	}
	return d, nil
}

func (s *Server) marketPage(w http.ResponseWriter, r *http.Request) error {
	d, err := s.marketData(r.Context(), r.URL.Query())
	if err != nil {
		return err
	}
	if wantCSV(r) {
		rows := [][]string{}
		for _, sv := range d.Services {
			rows = append(rows, []string{sv.ID, sv.Type, strings.Join(sv.Models, " "), sv.GPU, strconv.FormatUint(sv.MemoryMB, 10),
				sv.PricePer1k.String(), strconv.FormatBool(sv.Available), sv.Stake.String(), strconv.FormatUint(sv.JobsSettled, 10)})
		}
		return writeCSV(w, "services.csv", []string{"service_id", "type", "models", "gpu", "gpu_memory_mb", "price_per_1k_tokens",
			"available_now", "stake", "jobs_settled"}, rows)
	}
	return s.page(w, r, http.StatusOK, "marketplace.html", "Marketplace", "marketplace", d)
}

// quote is what a job of Tokens output tokens costs on a service.
type quote struct {
	Tokens     uint64
	Price      coin.Amount // to the miner
	Fee        coin.Amount // the protocol fee, to the block's fee split
	Commission coin.Amount // to the coordinator
	Total      coin.Amount // the escrow to lock: the job's max price
}

// params are the jobs module's parameters, read at most once a second.
func (s *Server) params(ctx context.Context) (jobs.Params, error) {
	return s.jobParams.get(ctx, func(ctx context.Context) (jobs.Params, error) { return jobs.QueryParams(ctx, s.cfg.Node) })
}

// quoteFor is what a job of tokens costs at most at per1k: the chain's
// own formulas (jobs.Params: the price, the protocol fee, the
// coordinator's commission), so the page's max price is what the
// coordinator's scheduler asks for.
func quoteFor(tokens uint64, per1k coin.Amount, p jobs.Params) quote {
	price := jobs.PriceFor(tokens, per1k)
	return quote{Tokens: tokens, Price: price, Fee: p.Fee(price), Commission: p.Commission(price), Total: p.MaxCost(price)}
}

type serviceData struct {
	Service   Service
	Quote     *quote
	QuoteErr  string
	MaxTokens uint64
	FeeBps    string
	CanSubmit bool
	SubmitWhy string // why the job form is not offered
	Market    bool
	Rep       *ProviderRecord // the market module's reputation and ratings of the miner
	RepErr    string
	Prompt    string
	Error     string
}

func (s *Server) serviceData(ctx context.Context, id string, sess *session) (serviceData, error) {
	all, _, err := s.services(ctx)
	if err != nil {
		return serviceData{}, err
	}
	var d serviceData
	found := false
	for _, sv := range all {
		if sv.ID == id {
			d.Service, found = sv, true
		}
	}
	if !found {
		return d, errf(ErrNotFound, "no service %q on offer", id)
	}
	params, err := s.params(ctx)
	if err != nil {
		return d, err
	}
	d.MaxTokens, d.FeeBps, d.Market = params.MaxTokens, bps(params.FeeBps), s.cfg.Market != nil
	if a, err := address.Parse(d.Service.Provider); err == nil {
		d.Rep, d.RepErr = s.providerRecord(ctx, a)
	}
	switch {
	case s.cfg.Coordinator == nil:
		d.SubmitWhy = "This server has no coordinator to send jobs to."
	case sess == nil:
		d.SubmitWhy = "Sign in with your wallet to submit a job."
	case sess.tenantKey == "":
		d.SubmitWhy = "Your wallet cannot submit jobs here: " + sess.tenantErr + "."
	default:
		d.CanSubmit = true
	}
	return d, nil
}

func (s *Server) servicePage(w http.ResponseWriter, r *http.Request) error {
	sess := s.sessions.from(r)
	d, err := s.serviceData(r.Context(), r.PathValue("id"), sess)
	if IsNotFound(err) && s.cfg.Market != nil {
		// Not a miner's offer: a listing of the market module's, if any.
		l, lerr := s.cfg.Market.Listing(r.Context(), r.PathValue("id"))
		if lerr != nil {
			return lerr
		}
		return s.page(w, r, http.StatusOK, "listing.html", l.Name, "marketplace", l)
	}
	if err != nil {
		return err
	}
	if t := strings.TrimSpace(r.URL.Query().Get("tokens")); t != "" {
		n, err := strconv.ParseUint(t, 10, 64)
		if err != nil || n < 1 || n > d.MaxTokens {
			d.QuoteErr = fmt.Sprintf("Output tokens must be a whole number from 1 to %d.", d.MaxTokens)
		} else {
			params, err := s.params(r.Context())
			if err != nil {
				return err
			}
			q := quoteFor(n, d.Service.PricePer1k, params)
			d.Quote = &q
		}
	}
	return s.page(w, r, http.StatusOK, "service.html", "Service "+short(d.Service.ID), "marketplace", d)
}

// jobSubmit sends a job to the coordinator as the signed-in wallet's
// tenant: paid from that wallet's deposit with the coordinator, never
// anyone else's.
func (s *Server) jobSubmit(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	sess, err := s.signed(r)
	if err != nil {
		return err
	}
	id := r.PostFormValue("service_id")
	d, err := s.serviceData(r.Context(), id, sess)
	if err != nil {
		return err
	}
	if !d.CanSubmit {
		return errf(ErrSignInRequired, "%s", d.SubmitWhy)
	}
	prompt, model := r.PostFormValue("prompt"), r.PostFormValue("model")
	tokens, err := strconv.ParseUint(strings.TrimSpace(r.PostFormValue("max_tokens")), 10, 64)
	retry := func(msg string) error {
		d.Error, d.Prompt = msg, prompt
		return s.page(w, r, http.StatusBadRequest, "service.html", "Service "+short(id), "marketplace", d)
	}
	switch {
	case strings.TrimSpace(prompt) == "":
		return retry("Write a prompt.")
	case len(prompt) > 16<<10:
		return retry("The prompt is longer than 16 KB.")
	case !slices.Contains(d.Service.Models, model):
		return retry("Choose one of this service's models.")
	case err != nil || tokens < 1 || tokens > d.MaxTokens:
		return retry(fmt.Sprintf("Output tokens must be a whole number from 1 to %d.", d.MaxTokens))
	}
	params, err := s.params(r.Context())
	if err != nil {
		return err
	}
	q := quoteFor(tokens, d.Service.PricePer1k, params)
	v, err := s.cfg.Coordinator.Tenant(sess.tenantKey).Submit(r.Context(), coordinator.JobRequest{
		// No ServiceID: a miner's offer is not a market listing, and the
		// coordinator runs a job with a service id only under the
		// customer's agreement for that listing.
		Model: model, Prompt: prompt, MaxTokens: int(tokens), MaxPrice: q.Total,
	})
	if err != nil {
		_, _, msg := classify(err)
		return retry("The coordinator refused the job: " + msg)
	}
	http.Redirect(w, r, "/marketplace/jobs/"+url.PathEscape(v.JobID), http.StatusSeeOther)
	return nil
}

type myJobData struct {
	Job      coordinator.JobView
	Chain    *jobs.View
	Done     bool
	Explorer string
}

// myJob reads a job of the signed-in wallet's; anyone else's is not
// found, as the coordinator answers it.
func (s *Server) myJob(ctx context.Context, sess *session, id string) (myJobData, error) {
	if sess == nil {
		return myJobData{}, errf(ErrSignInRequired, "sign in to see your jobs")
	}
	if sess.tenantKey == "" {
		return myJobData{}, errf(ErrNotFound, "no job %s for this wallet", id)
	}
	v, err := s.cfg.Coordinator.Tenant(sess.tenantKey).Results(ctx, id)
	if err != nil {
		return myJobData{}, err
	}
	d := myJobData{Job: v, Explorer: "/explorer/job/" + v.JobID}
	if cj, err := jobs.QueryJob(ctx, s.cfg.Node, v.JobID); err == nil {
		d.Chain = &cj
		d.Done = cj.Status == "settled" || cj.Status == "expired" || cj.Status == "canceled"
	}
	return d, nil
}

func (s *Server) myJobPage(w http.ResponseWriter, r *http.Request) error {
	sess := s.sessions.from(r)
	if sess == nil {
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
		return nil
	}
	d, err := s.myJob(r.Context(), sess, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.page(w, r, http.StatusOK, "myjob.html", "Job "+short(d.Job.JobID), "marketplace", d)
}

// myJobEvents streams a job of the signed-in wallet's to its page: the
// coordinator's events (status, tokens as the miner writes them, done),
// then, once the chain has settled it, the receipt and the settlement.
func (s *Server) myJobEvents(w http.ResponseWriter, r *http.Request) error {
	sess := s.sessions.from(r)
	id := r.PathValue("id")
	d, err := s.myJob(r.Context(), sess, id)
	if err != nil {
		return err
	}
	ctx, cancel := s.streamContext(r.Context())
	defer cancel()
	sse, err := startSSE(w)
	if err != nil {
		return err
	}
	tenant := s.cfg.Coordinator.Tenant(sess.tenantKey)
	if !d.Done {
		err = tenant.Stream(ctx, d.Job.JobID, func(e coordinator.Event) {
			sse.send(e.Type, "", e)
		})
		if err != nil && ctx.Err() == nil {
			_, _, msg := classify(err)
			sse.send("problem", "", map[string]string{"message": "the coordinator's stream ended: " + msg})
		}
	}
	// Settlement lands a block or two after the last token.
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	deadline := time.Now().Add(2 * time.Minute)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		v, err := tenant.Results(ctx, d.Job.JobID)
		if err == nil {
			cj, cerr := jobs.QueryJob(ctx, s.cfg.Node, d.Job.JobID)
			if cerr == nil && cj.Status != "open" && cj.Status != "assigned" {
				if v.Result != nil {
					sse.send("result", "", map[string]string{"text": *v.Result})
				}
				if v.Receipt != nil {
					sse.send("receipt", "", v.Receipt)
				}
				sse.send("settlement", "", map[string]any{"status": cj.Status, "paid": cj.Paid, "protocol_fee": cj.Fee, "refund": cj.Refund,
					"settled_height": cj.Settled, "settle_tx": settleTx(v), "explorer": "/explorer/job/" + cj.ID})
				break
			}
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	sse.send("end", "", map[string]string{})
	return nil
}

func settleTx(v coordinator.JobView) string {
	if v.Settlement == nil {
		return ""
	}
	return v.Settlement.SettleTx
}

type mineData struct {
	Session  *session
	Jobs     []coordinator.JobView
	JobsErr  string
	Market   bool
	Bids     []Bid
	Deals    []Agreement
	Deposit  *jobs.DepositView
	CoordErr string
}

func (s *Server) minePage(w http.ResponseWriter, r *http.Request) error {
	sess := s.sessions.from(r)
	if sess == nil {
		http.Redirect(w, r, "/signin?next=/marketplace/mine", http.StatusSeeOther)
		return nil
	}
	d := mineData{Session: sess, Market: s.cfg.Market != nil}
	ctx := r.Context()
	switch {
	case s.cfg.Coordinator == nil:
		d.JobsErr = "This server has no coordinator."
	case sess.tenantKey == "":
		d.JobsErr = "No jobs: " + sess.tenantErr + "."
	default:
		js, err := s.cfg.Coordinator.Tenant(sess.tenantKey).Jobs(ctx, 20)
		if err != nil {
			_, _, d.JobsErr = classify(err)
		}
		d.Jobs = js
		if h, err := s.cfg.Coordinator.Health(ctx); err == nil {
			if coord, err := address.Parse(h.Coordinator); err == nil {
				if dep, err := jobs.QueryDeposit(ctx, s.cfg.Node, sess.Address, coord); err == nil {
					d.Deposit = &dep
				}
			}
		}
	}
	if s.cfg.Market != nil {
		var err error
		if d.Bids, err = s.cfg.Market.Bids(ctx, sess.Address); err != nil {
			return err
		}
		if d.Deals, err = s.cfg.Market.Agreements(ctx, sess.Address); err != nil {
			return err
		}
	}
	return s.page(w, r, http.StatusOK, "mine.html", "My marketplace", "marketplace", d)
}

// StarText draws a rating as stars.
func (r Rating) StarText() string {
	n := min(int(r.Stars), 5)
	return strings.Repeat("★", n) + strings.Repeat("☆", 5-n)
}

// repPart is one part of a reputation as its page shows it.
type repPart struct {
	Name, Weight, Value string
}

// Parts are the reputation's parts with their weights, as percentages.
func (r Reputation) Parts() []repPart {
	pc := func(pm uint32) string { return strconv.FormatFloat(float64(pm)/10, 'f', 1, 64) + "%" }
	return []repPart{
		{"Ratings", "40%", pc(r.RatingsPM)},
		{"Reliability (jobs delivered)", "30%", pc(r.ReliabilityPM)},
		{"Disputes not lost", "20%", pc(r.DisputesPM)},
		{"Uptime (miner heartbeats)", "10%", pc(r.UptimePM)},
	}
}

type provideData struct {
	Market bool
	Signed bool
	Form   ListingRequest
	Rate   string
	Error  string
	Types  []string
	Models []string
}

// pricingModelNames are the form's pricing models, in its order.
var pricingModelNames = []string{"per_1k_tokens", "per_hour", "per_job"}

func (s *Server) providePage(w http.ResponseWriter, r *http.Request) error {
	return s.page(w, r, http.StatusOK, "provide.html", "Become a Provider", "marketplace",
		provideData{Market: s.cfg.Market != nil, Signed: s.sessions.from(r) != nil, Types: market.Types, Models: pricingModelNames,
			Form: ListingRequest{Type: market.TypeAIInference, PricingModel: "per_1k_tokens"}})
}

// provideSubmit creates a listing on chain, signed by the signed-in
// wallet: the form asks for its password again, which signs this one
// transaction and is not kept.
func (s *Server) provideSubmit(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	sess, err := s.signed(r)
	if err != nil {
		return err
	}
	if s.cfg.Market == nil || s.cfg.Submitter == nil {
		return errf(ErrNotOnChain, "listings need the marketplace module, which this server does not read")
	}
	d := provideData{Market: true, Signed: true, Types: market.Types, Models: pricingModelNames, Rate: strings.TrimSpace(r.PostFormValue("rate")),
		Form: ListingRequest{
			Name: strings.TrimSpace(r.PostFormValue("name")), Type: market.NormalizeType(r.PostFormValue("type")),
			Description:  strings.TrimSpace(strings.ReplaceAll(r.PostFormValue("description"), "\r\n", "\n")),
			PricingModel: r.PostFormValue("pricing_model"),
		}}
	rate, rerr := coin.Parse(d.Rate)
	switch {
	case d.Form.Name == "" || len(d.Form.Name) > 80:
		d.Error = "Give the provider a name of at most 80 characters."
	case d.Form.Type == "":
		d.Error = "Choose a service type."
	case len(d.Form.Description) > 512:
		d.Error = "The description is longer than 512 characters."
	case !slices.Contains(pricingModelNames, d.Form.PricingModel):
		d.Error = "Choose a pricing model."
	case rerr != nil || rate == 0:
		d.Error = "The rate must be a positive amount of AITBC."
	}
	if d.Error != "" {
		return s.page(w, r, http.StatusBadRequest, "provide.html", "Become a Provider", "marketplace", d)
	}
	d.Form.Rate = rate
	signer := sessionSigner{sess: sess, password: r.PostFormValue("password"), submit: s.cfg.Submitter}
	hash, err := s.cfg.Market.CreateListing(r.Context(), signer, d.Form)
	if err != nil {
		_, _, msg := classify(err)
		d.Error = "The listing was refused: " + msg
		return s.page(w, r, http.StatusBadRequest, "provide.html", "Become a Provider", "marketplace", d)
	}
	id, failed := s.awaitListing(r.Context(), hash, sess.Address, d.Form.Name)
	switch {
	case failed != "":
		d.Error = "The chain refused the listing: " + failed
		return s.page(w, r, http.StatusBadRequest, "provide.html", "Become a Provider", "marketplace", d)
	case id != "":
		http.Redirect(w, r, "/marketplace/service/"+url.PathEscape(id), http.StatusSeeOther)
	default: // not committed yet: its transaction's page says how it ends
		http.Redirect(w, r, "/explorer/tx/"+url.PathEscape(hash), http.StatusSeeOther)
	}
	return nil
}

// listingWait is how long "Become a Provider" waits for its transaction's
// block before sending the provider to the transaction instead.
const listingWait = 10 * time.Second

// awaitListing waits for a listing's transaction: the new listing's id
// once committed, the chain's reason when it failed, neither when it is
// not in a block within listingWait.
func (s *Server) awaitListing(ctx context.Context, hash string, provider address.Address, name string) (id, failed string) {
	ctx, cancel := context.WithTimeout(ctx, listingWait)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		tx, err := s.cfg.Node.Tx(ctx, hash)
		switch {
		case err == nil && tx.Status == "failed":
			return "", tx.Error
		case err == nil && tx.Status == "committed":
			ls, err := s.cfg.Market.Listings(ctx, ListingFilter{})
			if err != nil {
				return "", ""
			}
			for _, l := range ls {
				if l.Provider == provider && l.Name == name && l.CreatedHeight == tx.Height {
					return l.ID, ""
				}
			}
			return "", ""
		}
		select {
		case <-ctx.Done():
			return "", ""
		case <-t.C:
		}
	}
}

// startSSE begins a server-sent event stream.
func startSSE(w http.ResponseWriter) (*sseWriter, error) {
	fl, ok := w.(http.Flusher)
	if !ok {
		return nil, fmt.Errorf("web: streaming not supported by this connection")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	return &sseWriter{w: w, fl: fl}, nil
}

type sseWriter struct {
	w  http.ResponseWriter
	fl http.Flusher
}

// send writes one event; v is marshalled to JSON unless it is already
// []byte.
func (e *sseWriter) send(name, id string, v any) error {
	data, ok := v.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(v); err != nil {
			return err
		}
	}
	var b strings.Builder
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("event: " + name + "\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
	if _, err := e.w.Write([]byte(b.String())); err != nil {
		return err
	}
	e.fl.Flush()
	return nil
}

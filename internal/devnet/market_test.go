package devnet_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/walletd"
)

// seedService is seed 000's service_config.json, with an availability
// window around now (the seed's ends in 2024, which the chain refuses).
func seedService(id string, from, until time.Time) map[string]any {
	return map[string]any{
		"service_id": id,
		"name":       "GPU Computing Service",
		"type":       "gpu_compute",
		"specs": map[string]any{
			"gpu_type": "NVIDIA RTX 4090", "memory": "24GB", "cuda_cores": 16384,
			"supported_frameworks": []string{"PyTorch", "TensorFlow", "JAX"},
		},
		"pricing":      map[string]any{"rate_per_hour": 100, "currency": "AITBC"},
		"availability": map[string]any{"start_time": from.UTC().Format(time.RFC3339), "end_time": until.UTC().Format(time.RFC3339), "timezone": "UTC"},
	}
}

func apiCode(err error) string {
	if e, ok := err.(*httpx.APIError); ok {
		return e.Code
	}
	return ""
}

// TestSeedServicesOnTheCoordinator: seed 000's phases 1-2 on the
// coordinator's API — register the seed's service (a listing on chain for
// the tenant), find it with the seed's filters, read it and its provider's
// reputation; bad registrations and ratings get specific errors and list
// nothing.
func TestSeedServicesOnTheCoordinator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	e := start(t, devnet.Config{Miners: -1})
	key := e.d.APIKey
	now := time.Now()

	var reg struct {
		market.ServiceView
		TxHash string `json:"tx_hash"`
	}
	// The tenant pays the listing fee from its deposit with the
	// coordinator; a tenant without one is refused before anything is
	// sent.
	coordAddr, err := e.d.Wallets.Service().Address(t.Context(), devnet.CoordinatorWallet)
	if err != nil {
		t.Fatal(err)
	}
	depBefore, err := jobs.QueryDeposit(t.Context(), e.node, e.d.Genesis, coordAddr)
	if err != nil {
		t.Fatal(err)
	}
	_, poorKey, err := e.d.Coordinator.AddTenant(t.Context(), "no-deposit", address.FromPubKey(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.call("POST", "/v1/services/register", poorKey, seedService("gpu-compute-000", now.Add(-time.Hour), now.Add(24*time.Hour)), nil); apiCode(err) != "insufficient_deposit" {
		t.Fatalf("registering without a deposit: %v", err)
	}
	if err := e.call("POST", "/v1/services/register", key, seedService("gpu-compute-001", now.Add(-time.Hour), now.Add(24*time.Hour)), &reg); err != nil {
		t.Fatal(err)
	}
	if dep, err := jobs.QueryDeposit(t.Context(), e.node, e.d.Genesis, coordAddr); err != nil || dep.Amount != depBefore.Amount-market.ListingFee {
		t.Fatalf("deposit after the listing: %+v %v, want %s", dep, err, depBefore.Amount-market.ListingFee)
	}
	if reg.ID != "gpu-compute-001" || reg.Type != market.TypeGPUCompute || reg.Unit != market.UnitHour || reg.Price != 100*coin.Unit ||
		reg.GPU != "NVIDIA RTX 4090" || reg.GPUMemoryMB != 24*1024 || reg.Parameters["cuda_cores"] != "16384" || reg.TxHash == "" {
		t.Fatalf("registered: %+v", reg)
	}
	// The same listing is on chain: the node's own route shows it.
	var onChain market.ServiceDetail
	if err := e.node.GetJSON(t.Context(), "/api/v1/market/services/gpu-compute-001", &onChain); err != nil || onChain.Provider != reg.Provider {
		t.Fatalf("on chain: %+v %v", onChain, err)
	}

	// Bad registrations: specific errors, nothing listed.
	for name, tc := range map[string]struct {
		body map[string]any
		code string
	}{
		"taken id": {seedService("gpu-compute-001", now, now.Add(time.Hour)), "service_exists"},
		"zero rate": {func() map[string]any {
			b := seedService("gpu-free", now, now.Add(time.Hour))
			b["pricing"] = map[string]any{"rate_per_hour": 0}
			return b
		}(), "invalid_request"},
		"unknown type": {func() map[string]any {
			b := seedService("gpu-x", now, now.Add(time.Hour))
			b["type"] = "mining"
			return b
		}(), "invalid_request"},
	} {
		err := e.call("POST", "/v1/services/register", key, tc.body, nil)
		if apiCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", name, err, tc.code)
		}
	}
	if err := e.call("POST", "/v1/services/register", "", seedService("gpu-anon", now, now.Add(time.Hour)), nil); apiCode(err) != "unauthorized" {
		t.Errorf("without a key: %v", err)
	}

	// Phase 2: browse with the seed's filters, view, reputation.
	var list market.ServiceList
	for q, want := range map[string]int{
		"?category=GPU%20Computing&price_range=50-200&available=now": 1,
		"?category=gpu_compute&gpu=4090&min_memory=16GB":             1,
		"?price_range=150-200":                                       0,
		"?min_memory=32GB":                                           0,
		"?category=ai-training":                                      0,
	} {
		if err := e.call("GET", "/v1/services"+q, "", nil, &list); err != nil || len(list.Services) != want {
			t.Errorf("GET /v1/services%s: %d services, want %d (%v)", q, len(list.Services), want, err)
		}
	}
	if err := e.call("GET", "/v1/services?price_range=cheap", "", nil, nil); apiCode(err) != "invalid_request" {
		t.Errorf("bad price_range: %v", err)
	}
	var d market.ServiceDetail
	if err := e.call("GET", "/v1/services/gpu-compute-001", key, nil, &d); err != nil || d.Name != "GPU Computing Service" || d.Reputation.Score == 0 {
		t.Fatalf("service: %+v %v", d, err)
	}
	if err := e.call("GET", "/v1/services/nope", key, nil, nil); apiCode(err) != "service_not_found" {
		t.Errorf("unknown service: %v", err)
	}
	var rep market.ProviderView
	for _, id := range []string{reg.Provider.String(), "gpu-compute-001"} {
		if err := e.call("GET", "/v1/providers/"+id+"/reputation", "", nil, &rep); err != nil || rep.Address != reg.Provider || len(rep.Services) != 1 ||
			!strings.Contains(rep.Reputation.Why, "ratings") {
			t.Fatalf("reputation of %s: %+v %v", id, rep, err)
		}
	}
	if err := e.call("GET", "/v1/providers/gpu-compute-pro/reputation", "", nil, nil); apiCode(err) != "invalid_address" {
		t.Errorf("unknown provider: %v", err)
	}

	// A second coordinator on the same chain (its own store and key) lists
	// the same services: they are the chain's listings.
	w := e.d.Wallets.Service()
	c2w, err := w.Create(t.Context(), "coordinator-2", "pw")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "c2.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c2, err := coordinator.New(t.Context(), coordinator.Config{Store: st, Chain: rpc.NewClient(e.d.RPCURL()), Address: c2w.Address,
		Sender: walletd.WalletSender{S: w, Name: "coordinator-2", Password: "pw"}, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(c2.Handler())
	defer hs.Close()
	var list1, list2 market.ServiceList
	if err := e.call("GET", "/v1/services", "", nil, &list1); err != nil {
		t.Fatal(err)
	}
	if err := httpx.Do(t.Context(), nil, "GET", hs.URL+"/v1/services", nil, nil, &list2); err != nil {
		t.Fatal(err)
	}
	if len(list2.Services) != 1 || len(list1.Services) != 1 || list1.Services[0].ID != list2.Services[0].ID || list1.Services[0].Provider != list2.Services[0].Provider {
		t.Fatalf("the two coordinators list %+v and %+v", list1.Services, list2.Services)
	}

	// Rating needs a delivered job under the service: none yet.
	rate := map[string]any{"rating": 5, "review": "Excellent service! Fast execution and great results.", "customer_id": "customer-123"}
	if err := e.call("POST", "/v1/services/gpu-compute-001/rate", key, rate, nil); apiCode(err) != "invalid_request" {
		t.Errorf("rating as another customer_id: %v", err)
	}
	delete(rate, "customer_id")
	if err := e.call("POST", "/v1/services/gpu-compute-001/rate", key, rate, nil); apiCode(err) != "rating_not_allowed" {
		t.Errorf("rating without a delivered job: %v", err)
	}
	rate["rating"] = 6
	if err := e.call("POST", "/v1/services/gpu-compute-001/rate", key, rate, nil); apiCode(err) != "invalid_rating" {
		t.Errorf("six stars: %v", err)
	}

	// The seed's own window (all of 2024) is stored as written: the
	// service is listed but not available now, and a job for it is
	// refused naming the window.
	past := seedService("gpu-2024", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC))
	if err := e.call("POST", "/v1/services/register", key, past, nil); err != nil {
		t.Fatalf("the seed's past window: %v", err)
	}
	if err := e.call("GET", "/v1/services?available=now", "", nil, &list); err != nil || len(list.Services) != 1 || list.Services[0].ID != "gpu-compute-001" {
		t.Errorf("available now: %+v %v", list.Services, err)
	}
	job := map[string]any{"service_id": "gpu-2024", "model": "tolstoy-1m", "requirements": map[string]any{"prompt": "It was"}, "budget": map[string]any{"max_cost": 5}}
	if err := e.call("POST", "/v1/jobs/create", key, job, nil); apiCode(err) != "service_unavailable" || !strings.Contains(err.Error(), "2024-12-31T23:59:59Z") {
		t.Errorf("a job for the past window: %v", err)
	}
}

// TestSeedJobUnderServiceAndRating: seed 000's phases 3-4 — a tenant with
// an agreement on a provider's service creates a job for it (POST
// /v1/jobs/create with the seed's body: service_id, requirements, budget);
// the coordinator binds the job to the agreement, the miner runs it, and
// when it settles the agreement pays the provider; the tenant then rates
// the service once. A job for a service without an agreement is refused.
func TestSeedJobUnderServiceAndRating(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	e := start(t, devnet.Config{Miners: 1})
	ctx := t.Context()
	w := e.d.Wallets.Service()
	wait := func(hash string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		res, err := e.node.WaitTx(wctx, hash, 50*time.Millisecond)
		if err != nil || res.Status != "committed" {
			t.Fatalf("tx %s: %+v %v", hash, res, err)
		}
	}
	// The provider is the devnet's miner: only a provider's own miner runs
	// the jobs its agreements pay for.
	var sub walletd.Submitted
	var err error
	for _, id := range []string{"llm-1", "llm-2"} {
		sub, err = w.SignAndSubmit(ctx, devnet.MinerWallet(0), "123", market.NewCreateMsg(market.ListingSpec{ID: id, Name: "Tolstoy inference", Type: market.TypeAIInference,
			Price: 2 * coin.Unit, AutoAccept: true}), 0)
		if err != nil {
			t.Fatal(err)
		}
		wait(sub.TxHash)
	}
	// The tenant (genesis-ops) buys two jobs of llm-1 at its price.
	sub, err = w.SignAndSubmit(ctx, devnet.GenesisWallet, "123", market.NewBidMsg("llm-1", 2*coin.Unit, 2, true), 0)
	if err != nil {
		t.Fatal(err)
	}
	wait(sub.TxHash)

	job := map[string]any{
		"service_id": "llm-2", "customer_id": "customer-123", "model": "tolstoy-1m", "max_tokens": 8,
		"requirements": map[string]any{"prompt": "It was"}, "budget": map[string]any{"max_cost": 5, "currency": "AITBC"},
	}
	if err := e.call("POST", "/v1/jobs/create", e.d.APIKey, job, nil); apiCode(err) != "job_not_bindable" {
		t.Fatalf("a job for a service without an agreement: %v", err)
	}
	job["service_id"] = "llm-9"
	if err := e.call("POST", "/v1/jobs/create", e.d.APIKey, job, nil); apiCode(err) != "service_not_found" {
		t.Fatalf("a job for an unknown service: %v", err)
	}
	job["service_id"] = "llm-1"
	var v struct {
		JobID string `json:"job_id"`
	}
	if err := e.call("POST", "/v1/jobs/create", e.d.APIKey, job, &v); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(e.d.APIKey, v.JobID, time.Minute, "settled")
	var b market.JobBinding
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := e.node.GetJSON(ctx, "/api/v1/market/jobs/"+v.JobID, &b); err == nil && !b.Pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job is not delivered under the agreement: %+v", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var pl market.PayoutList
	if err := e.node.GetJSON(ctx, "/api/v1/market/payouts?service=llm-1", &pl); err != nil || len(pl.Payouts) != 1 ||
		pl.Payouts[0].Amount != 2*coin.Unit || pl.Payouts[0].JobID != v.JobID || pl.Payouts[0].Kind != market.KindDelivery {
		t.Fatalf("payouts: %+v %v", pl, err)
	}

	rate := map[string]any{"rating": 5, "review": "Excellent service! Fast execution and great results."}
	var rr struct {
		JobID  string `json:"job_id"`
		TxHash string `json:"tx_hash"`
	}
	if err := e.call("POST", "/v1/services/llm-1/rate", e.d.APIKey, rate, &rr); err != nil || rr.JobID != v.JobID {
		t.Fatalf("rate: %+v %v", rr, err)
	}
	if err := e.call("POST", "/v1/services/llm-1/rate", e.d.APIKey, rate, nil); apiCode(err) != "rating_not_allowed" {
		t.Fatalf("a second rating with no other job: %v", err)
	}
	rate["job_id"] = v.JobID
	if err := e.call("POST", "/v1/services/llm-1/rate", e.d.APIKey, rate, nil); apiCode(err) != "already_rated" {
		t.Fatalf("rating the job twice: %v", err)
	}
	var rep market.ProviderView
	if err := e.call("GET", "/v1/providers/llm-1/reputation", "", nil, &rep); err != nil || rep.Facts.Ratings != 1 || rep.Facts.Delivered != 1 {
		t.Fatalf("reputation after the rating: %+v %v", rep.Facts, err)
	}
}

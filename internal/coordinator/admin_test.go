package coordinator

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/httpx"
)

const testOperatorKey = "operator-key-for-tests-0123456789"

// TestOperatorSeesEveryTenantsJobs: a tenant's key shows its own jobs; the
// operator key shows both tenants' active jobs, with whose they are, and
// nothing else opens the route.
func TestOperatorSeesEveryTenantsJobs(t *testing.T) {
	h := newHarness(t, releaseDelay, func(c *Config) { c.OperatorKey = testOperatorKey })
	h.fund(100 * coin.Unit)
	h.addMiner(coin.Unit) // serves the model; no slot is freed, so jobs stay queued or dispatched
	first := h.submit(JobRequest{Model: testModel, Prompt: "one", MaxTokens: 8})

	_, addr := newKey(t)
	other, _, err := h.s.AddTenant(h.ctx, "other", addr)
	if err != nil {
		t.Fatal(err)
	}
	h.chain.customerTx(t, addr, jobs.TypeDeposit, jobs.MsgDeposit{Coordinator: h.chain.coord[:], Amount: 100 * coin.Unit})
	h.chain.commit()
	second, err := h.s.Submit(h.ctx, other, JobRequest{Model: testModel, Prompt: "two", MaxTokens: 8})
	if err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	ctx := context.Background()
	c := NewClient(srv.URL, "")
	for _, bad := range []string{"", "wrong", h.apiKey} {
		if _, err := c.AdminJobs(ctx, bad, 10); !errors.Is(err, ErrNotOperator) || !httpx.IsCode(err, "not_operator") {
			t.Errorf("operator key %q: %v, want not_operator", bad, err)
		}
	}
	aj, err := c.AdminJobs(ctx, testOperatorKey, 10)
	if err != nil {
		t.Fatal(err)
	}
	owner := map[string]string{}
	for _, j := range aj.Recent {
		owner[j.JobID] = j.TenantID
	}
	if aj.Tenants != 2 || len(aj.Recent) != 2 || owner[first.ID] != h.tenant.ID || owner[second.ID] != other.ID {
		t.Fatalf("recent: %+v (tenants %d)", aj.Recent, aj.Tenants)
	}
	if len(aj.Active) != 2 || aj.Active[0].Result != nil {
		t.Fatalf("active: %+v", aj.Active)
	}
	// The tenant's own list still holds only its own job.
	mine, err := NewClient(srv.URL, h.apiKey).Jobs(ctx, 10)
	if err != nil || len(mine) != 1 || mine[0].JobID != first.ID {
		t.Fatalf("tenant's jobs: %+v %v", mine, err)
	}
	if _, err := c.AdminJobs(ctx, testOperatorKey, 0); !errors.Is(err, ErrInvalidLimit) {
		t.Fatalf("limit 0: %v", err)
	}
}

// Without an operator key configured the route is closed to everyone.
func TestOperatorRoutesClosedWithoutAKey(t *testing.T) {
	h := newHarness(t, releaseDelay)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	_, err := NewClient(srv.URL, "").AdminJobs(context.Background(), "", 10)
	var api *httpx.APIError
	if !errors.Is(err, ErrOperatorDisabled) || !errors.As(err, &api) || api.Status != http.StatusForbidden {
		t.Fatalf("%v, want 403 operator_disabled", err)
	}
}

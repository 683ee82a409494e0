package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/httpx"
)

// TestPrivateJobOnExplorer: a private job (paid from the tenant's
// deposit) settles with a proof, and the explorer shows it as private with
// its commitment, and no token counts or price, on the page and in JSON.
func TestPrivateJobOnExplorer(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	c := coordinator.NewClient(e.d.CoordinatorURL(), e.d.APIKey)
	v, err := c.Submit(ctx, coordinator.JobRequest{Model: "tolstoy-1m", Prompt: "It was", MaxTokens: 16, Private: true})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := c.Results(ctx, v.JobID)
		if err == nil && r.Settlement != nil && r.Settlement.SettleTx != "" {
			e.committed(t, r.Settlement.SettleTx)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not settled: %+v %v", v.JobID, r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	raw, _ := jobs.ParseID(v.JobID)
	pv, err := jobs.QueryPrivacy(ctx, e.node, raw)
	if err != nil || pv.Commitment == "" {
		t.Fatalf("privacy %+v %v", pv, err)
	}
	a := get(t, client(), e.web+"/explorer/job/"+v.JobID)
	if a.status != 200 || !strings.Contains(a.body, "private") || !strings.Contains(a.body, pv.Commitment) || strings.Contains(a.body, "<dt>Tokens</dt>") {
		t.Fatalf("job page: %d %s", a.status, a.body)
	}
	var job struct {
		Job        struct{ Status string }
		Private    bool
		Commitment string
		SettleTx   string `json:"settle_tx"`
		Receipt    any
	}
	if err := httpx.Do(ctx, nil, "GET", e.web+"/api/explorer/jobs/"+v.JobID, nil, nil, &job); err != nil ||
		job.Job.Status != "settled" || !job.Private || job.Commitment != pv.Commitment || job.SettleTx == "" || job.Receipt != nil {
		t.Fatalf("api job: %v %+v", err, job)
	}
}

package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator/store"
)

// flakySender refuses the coordinator's transactions while fail is set.
type flakySender struct {
	Sender
	fail atomic.Bool
}

func (f *flakySender) Send(ctx context.Context, msg tx.Msg) (string, error) {
	if f.fail.Swap(false) {
		return "", errors.New("fake chain: mempool full")
	}
	return f.Sender.Send(ctx, msg)
}

// TestJobMetricsFollowAJobToSettlement: one job through queue, miner and
// a settlement that fails once: the histograms, the tokens by model, the
// settlement failure and the tenant's requests each count it once.
func TestJobMetricsFollowAJobToSettlement(t *testing.T) {
	var flaky *flakySender
	h := newHarness(t, releaseDelay, func(c *Config) {
		flaky = &flakySender{Sender: c.Sender}
		c.Sender = flaky
	})
	h.fund(coin.Unit)
	m := h.addMiner(coin.Unit)
	j := h.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100})
	mj := m.nextJob()
	h.waitSent(jobs.TypeAssign, 1) // what dispatch sends has gone: the next Send is the settlement
	flaky.fail.Store(true)
	h.clock.Advance(3 * time.Second)
	m.finish(mj, "Once upon", 2)
	h.waitStatus(j.ID, store.StatusCompleted)
	waitFor(t, "the failed settlement", func() bool { return testutil.ToFloat64(h.s.metrics.settleFailures) == 1 })
	h.block() // the follow-up drives the settlement again once the chain shows the job
	h.waitSent(jobs.TypeSettle, 1)
	h.block()
	h.block()
	h.waitStatus(j.ID, store.StatusSettled)

	mt := h.s.metrics
	if n := testutil.CollectAndCount(mt.queueWait); n != 1 {
		t.Errorf("queue wait: %d series, want attempt=first only", n)
	}
	if n := testutil.CollectAndCount(mt.jobDuration); n != 1 {
		t.Errorf("job duration: %d series, want status=settled only", n)
	}
	want := fmt.Sprintf(`
# HELP aitbc_coordinator_tokens_total Tokens of settled jobs by model and direction (in: prompt, out: generated); models beyond the cap are counted as other.
# TYPE aitbc_coordinator_tokens_total counter
aitbc_coordinator_tokens_total{direction="in",model=%q} 2
aitbc_coordinator_tokens_total{direction="out",model=%q} 2
`, testModel, testModel)
	if err := testutil.CollectAndCompare(mt.tokens, stringsReader(want)); err != nil {
		t.Error(err)
	}
	sum := histogramSum(t, mt.jobDuration)
	if sum < 3 {
		t.Errorf("job duration sum %v s, want at least the 3 s the job ran", sum)
	}

	// Requests count for the tenant once authenticated, not before.
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	for _, k := range []string{h.apiKey, h.apiKey, "wrong-key"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/jobs", nil)
		req.Header.Set("X-API-Key", k)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if got := testutil.ToFloat64(mt.tenantRequests.WithLabelValues(h.tenant.ID)); got != 2 {
		t.Errorf("tenant requests %v, want 2", got)
	}
	if n := testutil.CollectAndCount(mt.tenantRequests); n != 1 {
		t.Errorf("%d tenant series, want 1 (a wrong key is nobody's)", n)
	}
}

func TestLabelCapSendsNewValuesToOtherOnceFull(t *testing.T) {
	c := newLabelCap(2)
	for _, in := range []struct{ v, want string }{{"a", "a"}, {"b", "b"}, {"c", LabelOther}, {"a", "a"}, {"", LabelOther}, {LabelOther, LabelOther}} {
		if got := c.label(in.v); got != in.want {
			t.Errorf("label(%q) = %q, want %q", in.v, got, in.want)
		}
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

func histogramSum(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 16)
	c.Collect(ch)
	close(ch)
	var sum float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		sum += d.GetHistogram().GetSampleSum()
	}
	return sum
}

package miner

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/miner/hw"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// scriptedRunner answers by prompt: "ok" generates three tokens, "bad" is
// a job that can never run, anything else fails in the backend.
type scriptedRunner struct{}

func (scriptedRunner) Name() string                             { return "scripted" }
func (scriptedRunner) Models(context.Context) ([]string, error) { return []string{"m"}, nil }
func (scriptedRunner) Run(ctx context.Context, job *minerproto.Job, onToken func(string) error) (Output, error) {
	switch job.Prompt {
	case "ok":
		for _, tok := range []string{"a ", "b ", "c"} {
			time.Sleep(2 * time.Millisecond)
			if err := onToken(tok); err != nil {
				return Output{}, err
			}
		}
		return Output{Text: "a b c", TokensIn: 1, TokensOut: 3, FinishReason: "stop"}, nil
	case "bad":
		return Output{}, fmt.Errorf("%w: unknown model", ErrBadJob)
	default:
		return Output{}, errors.New("backend down")
	}
}

// fakeCoordinator hands the miner one job per prompt, in order, waits for
// each to end, then holds the session until the test ends it.
func fakeCoordinator(t *testing.T, prompts []string, ended chan<- minerproto.Envelope, hold <-chan struct{}) *httptest.Server {
	coordKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	coordAddr := address.FromPubKey(coordKey.Public().(ed25519.PublicKey))
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		nonce := bytes.Repeat([]byte{1}, 32)
		_ = wsjson.Write(ctx, c, minerproto.Envelope{Type: minerproto.TypeChallenge, Nonce: hex.EncodeToString(nonce), Coordinator: coordAddr.String(), ChainID: "c"})
		var hello minerproto.Envelope
		if err := wsjson.Read(ctx, c, &hello); err != nil {
			return
		}
		_ = wsjson.Write(ctx, c, minerproto.Envelope{Type: minerproto.TypeWelcome})
		for i, p := range prompts {
			ph := minerproto.PromptHash(p, nil)
			id := make([]byte, 16)
			id[0] = byte(i + 1)
			job := &minerproto.Job{ID: hex.EncodeToString(id), Attempt: 1, Model: "m", Prompt: p, PromptHash: hex.EncodeToString(ph[:]),
				MaxTokens: 100, Customer: coordAddr.String(), PricePer1k: "1", ChainID: "c"}
			_ = wsjson.Write(ctx, c, minerproto.Envelope{Type: minerproto.TypeJob, Job: job})
			for {
				var e minerproto.Envelope
				if err := wsjson.Read(ctx, c, &e); err != nil {
					return
				}
				if e.Type == minerproto.TypeResult || e.Type == minerproto.TypeFailed {
					ended <- e
					break
				}
			}
		}
		select {
		case <-hold:
		case <-ctx.Done():
		}
	}))
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func health(t *testing.T, base string) (int, Health) {
	t.Helper()
	code, body := get(t, base+"/health")
	var h Health
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("health body %q: %v", body, err)
	}
	return code, h
}

// metricValue finds `name{labels} value` in a Prometheus text scrape.
func metricValue(t *testing.T, scrape, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(scrape)
	if m == nil {
		t.Fatalf("no series %s in the scrape", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestObservabilityEndpoint runs a miner through one finished, one
// impossible and one failed job against a fake coordinator, and scrapes
// its endpoint on a real listener: health follows the session, and the
// metrics count what the backend did.
func TestObservabilityEndpoint(t *testing.T) {
	obs := NewObservability(hw.Options{NoGPU: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stopServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- obs.Serve(sctx, ln) }()
	defer func() {
		stopServe()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	base := "http://" + ln.Addr().String()

	// Before the miner exists (it registers on chain first): starting.
	if code, h := health(t, base); code != http.StatusServiceUnavailable || h.Status != "starting" {
		t.Fatalf("health before attach: %d %+v", code, h)
	}

	ended := make(chan minerproto.Envelope, 3)
	hold := make(chan struct{})
	coord := fakeCoordinator(t, []string{"ok", "bad", "down"}, ended, hold)
	defer coord.Close()
	minerKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))
	m, err := New(Config{Coordinator: coord.URL, Key: minerproto.KeySigner(minerKey), Chain: noChain{}, Sender: noSender{},
		Runner: obs.Metrics.Instrument(scriptedRunner{}), PricePer1k: coin.Unit, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	obs.Attach(m)
	if code, h := health(t, base); code != http.StatusServiceUnavailable || h.Status != "disconnected" || h.Address != m.Address().String() {
		t.Fatalf("health before the session: %d %+v", code, h)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.session(ctx, []string{"m"}, coord.URL) }()
	var results []string
	for range 3 {
		select {
		case e := <-ended:
			results = append(results, e.Type)
		case <-time.After(10 * time.Second):
			t.Fatal("the miner did not end its jobs")
		}
	}
	if strings.Join(results, ",") != "result,failed,failed" {
		t.Fatalf("jobs ended %v", results)
	}
	code, h := health(t, base)
	if code != http.StatusOK || h.Status != "ok" || !h.Connected || h.JobsDone != 1 || h.TokensOut != 3 {
		t.Fatalf("health in session: %d %+v", code, h)
	}

	code, scrape := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("metrics: %d", code)
	}
	for series, want := range map[string]float64{
		`aitbc_miner_jobs_total{result="ok"}`:                     1,
		`aitbc_miner_jobs_total{result="rejected"}`:               1,
		`aitbc_miner_jobs_total{result="failed"}`:                 1,
		`aitbc_miner_jobs_total{result="canceled"}`:               0,
		`aitbc_miner_tokens_generated_total`:                      3,
		`aitbc_miner_prompt_tokens_total`:                         1,
		`aitbc_miner_tokens_per_second_count`:                     1,
		`aitbc_miner_backend_duration_seconds_count{result="ok"}`: 1,
		`aitbc_miner_backend_first_token_seconds_count`:           1,
		`aitbc_miner_backend_errors_total{op="generate"}`:         1,
		`aitbc_miner_backend_errors_total{op="models"}`:           0,
		`aitbc_miner_backend_jobs_in_flight`:                      0,
		`aitbc_miner_connected`:                                   1,
		`aitbc_miner_slots`:                                       2,
		`aitbc_miner_slots_busy`:                                  0,
	} {
		if got := metricValue(t, scrape, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if tps := metricValue(t, scrape, `aitbc_miner_tokens_per_second_sum`); tps <= 0 || tps > 3/0.006 {
		t.Errorf("tokens/s %v: three tokens took at least 6 ms", tps)
	}
	if !strings.Contains(scrape, "\ngo_goroutines ") {
		t.Error("no Go runtime metrics")
	}

	// The metrics follow Prometheus' naming rules...
	if problems, err := testutil.GatherAndLint(obs.Registry); err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %+v", err, problems)
	}
	// ...and the exposition passes promtool where it is installed.
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(scrape)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else if os.Getenv("CI") != "" || os.Getenv("AITBC_REQUIRE_PROMTOOL") != "" {
		t.Error("promtool not found: .ci/run installs the Debian package prometheus")
	} else {
		t.Log("promtool not installed: exposition checked by promlint only")
	}

	// Unknown paths answer the project's JSON 404.
	if code, body := get(t, base+"/nope"); code != http.StatusNotFound || !strings.Contains(body, `"code"`) {
		t.Errorf("unknown path: %d %s", code, body)
	}

	// The session ends: health says so at once.
	close(hold)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end")
	}
	cancel()
	if code, h := health(t, base); code != http.StatusServiceUnavailable || h.Status != "disconnected" || h.Connected {
		t.Fatalf("health after the session: %d %+v", code, h)
	}
}

// TestGPUMetrics reads GPUs through a stand-in nvidia-smi: one reports
// everything, the other no utilisation, which is left out rather than
// shown as 0.
func TestGPUMetrics(t *testing.T) {
	smi := filepath.Join(t.TempDir(), "nvidia-smi")
	script := "#!/bin/sh\ncat <<'EOF'\nNVIDIA H200, 143771, 2048, 37, 570.86\nNVIDIA A10, 23028, 512, [N/A], 570.86\nEOF\n"
	if err := os.WriteFile(smi, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	obs := NewObservability(hw.Options{NvidiaSMI: smi})
	srv := httptest.NewServer(obs.Handler())
	defer srv.Close()
	_, scrape := get(t, srv.URL+"/metrics")
	for series, want := range map[string]float64{
		`aitbc_miner_gpu_utilization_ratio{gpu="0",name="NVIDIA H200"}`:  0.37,
		`aitbc_miner_gpu_memory_used_bytes{gpu="0",name="NVIDIA H200"}`:  2048 << 20,
		`aitbc_miner_gpu_memory_total_bytes{gpu="0",name="NVIDIA H200"}`: 143771 << 20,
		`aitbc_miner_gpu_memory_used_bytes{gpu="1",name="NVIDIA A10"}`:   512 << 20,
	} {
		if got := metricValue(t, scrape, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if strings.Contains(scrape, `aitbc_miner_gpu_utilization_ratio{gpu="1"`) {
		t.Error("a utilisation nvidia-smi does not report is exported")
	}
	if problems, err := testutil.GatherAndLint(obs.Registry); err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %+v", err, problems)
	}
}

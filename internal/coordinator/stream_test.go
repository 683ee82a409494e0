package coordinator

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator/store"
)

// A subscriber that reads nothing until the job is done still gets every
// token, in order. (The hub used to drop events for a reader whose
// 256-event buffer was full.)
func TestSlowSubscriberMissesNothing(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(10 * coin.Unit)
	m := h.addMiner(coin.Unit)
	j := h.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 3000})
	sub, err := h.s.Follow(h.ctx, h.tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	mj := m.nextJob()
	const n = 3000
	var want strings.Builder
	for i := range n {
		text := fmt.Sprintf("t%d ", i)
		want.WriteString(text)
		m.tokens(mj, text) // seq is the coordinator's, not the miner's
	}
	m.finish(mj, want.String(), n)
	h.waitSent(jobs.TypeSettle, 1)
	h.block()
	h.block()
	h.waitStatus(j.ID, store.StatusSettled) // the stream ends

	seq := 0
	var got strings.Builder
	for _, e := range drain(t, sub.Events) {
		if e.Type != EventToken {
			continue
		}
		if e.Seq != seq+1 || e.Attempt != 1 {
			t.Fatalf("token seq %d attempt %d after %d", e.Seq, e.Attempt, seq)
		}
		seq = e.Seq
		got.WriteString(e.Text)
	}
	if seq != n || got.String() != want.String() {
		t.Fatalf("got %d tokens, want %d", seq, n)
	}
}

// A job requeued to another miner restarts its stream visibly: a
// "requeued" event names the next attempt, whose tokens count from 1.
func TestRequeuedJobRestartsItsStreamVisibly(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(10 * coin.Unit)
	a := h.addMiner(coin.Unit)
	j := h.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100})
	sub, err := h.s.Follow(h.ctx, h.tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	ja := a.nextJob()
	a.tokens(ja, "Hello", " wor")
	h.s.drop(a.mc, "connection closed")
	b := h.addMiner(coin.Unit)
	jb := b.nextJob()
	if jb.Attempt != 2 {
		t.Fatalf("attempt %d", jb.Attempt)
	}
	b.tokens(jb, "Hi")
	var trace []string
	for len(trace) == 0 || trace[len(trace)-1] != "2:1:Hi" {
		switch e := recv(t, sub.Events); {
		case e.Type == EventToken:
			trace = append(trace, fmt.Sprintf("%d:%d:%s", e.Attempt, e.Seq, e.Text))
		case e.Status == StatusRequeued:
			trace = append(trace, fmt.Sprintf("requeued->%d", e.Attempt))
		}
	}
	if got := strings.Join(trace, " "); got != "1:1:Hello 1:2: wor requeued->2 2:1:Hi" {
		t.Fatalf("stream %s", got)
	}
}

// sse posts an OpenAI completion request with stream:true and returns the
// data lines of the answer as they arrive.
func sse(t *testing.T, h *harness, srv *httptest.Server) <-chan string {
	out := make(chan string, 64)
	go func() {
		defer close(out)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/completions", strings.NewReader(`{"model":"m","prompt":"hi","max_tokens":50,"stream":true}`))
		req.Header.Set("Authorization", "Bearer "+h.apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				out <- l
			}
		}
	}()
	return out
}

// sseUntil reads lines until the assembled text is want (the client has
// seen it), and returns them.
func sseUntil(t *testing.T, lines <-chan string, want string) []string {
	t.Helper()
	var got []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended before %q: %v", want, got)
			}
			got = append(got, l)
			if text, _ := sseText(t, got); text == want {
				return got
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no %q in %v", want, got)
		}
	}
}

// sseRest reads the remaining lines.
func sseRest(lines <-chan string, got []string) []string {
	for l := range lines {
		got = append(got, l)
	}
	return got
}

// sseText is the text an OpenAI client assembled, and the stream's error
// code if it ended with one.
func sseText(t *testing.T, lines []string) (text, errCode string) {
	t.Helper()
	for _, l := range lines {
		if l == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Text string `json:"text"`
			} `json:"choices"`
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("chunk %q: %v", l, err)
		}
		if c.Error != nil {
			errCode = c.Error.Code
		}
		for _, ch := range c.Choices {
			text += ch.Text
		}
	}
	return text, errCode
}

func TestOpenAIStreamEndsWithAnErrorWhenTheRestartDiverges(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(10 * coin.Unit)
	a := h.addMiner(coin.Unit)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	lines := sse(t, h, srv)
	ja := a.nextJob()
	a.tokens(ja, "Hello", " world")
	got := sseUntil(t, lines, "Hello world")
	h.s.drop(a.mc, "connection closed")
	b := h.addMiner(coin.Unit)
	jb := b.nextJob()
	b.tokens(jb, "Hello", " there") // the second attempt says something else
	text, code := sseText(t, sseRest(lines, got))
	if text != "Hello world" || code != "stream_diverged" {
		t.Fatalf("client got %q, error %q", text, code)
	}
}

func TestOpenAIStreamContinuesWhenTheRestartRepeatsTheText(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(10 * coin.Unit)
	a := h.addMiner(coin.Unit)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	lines := sse(t, h, srv)
	ja := a.nextJob()
	a.tokens(ja, "Hello", " wor")
	got := sseUntil(t, lines, "Hello wor")
	h.s.drop(a.mc, "connection closed")
	b := h.addMiner(coin.Unit)
	jb := b.nextJob()
	b.tokens(jb, "Hello", " world", "!") // a seeded job says the same again
	b.finish(jb, "Hello world!", 3)
	text, code := sseText(t, sseRest(lines, got))
	if text != "Hello world!" || code != "" {
		t.Fatalf("client got %q, error %q", text, code)
	}
}

// One table maps errors to codes; the API reference lists every code.
func TestEveryErrorCodeIsDocumented(t *testing.T) {
	spec, err := os.ReadFile("../../docs/api/coordinator.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range errorCodes {
		if seen[c.code] {
			t.Errorf("code %s appears twice in the table", c.code)
		}
		seen[c.code] = true
		if !strings.Contains(string(spec), c.code) {
			t.Errorf("code %s (HTTP %d) is not in docs/api/coordinator.openapi.yaml", c.code, c.status)
		}
		if status, code := HTTPStatus(errf(c.err, "x")); status != c.status || code != c.code {
			t.Errorf("%v maps to %d %s, want %d %s", c.err, status, code, c.status, c.code)
		}
	}
	if _, code := HTTPStatus(fmt.Errorf("wrapped: %w", ErrJobNotFound)); code != "job_not_found" {
		t.Errorf("job_not_found: %s", code)
	}
}

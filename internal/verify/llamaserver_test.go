package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/engine/gguf"
	"github.com/aitbc/aitbc/internal/miner/backend"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/verify"
)

// Log-probability attestations made by a running llama-server, through
// the miner's own OpenAI-compatible client (internal/miner/backend), and
// checked as a receipt is (verify.VerifyReceipt: the claimed GGUF in the
// verifier's registry, the prompt or messages from the claim, the result
// text). docs/VERIFICATION.md ("Remote backends", calibration) has the
// measurement:
//
//	AITBC_LLAMA_SERVER=/path/to/llama-server AITBC_LLAMA_SERVER_JOBS=100 \
//	  AITBC_LLAMA_SERVER_OUT=testdata/llamaserver_jobs.json \
//	  go test -count=1 -timeout 60m -run TestLlamaServerLive -v ./internal/verify
//
// (AITBC_LLAMA_SERVER_CASES=substring runs only the cases whose names
// contain it, or one of its "|"-separated parts; without
// AITBC_LLAMA_SERVER_OUT nothing is written).
//
// Without llama-server, TestLlamaServerRecordings re-verifies the jobs the
// measurement recorded (testdata/llamaserver_jobs.json: two or three per
// case, keepJob, with the attestation the client built from the server's
// answer, and one answer kept whole, which the client must turn into the
// same attestation again).

// serverFile is a GGUF file a case serves or claims.
type serverFile string

const (
	tolstoyF32  serverFile = "tolstoy-F32"
	tolstoyBare serverFile = "tolstoy-F32-bare" // no chat template
	tolstoyQ8   serverFile = "tolstoy-Q8_0"
	tolstoyQ4K  serverFile = "tolstoy-Q4_K" // WriteGGUF's Q4_K: Q5_0 where rows are 128 wide
	wideQ8      serverFile = "wide-Q8_0"
	wideQ4KM    serverFile = "wide-Q4_K_M"
)

// keepJob says which jobs of a case the testdata keeps: the first
// completion (temperature 0.8) and the first greedy chat job, and for a
// cheat the first greedy completion too; the server's whole answer is
// kept for the first job on tolstoy-1m F32. The live test also keeps the
// first job of a case whose output holds a token without bytes (a control
// token: hasEmptyToken), with its whole answer.
func keepJob(c serverCase, i int) (keep, raw bool) {
	return i == 0 || i == 3 || (!c.Honest && i == 1), i == 0 && c.Served == tolstoyF32
}

// chatML is the ChatML template as a GGUF carries it (Jinja, which
// llama-server renders and the engine recognises).
const chatML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// serverFileBytes writes f as the engine does (its K-quants and Q8_0 are
// llama-quantize's bytes, docs/ENGINE.md), with the ChatML template but
// for tolstoyBare: llama-server renders a GGUF without a template as
// ChatML, while the verifier flattens the conversation ("role: content"),
// which the bare file's case measures.
func serverFileBytes(t testing.TB, f serverFile) []byte {
	t.Helper()
	b := serverFileWeights(t, f)
	if f == tolstoyBare {
		return b
	}
	g, err := gguf.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	w := &gguf.Writer{}
	for _, kv := range g.KVs {
		w.Set(kv.Key, kv.Value)
	}
	w.Set("tokenizer.chat_template", chatML)
	for _, ti := range g.Tensors {
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, g.TensorData(ti)); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if _, err := w.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func serverFileWeights(t testing.TB, f serverFile) []byte {
	t.Helper()
	switch f {
	case tolstoyF32, tolstoyBare:
		b, _ := tolstoyGGUF(t, gguf.F32)
		return b
	case tolstoyQ8:
		b, _ := tolstoyGGUF(t, gguf.Q8_0)
		return b
	case tolstoyQ4K:
		b, _ := tolstoyGGUF(t, gguf.Q4_K)
		return b
	case wideQ8:
		b, _ := wideFile(t, "Q8_0")
		return b
	case wideQ4KM:
		b, _ := wideFile(t, "Q4_K_M")
		return b
	}
	t.Fatalf("unknown file %q", f)
	return nil
}

// serverCase is one row of the measurement: the file llama-server runs,
// the file the receipt claims, and whether the prompt sent differs from
// the one claimed.
type serverCase struct {
	Name    string     `json:"name"`
	Served  serverFile `json:"served"`
	Claimed serverFile `json:"claimed"`
	// OtherPrompt: the server is sent a prompt with one word changed,
	// the receipt claims the original.
	OtherPrompt bool `json:"other_prompt,omitempty"`
	Honest      bool `json:"honest"`
	// ChatOnly: every job is a chat job; Rejected: honest, but the
	// verifier is known to reject these jobs (a measured false positive).
	ChatOnly bool `json:"chat_only,omitempty"`
	Rejected bool `json:"rejected,omitempty"`
}

var serverCases = []serverCase{
	{Name: "honest tolstoy-1m F32", Served: tolstoyF32, Claimed: tolstoyF32, Honest: true},
	{Name: "honest tolstoy-1m Q8_0", Served: tolstoyQ8, Claimed: tolstoyQ8, Honest: true},
	{Name: "honest wide Q4_K_M", Served: wideQ4KM, Claimed: wideQ4KM, Honest: true},
	{Name: "honest wide Q8_0", Served: wideQ8, Claimed: wideQ8, Honest: true},
	{Name: "honest chat, GGUF without a chat template (tolstoy-1m F32)", Served: tolstoyBare, Claimed: tolstoyBare, Honest: true, ChatOnly: true},
	{Name: "cheat: another model (wide Q8_0 as tolstoy-1m Q8_0)", Served: wideQ8, Claimed: tolstoyQ8},
	{Name: "cheat: coarser quantisation (tolstoy-1m Q4_K as Q8_0)", Served: tolstoyQ4K, Claimed: tolstoyQ8},
	{Name: "cheat: coarser quantisation (wide Q4_K_M as Q8_0)", Served: wideQ4KM, Claimed: wideQ8},
	{Name: "cheat: another prompt (one word)", Served: tolstoyQ8, Claimed: tolstoyQ8, OtherPrompt: true},
}

// serverJob is one job as sent, answered and recorded.
type serverJob struct {
	Case        string                   `json:"case"`
	Prompt      string                   `json:"prompt,omitempty"`
	Messages    []minerproto.ChatMessage `json:"messages,omitempty"`
	Sent        string                   `json:"sent,omitempty"` // the prompt the server got, when not the claimed one
	Temperature float32                  `json:"temperature"`
	Seed        uint64                   `json:"seed"`
	Text        string                   `json:"text"`
	Attestation []byte                   `json:"attestation"`
	// Raw is the server's whole answer (the SSE stream), for a few jobs.
	Raw string `json:"raw,omitempty"`
	// Measured: what the live check found.
	Pass     bool    `json:"pass"`
	MeanDiff float64 `json:"mean_diff"`
	MaxDiff  float64 `json:"max_diff"`
	Overlap  float64 `json:"top_overlap"`
	Error    string  `json:"error,omitempty"`
}

type serverRecording struct {
	Server string       `json:"server"` // llama-server --version
	Cases  []serverCase `json:"cases"`
	Jobs   []serverJob  `json:"jobs"`
}

// serverJobRequest is the i-th job of a case: alternately temperature 0.8 and 0
// (greedy), completions and chat, seeds 1, 2, ...
func serverJobRequest(r *rand.Rand, i int, c serverCase) (serverJob, backend.Request) {
	p, variant := prompts(r)
	j := serverJob{Case: c.Name, Temperature: []float32{0.8, 0}[i%2], Seed: uint64(i + 1)}
	req := backend.Request{Model: string(c.Claimed), MaxTokens: 64, Temperature: j.Temperature, Seed: j.Seed}
	sent := p
	if c.OtherPrompt {
		sent, j.Sent = variant, variant
	}
	if i/2%2 == 1 || c.ChatOnly {
		j.Messages = []minerproto.ChatMessage{{Role: "user", Content: p}}
		req.Messages = []backend.ChatMessage{{Role: "user", Content: sent}}
	} else {
		j.Prompt, req.Prompt = p, sent
	}
	return j, req
}

// verifyServerJob checks a job as `aitbc receipt verify --recompute` does,
// with the claimed file at claimed.
func verifyServerJob(ctx context.Context, home, claimed string, j serverJob) (verify.Report, error) {
	sum := sha256.Sum256(j.Attestation)
	ph := minerproto.PromptHash(j.Prompt, j.Messages)
	claim := verify.ReceiptClaim{AttestHash: sum[:], PromptHash: ph[:], Result: &j.Text, MaxTokens: 64}
	if j.Messages != nil {
		claim.Messages = j.Messages
	} else {
		claim.Prompt = &j.Prompt
	}
	return verify.VerifyReceipt(ctx, home, claimed, claim, j.Attestation, 1, verify.DefaultTolerance)
}

// recordingTransport keeps the body of every answer.
type recordingTransport struct {
	mu   sync.Mutex
	last bytes.Buffer
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rt.mu.Lock()
	rt.last.Reset()
	rt.mu.Unlock()
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.TeeReader(resp.Body, writerFunc(func(p []byte) (int, error) {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		return rt.last.Write(p)
	})), resp.Body}
	return resp, nil
}

func (rt *recordingTransport) body() string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.last.String()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// startLlamaServer runs bin on model, on loopback, and returns its URL
// once it answers /health. The process is stopped at the end of the test.
func startLlamaServer(t *testing.T, bin, model string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-m", model, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"-t", "2", "-c", "256", "-np", "1", "--no-webui")
	logf, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		logf.Close()
	})
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("llama-server exited: %s", b)
		default:
		}
		resp, err := http.Get(url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
	}
	t.Fatal("llama-server did not become ready")
	return ""
}

// TestLlamaServerLive is the measurement: it needs llama-server
// (AITBC_LLAMA_SERVER) and runs AITBC_LLAMA_SERVER_JOBS jobs per honest
// case (default 8), half as many per cheat.
func TestLlamaServerLive(t *testing.T) {
	bin := os.Getenv("AITBC_LLAMA_SERVER")
	if bin == "" {
		t.Skip("opt-in: set AITBC_LLAMA_SERVER to a llama-server binary")
	}
	n := 8
	if v, err := strconv.Atoi(os.Getenv("AITBC_LLAMA_SERVER_JOBS")); err == nil && v > 0 {
		n = v
	}
	only := os.Getenv("AITBC_LLAMA_SERVER_CASES") // substrings of the case names to run, "|"-separated
	ctx := context.Background()
	dir, home := t.TempDir(), t.TempDir()
	paths := map[serverFile]string{}
	path := func(f serverFile) string {
		if p, ok := paths[f]; ok {
			return p
		}
		p := filepath.Join(dir, string(f)+".gguf")
		if err := os.WriteFile(p, serverFileBytes(t, f), 0o644); err != nil {
			t.Fatal(err)
		}
		paths[f] = p
		return p
	}
	version, _ := exec.Command(bin, "--version").CombinedOutput()
	rec := serverRecording{Server: strings.TrimSpace(lastLine(string(version))), Cases: serverCases}
	for _, c := range serverCases {
		if only != "" && !slices.ContainsFunc(strings.Split(only, "|"), func(s string) bool { return strings.Contains(c.Name, s) }) {
			continue
		}
		url := startLlamaServer(t, bin, path(c.Served))
		rt := &recordingTransport{}
		client := backend.NewOpenAI(url, "", &http.Client{Transport: rt})
		count := n
		if !c.Honest || c.Rejected {
			count = max(1, n/2)
		}
		r := rand.New(rand.NewPCG(11, uint64(len(c.Name))))
		var passed, noAtt, empties int
		var worstMean, worstMax, bestMean float64
		bestMean = 1e9
		for i := range count {
			j, req := serverJobRequest(r, i, c)
			res, err := client.Generate(ctx, req, nil)
			if err != nil {
				t.Fatalf("%s job %d: %v", c.Name, i, err)
			}
			if res.Attestation == "" {
				noAtt++
				t.Logf("%s job %d: no attestation (%q)", c.Name, i, res.Text)
				continue
			}
			j.Text, j.Attestation = res.Text, []byte(res.Attestation)
			rep, err := verifyServerJob(ctx, home, path(c.Claimed), j)
			j.Pass = err == nil && rep.Pass
			if err != nil {
				j.Error = err.Error()
			}
			if l := rep.Logprobs; l != nil {
				j.MeanDiff, j.MaxDiff, j.Overlap = l.MeanDiff, l.MaxDiff, l.TopOverlap
				worstMean, worstMax, bestMean = max(worstMean, l.MeanDiff), max(worstMax, l.MaxDiff), min(bestMean, l.MeanDiff)
			}
			if j.Pass {
				passed++
			}
			if (c.Honest && !c.Rejected) != j.Pass {
				t.Logf("%s job %d (T %.1f, seed %d, chat %v): pass %v: %v", c.Name, i, j.Temperature, j.Seed, j.Messages != nil, j.Pass, err)
			}
			keep, raw := keepJob(c, i)
			if hasEmptyToken(t, j.Attestation) {
				empties++
				if empties == 1 {
					keep, raw = true, true
				}
			}
			if keep {
				if raw {
					j.Raw = rt.body()
				}
				rec.Jobs = append(rec.Jobs, j)
			}
		}
		t.Logf("%s: %d jobs, %d accepted, %d rejected, %d without attestation, %d with a token without bytes; mean |Δ| %.4f–%.4f, max |Δ| up to %.3f",
			c.Name, count, passed, count-noAtt-passed, noAtt, empties, bestMean, worstMean, worstMax)
	}
	if out := os.Getenv("AITBC_LLAMA_SERVER_OUT"); out != "" {
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// hasEmptyToken says whether an attestation holds a token without bytes.
func hasEmptyToken(t testing.TB, att []byte) bool {
	t.Helper()
	a, err := verify.DecodeLogprobAttestation(att)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range a.Positions {
		if len(p.Token) == 0 {
			return true
		}
	}
	return false
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "version") {
			return lines[i]
		}
	}
	return lines[len(lines)-1]
}

// TestLlamaServerRecordings re-verifies the recorded llama-server jobs as
// a receipt is verified: every honest job must be accepted and every
// cheat rejected (each with the error the live check gave). The answers
// kept whole are fed again to the miner's client, through a local server
// that replays them, and must give the recorded attestation.
func TestLlamaServerRecordings(t *testing.T) {
	b, err := os.ReadFile("testdata/llamaserver_jobs.json")
	if err != nil {
		t.Fatal(err)
	}
	var rec serverRecording
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	cases := map[string]serverCase{}
	for _, c := range rec.Cases {
		cases[c.Name] = c
	}
	ctx := context.Background()
	dir, home := t.TempDir(), t.TempDir()
	paths := map[serverFile]string{}
	seen, caught := map[string]int{}, map[string]int{}
	var raws int
	for i, j := range rec.Jobs {
		c, ok := cases[j.Case]
		if !ok {
			t.Fatalf("job %d: unknown case %q", i, j.Case)
		}
		seen[c.Name]++
		p, ok := paths[c.Claimed]
		if !ok {
			p = filepath.Join(dir, string(c.Claimed)+".gguf")
			if err := os.WriteFile(p, serverFileBytes(t, c.Claimed), 0o644); err != nil {
				t.Fatal(err)
			}
			paths[c.Claimed] = p
		}
		if j.Raw != "" {
			raws++
			replayed := replayServerJob(t, j, string(c.Claimed))
			if replayed != string(j.Attestation) {
				t.Errorf("job %d: the client builds another attestation from the recorded answer", i)
			}
		}
		rep, err := verifyServerJob(ctx, home, p, j)
		pass := err == nil && rep.Pass
		if !c.Honest && !j.Pass {
			caught[c.Name]++
		}
		switch {
		case c.Rejected:
			if pass {
				t.Errorf("%s job %d: accepted; the measurement found such jobs rejected (a known false positive): docs/VERIFICATION.md needs updating", c.Name, i)
			}
		case c.Honest && !pass:
			t.Errorf("%s job %d: honest llama-server job rejected: %v", c.Name, i, err)
		case !c.Honest && !j.Pass && pass:
			t.Errorf("%s job %d: cheat accepted (%+v)", c.Name, i, rep.Logprobs)
		case !c.Honest && !j.Pass && !errors.Is(err, verify.ErrMismatch) && !errors.Is(err, verify.ErrTokens):
			t.Errorf("%s job %d: rejected with %v, want a mismatch", c.Name, i, err)
		case pass != j.Pass:
			// A cheat the measurement let through (docs/VERIFICATION.md
			// lists the misses) that is now caught, or the reverse.
			t.Errorf("%s job %d: pass %v, the live check gave %v (%s): docs/VERIFICATION.md needs updating", c.Name, i, pass, j.Pass, j.Error)
		}
	}
	for _, c := range rec.Cases {
		if seen[c.Name] == 0 || (!c.Honest && caught[c.Name] == 0) {
			t.Errorf("%s: %d jobs recorded, %d of them caught", c.Name, seen[c.Name], caught[c.Name])
		}
	}
	if raws == 0 {
		t.Error("no answer recorded whole")
	}
	t.Logf("%d jobs of %d cases re-verified (llama-server %s), %d answers replayed through the client", len(rec.Jobs), len(rec.Cases), rec.Server, raws)
}

// replayServerJob serves j's recorded answer to the miner's OpenAI client
// and returns the attestation the client builds.
func replayServerJob(t *testing.T, j serverJob, model string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, j.Raw)
	}))
	defer srv.Close()
	req := backend.Request{Model: model, MaxTokens: 64, Temperature: j.Temperature, Seed: j.Seed, Prompt: j.Prompt}
	for _, m := range j.Messages {
		req.Messages = append(req.Messages, backend.ChatMessage{Role: m.Role, Content: m.Content})
	}
	res, err := backend.NewOpenAI(srv.URL, "", nil).Generate(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != j.Text {
		t.Fatalf("replayed text %q, recorded %q", res.Text, j.Text)
	}
	return res.Attestation
}

package verify_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
	"github.com/aitbc/aitbc/internal/verify"
)

// The benchmarks of docs/PERFORMANCE.md ("Verifiable inference"): a job
// that fills tolstoy-1m's 256-token context, generated without and with
// commitments, and recomputed by one prefill.

const benchPrompt = "The old prince said"

func benchJob(b *testing.B) (*engine.Model, []byte, engine.GenerateRequest) {
	f := newFixture(b)
	m := f.byType["Q8_0"]
	n := len(m.Tokenizer().Encode(benchPrompt, true))
	return m, f.hash["Q8_0"], engine.GenerateRequest{Prompt: benchPrompt, MaxTokens: m.Config().SeqLen - n, Temperature: 0.8, Seed: 5, Threads: 1}
}

// reportCPU adds the CPU time per operation since start (cpuTime).
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func BenchmarkGenerate256(b *testing.B) {
	m, _, req := benchJob(b)
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		if _, err := m.Generate(context.Background(), req, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerate256Committed(b *testing.B) {
	m, hash, req := benchJob(b)
	var a *verify.Attestation
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		var err error
		if _, a, err = verify.Generate(context.Background(), m, req, hash, "bench", nil); err != nil {
			b.Fatal(err)
		}
	}
	var bytes int
	for _, c := range a.Commits {
		bytes += len(c)
	}
	b.ReportMetric(float64(bytes)/float64(len(a.Commits)), "bytes/chunk")
}

func BenchmarkRecompute256(b *testing.B) {
	m, hash, req := benchJob(b)
	_, a, err := verify.Generate(context.Background(), m, req, hash, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		if _, err := verify.Recompute(context.Background(), m, a, verify.Expected{ModelSHA256: hash}, 1, verify.DefaultTolerance); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommitChunk is the cost of one commitment alone (32 tokens),
// for tolstoy-1m's width (128), the 25M test model's (512) and a 7B
// model's (4096).
func BenchmarkCommitChunk(b *testing.B) {
	for _, dim := range []int{128, 512, 4096} {
		b.Run(strconv.Itoa(dim), func(b *testing.B) {
			acts := randomActs(uint64(dim), verify.ChunkTokens*dim)
			defer reportCPU(b, cpuTime())
			for b.Loop() {
				if _, err := verify.CommitChunk(acts, verify.TopK); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkJobFile is the same job on any GGUF model (the larger test
// models of docs/PERFORMANCE.md): VERIFY_BENCH_GGUF names the file, and
// without it there is nothing to measure. Sub-benchmarks: generation
// without and with commitments (256 tokens, or the context less the
// prompt) and its verification by one prefill, one thread each.
func BenchmarkJobFile(b *testing.B) {
	path := os.Getenv("VERIFY_BENCH_GGUF")
	if path == "" {
		b.Skip("VERIFY_BENCH_GGUF is not set: no model file to measure")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	m, err := engine.LoadGGUF(data)
	if err != nil {
		b.Fatal(err)
	}
	hash := sha256.Sum256(data)
	n := len(m.Tokenizer().Encode(benchPrompt, true))
	req := engine.GenerateRequest{Prompt: benchPrompt, MaxTokens: min(256, m.Config().SeqLen-n), Temperature: 0.8, Seed: 5, Threads: 1}
	b.Run("generate", func(b *testing.B) {
		defer reportCPU(b, cpuTime())
		var res engine.Result
		for b.Loop() {
			if res, err = m.Generate(context.Background(), req, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(res.Tokens)), "out-tokens")
	})
	var a *verify.Attestation
	b.Run("generate-committed", func(b *testing.B) {
		defer reportCPU(b, cpuTime())
		for b.Loop() {
			if _, a, err = verify.Generate(context.Background(), m, req, hash[:], "bench", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("recompute", func(b *testing.B) {
		defer reportCPU(b, cpuTime())
		for b.Loop() {
			r, err := verify.Recompute(context.Background(), m, a, verify.Expected{ModelSHA256: hash[:]}, 1, verify.DefaultTolerance)
			if err != nil || !r.Pass {
				b.Fatal(err, r.Failures)
			}
		}
	})
}

// BenchmarkCommitOverhead is the commitment overhead as a fraction of
// generation, measured alternately in each iteration (generate the job
// collecting its hidden states, then commit to them as the recorder
// does), so that both halves see the same load on a shared machine; it
// reports the median ratio ("commit-%").
func BenchmarkCommitOverhead(b *testing.B) {
	m, _, req := benchJob(b)
	var hidden [][]float32
	req.Hidden = func(_ int, h []float32) { hidden = append(hidden, slices.Clone(h)) }
	var ratios []float64
	for b.Loop() {
		hidden = hidden[:0]
		t0 := time.Now()
		if _, err := m.Generate(context.Background(), req, nil); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		rec := verify.NewRecorder(verify.TopK)
		for i, h := range hidden {
			rec.Hidden(i, h)
		}
		if _, err := rec.Finish(); err != nil {
			b.Fatal(err)
		}
		ratios = append(ratios, time.Since(t1).Seconds()/t1.Sub(t0).Seconds())
	}
	slices.Sort(ratios)
	b.ReportMetric(100*ratios[len(ratios)/2], "commit-%")
}

// BenchmarkVerifyRatio is verification against generation for a 256-token
// job (or the context less the prompt), measured alternately in each
// iteration (generate the job with commitments, then verify it by one
// prefill), so that both see the same load on a shared machine. It
// reports the median ratios of CPU time ("cpu-ratio-%") and wall time
// ("wall-ratio-%") and the medians of each half. The model is
// tolstoy-1m as Q8_0, or the GGUF file VERIFY_BENCH_GGUF names;
// VERIFY_BENCH_THREADS sets the threads of both halves (default 1) and
// VERIFY_BENCH_SEED the sampling seed (default 5).
func BenchmarkVerifyRatio(b *testing.B) {
	m, hash, req := benchJob(b)
	if path := os.Getenv("VERIFY_BENCH_GGUF"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		if m, err = engine.LoadGGUF(data); err != nil {
			b.Fatal(err)
		}
		h := sha256.Sum256(data)
		hash = h[:]
		n := len(m.Tokenizer().Encode(benchPrompt, true))
		req.MaxTokens = min(256, m.Config().SeqLen-n)
	}
	if v, err := strconv.ParseUint(os.Getenv("VERIFY_BENCH_SEED"), 10, 64); err == nil {
		req.Seed = v // a seed whose job does not stop early on a random-weight model
	}
	threads := 1
	if v, err := strconv.Atoi(os.Getenv("VERIFY_BENCH_THREADS")); err == nil && v > 0 {
		threads = v
	}
	req.Threads = threads
	var cpuR, wallR, genCPU, verCPU, genWall, verWall []float64
	var tokens int
	for b.Loop() {
		c0, t0 := cpuTime(), time.Now()
		_, a, err := verify.Generate(context.Background(), m, req, hash, "bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		c1, t1 := cpuTime(), time.Now()
		r, err := verify.Recompute(context.Background(), m, a, verify.Expected{ModelSHA256: hash}, threads, verify.DefaultTolerance)
		if err != nil || !r.Pass {
			b.Fatal(err, r.Failures)
		}
		c2, t2 := cpuTime(), time.Now()
		tokens = len(a.OutputTokens)
		genCPU, verCPU = append(genCPU, (c1-c0).Seconds()), append(verCPU, (c2-c1).Seconds())
		genWall, verWall = append(genWall, t1.Sub(t0).Seconds()), append(verWall, t2.Sub(t1).Seconds())
		cpuR = append(cpuR, (c2-c1).Seconds()/(c1-c0).Seconds())
		wallR = append(wallR, t2.Sub(t1).Seconds()/t1.Sub(t0).Seconds())
	}
	med := func(v []float64) float64 { v = slices.Clone(v); slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(100*med(cpuR), "cpu-ratio-%")
	b.ReportMetric(100*med(wallR), "wall-ratio-%")
	b.ReportMetric(1e3*med(genCPU), "gen-cpu-ms")
	b.ReportMetric(1e3*med(verCPU), "verify-cpu-ms")
	b.ReportMetric(1e3*med(genWall), "gen-wall-ms")
	b.ReportMetric(1e3*med(verWall), "verify-wall-ms")
	b.ReportMetric(float64(tokens), "out-tokens")
}

// BenchmarkRecomputeLlamaCpp is the cost of checking a job whose
// commitments came from another engine (the first Q8_0 job of
// testdata/llamacpp_hidden.json, llama.cpp's defaults: near, not exact,
// so every output token is checked in a second prefill with logits)
// against the same tokens committed by the engine itself (exact: one
// prefill).
func BenchmarkRecomputeLlamaCpp(b *testing.B) {
	raw, err := os.ReadFile("testdata/llamacpp_hidden.json")
	if err != nil {
		b.Fatal(err)
	}
	var runs []llamaHiddenRun
	if err := json.Unmarshal(raw, &runs); err != nil {
		b.Fatal(err)
	}
	var j llamaHiddenJob
	var hash []byte
	for _, r := range runs {
		if r.Type == "Q8_0" && r.Mode == "default" {
			j = r.Jobs[0]
			hash, _ = hex.DecodeString(r.ModelSHA256)
		}
	}
	_, m := tolstoyGGUF(b, gguf.Q8_0)
	var seq []int
	for _, v := range append(slices.Clone(j.Prompt), j.Output...) {
		seq = append(seq, int(v))
	}
	s, err := m.NewSession(engine.SessionOptions{Threads: 1, MaxPos: len(seq)})
	if err != nil {
		b.Fatal(err)
	}
	rec := verify.NewRecorder(verify.TopK)
	p := len(j.Prompt)
	if err := s.PrefillHidden(context.Background(), seq[:len(seq)-1], 0, func(pos int, h []float32) {
		if pos >= p-1 {
			rec.Hidden(pos, h)
		}
	}); err != nil {
		b.Fatal(err)
	}
	s.Close()
	own, err := rec.Finish()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		commits [][]byte
		checked int
	}{{"engine", own, 1}, {"llama.cpp", j.Commits, len(j.Output)}} {
		b.Run(c.name, func(b *testing.B) {
			a := &verify.Attestation{Version: verify.Version, Engine: c.name, ModelSHA256: hash, Quant: m.TensorType(),
				PromptTokens: j.Prompt, OutputTokens: j.Output, Stop: j.Stop, ChunkTokens: verify.ChunkTokens, Commits: c.commits}
			defer reportCPU(b, cpuTime())
			for b.Loop() {
				rep, err := verify.Recompute(context.Background(), m, a, verify.Expected{ModelSHA256: hash}, 1, verify.DefaultTolerance)
				if err != nil || rep.TokensChecked != c.checked {
					b.Fatal(err, rep.TokensChecked)
				}
			}
		})
	}
}

// BenchmarkFirstToken is the latency to a prompt's first output token: a
// prompt of VERIFY_BENCH_PROMPT tokens (default 512, at most the context)
// through Prefill, then the last prompt token through Forward for the
// logits of the first output token, as Generate does, on the GGUF file
// VERIFY_BENCH_GGUF names (tolstoy-1m Q8_0 without it) with
// VERIFY_BENCH_THREADS threads (default 1). It reports the median wall
// and CPU milliseconds and the prompt rate (prompt tokens per wall
// second).
func BenchmarkFirstToken(b *testing.B) {
	m, _, _ := benchJob(b)
	if path := os.Getenv("VERIFY_BENCH_GGUF"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		if m, err = engine.LoadGGUF(data); err != nil {
			b.Fatal(err)
		}
	}
	n := 512
	if v, err := strconv.Atoi(os.Getenv("VERIFY_BENCH_PROMPT")); err == nil && v > 1 {
		n = v
	}
	n = min(n, m.Config().SeqLen)
	threads := 1
	if v, err := strconv.Atoi(os.Getenv("VERIFY_BENCH_THREADS")); err == nil && v > 0 {
		threads = v
	}
	prompt := make([]int, n)
	for i := range prompt {
		prompt[i] = (i*37 + 11) % m.Config().VocabSize
	}
	var wall, cpu []float64
	for b.Loop() {
		s, err := m.NewSession(engine.SessionOptions{Threads: threads, MaxPos: n})
		if err != nil {
			b.Fatal(err)
		}
		c0, t0 := cpuTime(), time.Now()
		if err := s.Prefill(context.Background(), prompt[:n-1], 0); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Forward(prompt[n-1], n-1); err != nil {
			b.Fatal(err)
		}
		wall, cpu = append(wall, time.Since(t0).Seconds()), append(cpu, (cpuTime()-c0).Seconds())
		s.Close()
	}
	med := func(v []float64) float64 { v = slices.Clone(v); slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(1e3*med(wall), "first-token-wall-ms")
	b.ReportMetric(1e3*med(cpu), "first-token-cpu-ms")
	b.ReportMetric(float64(n)/med(wall), "prompt-tok/s")
	b.ReportMetric(float64(n), "prompt-tokens")
}

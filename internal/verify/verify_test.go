package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
	"github.com/aitbc/aitbc/internal/verify"
)

// fixture holds tolstoy-1m in the quantisations the tests compare.
type fixture struct {
	byType map[string]*engine.Model
	hash   map[string][]byte
	small  *engine.Model // tolstoy-1m without its last layer: a cheaper model
	// scaled is tolstoy-1m (F32) with its last layer's feed-forward output
	// weights scaled by 0.9: the substitute of `miner start --cheat model`
	// (backend.WriteSubstitute), another model under the same name.
	scaled *engine.Model
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	base, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{byType: map[string]*engine.Model{}, hash: map[string][]byte{}}
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.Q8_0, gguf.Q4_K} {
		var b bytes.Buffer
		if err := base.WriteGGUF(&b, typ); err != nil {
			t.Fatal(err)
		}
		m, err := engine.LoadGGUF(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(b.Bytes())
		f.byType[typ.String()], f.hash[typ.String()] = m, h[:]
		if typ == gguf.F32 {
			f.small = dropLastLayer(t, b.Bytes())
			f.scaled = scaleLastFFN(t, b.Bytes(), 0.9)
		}
	}
	return f
}

// dropLastLayer rewrites a GGUF without its last transformer block.
func dropLastLayer(t testing.TB, data []byte) *engine.Model {
	t.Helper()
	g, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	arch, _ := g.String("general.architecture")
	n, _ := g.Uint(arch + ".block_count")
	var w gguf.Writer
	for _, kv := range g.KVs {
		if kv.Key == arch+".block_count" {
			w.Set(kv.Key, uint32(n-1))
			continue
		}
		w.Set(kv.Key, kv.Value)
	}
	drop := fmt.Sprintf("blk.%d.", n-1)
	for _, ti := range g.Tensors {
		if len(ti.Name) >= len(drop) && ti.Name[:len(drop)] == drop {
			continue
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, g.TensorData(ti)); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	m, err := engine.LoadGGUF(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// scaleLastFFN rewrites an F32 GGUF with its last block's ffn_down weights
// multiplied by k.
func scaleLastFFN(t testing.TB, data []byte, k float32) *engine.Model {
	t.Helper()
	g, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	arch, _ := g.String("general.architecture")
	n, _ := g.Uint(arch + ".block_count")
	target := fmt.Sprintf("blk.%d.ffn_down.weight", n-1)
	var w gguf.Writer
	for _, kv := range g.KVs {
		w.Set(kv.Key, kv.Value)
	}
	found := false
	for _, ti := range g.Tensors {
		d := g.TensorData(ti)
		if ti.Name == target {
			if ti.Type != gguf.F32 {
				t.Fatalf("%s is %s", target, ti.Type)
			}
			d = bytes.Clone(d)
			for i := 0; i+4 <= len(d); i += 4 {
				binary.LittleEndian.PutUint32(d[i:], math.Float32bits(k*math.Float32frombits(binary.LittleEndian.Uint32(d[i:]))))
			}
			found = true
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, d); err != nil {
			t.Fatal(err)
		}
	}
	if !found {
		t.Fatalf("no tensor %s", target)
	}
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	m, err := engine.LoadGGUF(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func gen(t testing.TB, m *engine.Model, hash []byte, prompt string, maxTokens int, seed uint64, threads int) (engine.Result, *verify.Attestation) {
	t.Helper()
	req := engine.GenerateRequest{Prompt: prompt, MaxTokens: maxTokens, Temperature: 0.8, Seed: seed, Threads: threads}
	res, a, err := verify.Generate(context.Background(), m, req, hash, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	return res, a
}

func TestCommitmentIs258BytesPer32Tokens(t *testing.T) {
	f := newFixture(t)
	_, a := gen(t, f.byType["F32"], f.hash["F32"], "Once upon a time", 100, 1, 1)
	if got := len(a.Commits); got != 4 { // 32+32+32+4
		t.Fatalf("%d commitments for 100 tokens, want 4", got)
	}
	for i, c := range a.Commits {
		if len(c) != 258 {
			t.Errorf("commitment %d is %d bytes, want 258", i, len(c))
		}
	}
	b, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := verify.DecodeAttestation(b)
	if err != nil {
		t.Fatal(err)
	}
	if h1, _ := a.Hash(); !bytes.Equal(h1, must(back.Hash())) {
		t.Error("attestation hash changes through encode/decode")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestHonestJobVerifiesAcrossThreadCounts(t *testing.T) {
	f := newFixture(t)
	for _, q := range []string{"F32", "Q8_0", "Q4_K"} {
		m := f.byType[q]
		res, a := gen(t, m, f.hash[q], "The old prince", 80, 7, 1)
		for _, threads := range []int{1, 2, 3} {
			rep, err := verify.Recompute(context.Background(), m, a, verify.Expected{ModelSHA256: f.hash[q], Result: &res.Text}, threads, verify.DefaultTolerance)
			if err != nil || !rep.Pass {
				t.Fatalf("%s, %d threads: honest job rejected: %v %+v", q, threads, err, rep)
			}
			for i, c := range rep.Chunks {
				if c.ExpMismatches != 0 || c.Mismatches != 0 || c.MantMean != 0 {
					t.Errorf("%s, %d threads, chunk %d: %+v, want an exact match (the engine is deterministic)", q, threads, i, c)
				}
			}
			// Exact, so only the last token is checked against the logits
			// (no second prefill).
			if rep.TokensChecked != 1 {
				t.Errorf("%s, %d threads: %d tokens checked, want 1", q, threads, rep.TokensChecked)
			}
			// And every draw of the sampler replayed (the stop too after eos).
			if want := len(a.OutputTokens) + btoi(a.Stop == "eos"); rep.Replayed != want {
				t.Errorf("%s, %d threads: %d draws replayed, want %d", q, threads, rep.Replayed, want)
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestCheatsAreRejected(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	honest, _ := gen(t, f.byType["Q8_0"], f.hash["Q8_0"], "Natasha said", 64, 3, 1)
	_ = honest
	check := func(name string, a *verify.Attestation, want error) {
		t.Helper()
		_, err := verify.Recompute(ctx, f.byType["Q8_0"], a, verify.Expected{ModelSHA256: f.hash["Q8_0"]}, 1, verify.DefaultTolerance)
		if !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", name, err, want)
		}
	}
	// A coarser quantisation that claims to be Q8_0.
	_, a := gen(t, f.byType["Q4_K"], f.hash["Q8_0"], "Natasha said", 64, 3, 1)
	a.Quant = "Q8_0"
	check("Q4_K posing as Q8_0", a, verify.ErrMismatch)
	// A smaller model.
	_, a = gen(t, f.small, f.hash["Q8_0"], "Natasha said", 64, 3, 1)
	a.Quant = "Q8_0"
	check("a model with one layer less", a, verify.ErrMismatch)
	// The commitments of another prompt.
	_, a = gen(t, f.byType["Q8_0"], f.hash["Q8_0"], "Natasha said", 64, 3, 1)
	_, other := gen(t, f.byType["Q8_0"], f.hash["Q8_0"], "Pierre asked", 64, 3, 1)
	a.PromptTokens = other.PromptTokens
	check("altered prompt", a, verify.ErrMismatch)
	// An output token changed after the commitments were made.
	_, a = gen(t, f.byType["Q8_0"], f.hash["Q8_0"], "Natasha said", 64, 3, 1)
	a.OutputTokens[10] = (a.OutputTokens[10] + 1) % uint32(f.byType["Q8_0"].Config().VocabSize)
	check("altered output", a, verify.ErrMismatch)
	// The wrong model file.
	_, a = gen(t, f.byType["Q8_0"], f.hash["F32"], "Natasha said", 64, 3, 1)
	check("another model's hash", a, verify.ErrModelMismatch)
}

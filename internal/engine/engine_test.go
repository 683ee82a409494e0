package engine_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
)

// TestSplitLayersMatchFullPass runs layers 0..2 and 2..4 in two sessions
// with separate KV caches, as two miners would, and checks the logits are
// bit-for-bit those of the unsplit pass at every position.
func TestSplitLayersMatchFullPass(t *testing.T) {
	m := defaultModel(t)
	c := m.Config()
	full, err := m.NewSession(engine.SessionOptions{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	front, err := m.NewSession(engine.SessionOptions{Threads: 1, FirstLayer: 0, LastLayer: 2, MaxPos: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer front.Close()
	back, err := m.NewSession(engine.SessionOptions{Threads: 2, FirstLayer: 2, LastLayer: 4, MaxPos: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()

	hidden := make([]float32, c.Dim)
	token := 1
	for pos := range 40 {
		want, err := full.Forward(token, pos)
		if err != nil {
			t.Fatal(err)
		}
		want = append([]float32(nil), want...)
		if err := front.Embed(token, hidden); err != nil {
			t.Fatal(err)
		}
		if err := front.Layers(0, 2, hidden, pos); err != nil {
			t.Fatal(err)
		}
		if err := back.Layers(2, 4, hidden, pos); err != nil {
			t.Fatal(err)
		}
		got, err := back.Head(hidden)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("pos %d logit %d: split %v, full %v", pos, i, got[i], want[i])
			}
		}
		token = argmax(want)
	}
}

func TestSessionErrors(t *testing.T) {
	m := defaultModel(t)
	c := m.Config()
	s, err := m.NewSession(engine.SessionOptions{Threads: 1, FirstLayer: 1, LastLayer: 3, MaxPos: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := make([]float32, c.Dim)
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"token id", s.Embed(c.VocabSize, h), engine.ErrTokenID},
		{"negative token id", s.Embed(-1, h), engine.ErrTokenID},
		{"short buffer", s.Embed(1, h[:3]), engine.ErrBuffer},
		{"layer outside the session", s.Layers(0, 2, h, 0), engine.ErrLayerRange},
		{"layer beyond the model", s.Layers(1, 5, h, 0), engine.ErrLayerRange},
		{"skipped position", s.Layers(1, 3, h, 1), engine.ErrPosition},
		{"position beyond MaxPos", s.Layers(1, 3, h, 8), engine.ErrPosition},
		{"forward needs all layers", func() error { _, err := s.Forward(1, 0); return err }(), engine.ErrLayerRange},
		{"head buffer", func() error { _, err := s.Head(h[:1]); return err }(), engine.ErrBuffer},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	for _, o := range []engine.SessionOptions{
		{FirstLayer: 3, LastLayer: 2}, {LastLayer: 5}, {FirstLayer: -1, LastLayer: 2},
	} {
		if _, err := m.NewSession(o); !errors.Is(err, engine.ErrLayerRange) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if _, err := m.NewSession(engine.SessionOptions{MaxPos: c.SeqLen + 1}); !errors.Is(err, engine.ErrPosition) {
		t.Errorf("MaxPos beyond context: %v", err)
	}
	if _, err := m.NewSession(engine.SessionOptions{Threads: -1}); !errors.Is(err, engine.ErrThreads) {
		t.Errorf("negative threads: %v", err)
	}
}

func TestGenerateRequestErrors(t *testing.T) {
	m := defaultModel(t)
	long := strings.Repeat("Prince Andrew and Natasha. ", 100)
	for _, tc := range []struct {
		name string
		req  engine.GenerateRequest
		want error
	}{
		{"negative temperature", engine.GenerateRequest{Prompt: "x", Temperature: -0.1}, engine.ErrTemperature},
		{"temperature above 2", engine.GenerateRequest{Prompt: "x", Temperature: 2.5}, engine.ErrTemperature},
		{"NaN temperature", engine.GenerateRequest{Prompt: "x", Temperature: float32(math.NaN())}, engine.ErrTemperature},
		{"negative top-p", engine.GenerateRequest{Prompt: "x", Temperature: 1, TopP: -0.5}, engine.ErrTopP},
		{"top-p above 1", engine.GenerateRequest{Prompt: "x", Temperature: 1, TopP: 1.5}, engine.ErrTopP},
		{"prompt longer than the context", engine.GenerateRequest{Prompt: long}, engine.ErrPromptTooLong},
		{"max tokens beyond the context", engine.GenerateRequest{Prompt: "It was", MaxTokens: 254}, engine.ErrMaxTokens},
		{"negative max tokens", engine.GenerateRequest{Prompt: "It was", MaxTokens: -1}, engine.ErrMaxTokens},
		{"negative threads", engine.GenerateRequest{Prompt: "It was", Threads: -2}, engine.ErrThreads},
	} {
		_, err := m.Generate(context.Background(), tc.req, nil)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// The context is exactly full: 3 prompt tokens + 253 generated = 256.
	res, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: "It was", MaxTokens: 253}, nil)
	if err != nil {
		t.Fatalf("a request that exactly fills the context: %v", err)
	}
	if len(res.PromptTokens)+len(res.Tokens) > m.Config().SeqLen {
		t.Fatalf("%d tokens in a context of %d", len(res.PromptTokens)+len(res.Tokens), m.Config().SeqLen)
	}
}

func TestSeededSamplingIsReproducible(t *testing.T) {
	m := defaultModel(t)
	req := engine.GenerateRequest{Prompt: "Prince Andrew", MaxTokens: 120, Temperature: 0.8, TopP: 0.9, Seed: 42}
	first, err := m.Generate(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, threads := range []int{1, 2} {
		req.Threads = threads
		again, err := m.Generate(context.Background(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again.Tokens, first.Tokens) {
			t.Fatalf("threads %d: seed 42 gave different tokens:\n%v\n%v", threads, again.Tokens, first.Tokens)
		}
	}
	req.Seed = 43
	other, err := m.Generate(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(other.Tokens, first.Tokens) {
		t.Fatal("seeds 42 and 43 gave the same tokens")
	}
	// Plain temperature sampling (top-p off) is reproducible too.
	req = engine.GenerateRequest{Prompt: "Natasha", MaxTokens: 60, Temperature: 1, Seed: 7}
	a, _ := m.Generate(context.Background(), req, nil)
	b, _ := m.Generate(context.Background(), req, nil)
	if !reflect.DeepEqual(a.Tokens, b.Tokens) || len(a.Tokens) == 0 {
		t.Fatalf("temperature 1 seed 7: %v vs %v", a.Tokens, b.Tokens)
	}
}

// TestSeededSamplingGolden pins seeded outputs to those of run.c's sampler,
// so that a change to the sampler or the RNG (which would change every
// seeded output on the network) is noticed.
func TestSeededSamplingGolden(t *testing.T) {
	m := defaultModel(t)
	for _, tc := range []struct {
		req  engine.GenerateRequest
		want []int
	}{
		{engine.GenerateRequest{Prompt: "Prince Andrew", MaxTokens: 20, Temperature: 0.8, TopP: 0.9, Seed: 42}, goldenSeed42},
		{engine.GenerateRequest{Prompt: "Natasha", MaxTokens: 39, Temperature: 1, TopP: 1, Seed: 7}, goldenSeed7},
	} {
		res, err := m.Generate(context.Background(), tc.req, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(res.Tokens, tc.want) {
			t.Errorf("%+v gave %v, want %v", tc.req, res.Tokens, tc.want)
		}
	}
}

func TestRng(t *testing.T) {
	// run.c's xorshift* with state 42: first outputs computed by hand from
	// the recurrence.
	r := engine.NewRng(42)
	var state uint64 = 42
	for range 1000 {
		state ^= state >> 12
		state ^= state << 25
		state ^= state >> 27
		want := uint32((state * 0x2545F4914F6CDD1D) >> 32)
		if got := r.Uint32(); got != want {
			t.Fatalf("got %d want %d", got, want)
		}
	}
	f := engine.NewRng(1)
	for range 10000 {
		if v := f.Float32(); v < 0 || v >= 1 {
			t.Fatalf("Float32 %v outside [0,1)", v)
		}
	}
	if engine.NewRng(0).Uint32() == 0 {
		t.Fatal("seed 0 must not leave the generator stuck at zero")
	}
}

func TestStreamingAndStop(t *testing.T) {
	m := defaultModel(t)
	var streamed []int
	var text strings.Builder
	res, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: "It was", MaxTokens: 46}, func(tok engine.Token) error {
		streamed = append(streamed, tok.ID)
		text.WriteString(tok.Text)
		if tok.Pos != 2+len(streamed) {
			t.Errorf("token %d at pos %d", len(streamed), tok.Pos)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(streamed, res.Tokens) || text.String() != res.Text {
		t.Fatalf("streamed %v %q, result %v %q", streamed, text.String(), res.Tokens, res.Text)
	}
	if res.Stop != engine.StopMaxTokens || len(res.Tokens) != 46 {
		t.Fatalf("stop %s after %d tokens", res.Stop, len(res.Tokens))
	}

	// The callback's error stops generation and is returned.
	boom := errors.New("client went away")
	res, err = m.Generate(context.Background(), engine.GenerateRequest{Prompt: "It was", MaxTokens: 40}, func(tok engine.Token) error {
		if tok.Pos == 5 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || len(res.Tokens) != 3 || res.Stop != engine.StopCancelled {
		t.Fatalf("callback error: %v, %d tokens, stop %s", err, len(res.Tokens), res.Stop)
	}

	// Cancelling the context stops generation between tokens.
	ctx, cancel := context.WithCancel(context.Background())
	res, err = m.Generate(ctx, engine.GenerateRequest{Prompt: "It was", MaxTokens: 40}, func(tok engine.Token) error {
		if tok.Pos == 4 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || len(res.Tokens) != 2 {
		t.Fatalf("cancel: %v after %d tokens", err, len(res.Tokens))
	}
}

// TestStopsOnBOS generates from a sampled stream long enough that the
// model emits BOS (it ends chapters with it) and checks that generation
// stops there without returning the BOS.
func TestStopsOnBOS(t *testing.T) {
	m := defaultModel(t)
	for seed := uint64(1); seed < 40; seed++ {
		res, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: "The end.", Temperature: 1.5, Seed: seed}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range res.Tokens {
			if id == 1 || id == 2 {
				t.Fatalf("seed %d: BOS/EOS in the output %v", seed, res.Tokens)
			}
		}
		if res.Stop == engine.StopEOS {
			if len(res.PromptTokens)+len(res.Tokens) >= m.Config().SeqLen {
				t.Fatalf("seed %d: stopped on EOS at the context limit", seed)
			}
			return
		}
	}
	t.Fatal("no seed made the model emit BOS/EOS")
}

func TestConcurrentGenerate(t *testing.T) {
	m := defaultModel(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := reference[i%len(reference)]
			prompt := ids(r.promptIDs)
			res, err := m.Generate(context.Background(), engine.GenerateRequest{
				Prompt: r.prompt, MaxTokens: referencePositions + 1 - len(prompt), Threads: 1 + i%2,
			}, nil)
			if err != nil {
				errs <- err
				return
			}
			if !reflect.DeepEqual(res.Tokens, ids(r.generated)) {
				errs <- errors.New("concurrent generation of " + r.prompt + " differs from the reference")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestGenerateTimingsAndEmptyPrompt(t *testing.T) {
	m := defaultModel(t)
	res, err := m.Generate(context.Background(), engine.GenerateRequest{MaxTokens: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.PromptTokens, []int{1}) {
		t.Fatalf("empty prompt encodes to %v", res.PromptTokens)
	}
	if res.Timings.Total <= 0 || res.Timings.Total < res.Timings.Prompt {
		t.Fatalf("timings %+v", res.Timings)
	}
}

func TestModelInfo(t *testing.T) {
	m := defaultModel(t)
	c := m.Config()
	want := engine.Config{Dim: 128, HiddenDim: 384, Layers: 4, Heads: 4, KVHeads: 4, VocabSize: 1024, SeqLen: 256,
		NormEps: 1e-5, RopeTheta: 10000, SharedClassifier: true, Arch: "llama"}
	if c != want {
		t.Fatalf("config %+v", c)
	}
	if c.Params() != 984192 {
		t.Fatalf("params %d, README says 984,192", c.Params())
	}
	if m.Name() != engine.DefaultModel || m.Format() != engine.FormatLlama2C || m.Quantized() {
		t.Fatalf("name %q format %q", m.Name(), m.Format())
	}
}

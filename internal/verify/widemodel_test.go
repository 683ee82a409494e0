package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// The wider model of docs/VERIFICATION.md ("Across engines"): tolstoy-1m's
// rows are 128 values wide, too narrow for K-quants (llama-quantize falls
// back to legacy types), and a model with random weights predicts nearly
// flat distributions, which says little about near-ties. This one is
// 1024 wide (every row a multiple of 256) and its predictions are peaked
// and have structure: its embedding is a random orthogonal basis (rows of
// RMS 1, so the final norm leaves them alone) and its classifier is made so
// that, on the embedding alone, it gives exactly tolstoy-1m's next-token
// logits after BOS and that token: a bigram model distilled from
// tolstoy-1m, in dense matrices (not tolstoy's weights tiled into wider
// ones, which would leave quantisation blocks of padding). Two layers of
// random attention and feed-forward weights (scale 0.01) sit on the
// residual stream, so the context moves the prediction a little and every
// kind of matrix is quantised. Vocabulary and tokenizer are tolstoy-1m's
// (llama.cpp loads them), so the same prompts serve.
const (
	wideDim, wideHidden, wideLayers, wideHeads, wideKVHeads = 1024, 2048, 2, 16, 4
	wideScale                                               = 0.01
)

var wideOnce = sync.OnceValues(buildWideModel)

// wideGGUF is the F32 GGUF of the wider model, built once per test binary
// (deterministic: fixed seeds, tolstoy-1m's logits).
func wideGGUF(t testing.TB) []byte {
	t.Helper()
	b, err := wideOnce()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func buildWideModel() ([]byte, error) {
	base, err := engine.LoadDefault()
	if err != nil {
		return nil, err
	}
	defer base.Close()
	vocab := base.Config().VocabSize
	// L[x] = tolstoy-1m's logits after BOS x.
	logits := make([][]float32, vocab)
	bos := base.Tokenizer().BOS()
	for x := range vocab {
		s, err := base.NewSession(engine.SessionOptions{Threads: 1, MaxPos: 2})
		if err != nil {
			return nil, err
		}
		err = s.PrefillLogits(context.Background(), []int{bos, x}, 0, func(pos int, l []float32) {
			if pos == 1 {
				logits[x] = append([]float32(nil), l...)
			}
		})
		s.Close()
		if err != nil {
			return nil, err
		}
	}
	r := rand.New(rand.NewPCG(2026, 1130))
	// A random orthogonal basis of vocab rows in wideDim dimensions
	// (modified Gram-Schmidt), each row scaled to norm sqrt(dim): RMS 1.
	emb := make([][]float64, vocab)
	for i := range emb {
		v := make([]float64, wideDim)
		for k := range v {
			v[k] = r.NormFloat64()
		}
		for j := range i {
			var d float64
			for k := range v {
				d += v[k] * emb[j][k]
			}
			for k := range v {
				v[k] -= d * emb[j][k]
			}
		}
		var n float64
		for _, x := range v {
			n += x * x
		}
		n = math.Sqrt(n)
		for k := range v {
			v[k] /= n
		}
		emb[i] = v
	}
	// output[y] = Σ_x L[x][y] e_x / sqrt(dim), so that output·(sqrt(dim) e_x) = L[x].
	out := make([]float32, vocab*wideDim)
	for x := range vocab {
		for y := range vocab {
			c := float64(logits[x][y]) / math.Sqrt(wideDim)
			row := out[y*wideDim : (y+1)*wideDim]
			for k := range row {
				row[k] += float32(c * emb[x][k])
			}
		}
	}
	embd := make([]float32, vocab*wideDim)
	for x := range vocab {
		for k := range wideDim {
			embd[x*wideDim+k] = float32(emb[x][k] * math.Sqrt(wideDim))
		}
	}
	// Metadata (tokenizer included) from tolstoy-1m's GGUF, shape changed.
	var src bytes.Buffer
	if err := base.WriteGGUF(&src, gguf.F32); err != nil {
		return nil, err
	}
	meta, err := gguf.Parse(src.Bytes())
	if err != nil {
		return nil, err
	}
	shape := map[string]any{
		"llama.embedding_length": uint32(wideDim), "llama.feed_forward_length": uint32(wideHidden),
		"llama.block_count": uint32(wideLayers), "llama.attention.head_count": uint32(wideHeads),
		"llama.attention.head_count_kv": uint32(wideKVHeads), "llama.rope.dimension_count": uint32(wideDim / wideHeads),
		"general.file_type": uint32(0), "general.name": "tolstoy-bigram-wide",
	}
	w := &gguf.Writer{}
	for _, kv := range meta.KVs {
		if v, ok := shape[kv.Key]; ok {
			w.Set(kv.Key, v)
			continue
		}
		w.Set(kv.Key, kv.Value)
	}
	add := func(name string, rows, cols int, vals []float32) error {
		if vals == nil {
			vals = make([]float32, rows*cols)
			for i := range vals {
				vals[i] = wideScale * float32(r.NormFloat64())
			}
		}
		data := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
		dims := []uint64{uint64(cols), uint64(rows)}
		if rows == 1 {
			dims = dims[:1]
		}
		return w.AddTensor(name, gguf.F32, dims, data)
	}
	ones := make([]float32, wideDim)
	for i := range ones {
		ones[i] = 1
	}
	kv := wideDim / wideHeads * wideKVHeads
	type tensor struct {
		name       string
		rows, cols int
		vals       []float32
	}
	ts := []tensor{{"token_embd.weight", vocab, wideDim, embd}, {"output_norm.weight", 1, wideDim, ones}, {"output.weight", vocab, wideDim, out}}
	for l := range wideLayers {
		p := "blk." + strconv.Itoa(l) + "."
		ts = append(ts, tensor{p + "attn_norm.weight", 1, wideDim, ones}, tensor{p + "ffn_norm.weight", 1, wideDim, ones},
			tensor{p + "attn_q.weight", wideDim, wideDim, nil}, tensor{p + "attn_k.weight", kv, wideDim, nil},
			tensor{p + "attn_v.weight", kv, wideDim, nil}, tensor{p + "attn_output.weight", wideDim, wideDim, nil},
			tensor{p + "ffn_gate.weight", wideHidden, wideDim, nil}, tensor{p + "ffn_up.weight", wideHidden, wideDim, nil},
			tensor{p + "ffn_down.weight", wideDim, wideHidden, nil})
	}
	for _, t := range ts {
		if err := add(t.name, t.rows, t.cols, t.vals); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// wideFile is the wider model written as typ ("F32", "Q8_0", "Q4_K_M") by
// the engine, whose quantisers give llama-quantize's bytes
// (docs/ENGINE.md); tensorDigest compares the two files' tensors.
func wideFile(t testing.TB, typ string) ([]byte, *engine.Model) {
	t.Helper()
	f32 := wideGGUF(t)
	m, err := engine.LoadGGUF(f32)
	if err != nil {
		t.Fatal(err)
	}
	if typ == "F32" {
		return f32, m
	}
	var b bytes.Buffer
	switch typ {
	case "Q8_0":
		err = m.WriteGGUF(&b, gguf.Q8_0)
	case "F16":
		err = m.WriteGGUF(&b, gguf.F16)
	default:
		err = m.WriteGGUFMix(&b, typ)
	}
	if err != nil {
		t.Fatal(err)
	}
	q, err := engine.LoadGGUF(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), q
}

// tensorDigest is the SHA-256 of a GGUF file's tensors (name, type, shape,
// bytes, in name order as written): equal for two files with the same
// weights whatever their metadata, as the engine's and llama-quantize's.
func tensorDigest(t testing.TB, data []byte) string {
	t.Helper()
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]gguf.TensorInfo{}
	var names []string
	for _, ti := range f.Tensors {
		byName[ti.Name] = ti
		names = append(names, ti.Name)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		ti := byName[n]
		h.Write([]byte(n))
		h.Write([]byte(ti.Type.String()))
		for _, d := range ti.Dims {
			h.Write(binary.LittleEndian.AppendUint64(nil, d))
		}
		h.Write(f.TensorData(ti))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestWideModelIsPeaked: the wider model loads, its predictions are peaked
// (the mean probability of its likeliest token is high, unlike a random
// model's) and follow tolstoy-1m's: it is a model with structure.
func TestWideModelIsPeaked(t *testing.T) {
	_, m := wideFile(t, "F32")
	base, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	ctx := context.Background()
	seq := base.Tokenizer().Encode("Pierre said to Natasha that the old prince would not come to Moscow", true)
	top := func(m *engine.Model) (ids []int, probs []float64) {
		s, err := m.NewSession(engine.SessionOptions{Threads: 2, MaxPos: len(seq)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.PrefillLogits(ctx, seq, 0, func(pos int, l []float32) {
			best := slices.Index(l, slices.Max(l))
			var z float64
			for _, v := range l {
				z += math.Exp(float64(v - l[best]))
			}
			ids, probs = append(ids, best), append(probs, 1/z)
		}); err != nil {
			t.Fatal(err)
		}
		return ids, probs
	}
	wIDs, wProbs := top(m)
	var mean float64
	for _, p := range wProbs {
		mean += p / float64(len(wProbs))
	}
	// The bigram model's choice after each token, tolstoy-1m's after BOS
	// and that token.
	var same int
	for i, id := range wIDs {
		s, _ := base.NewSession(engine.SessionOptions{Threads: 1, MaxPos: 2})
		var want int
		_ = s.PrefillLogits(ctx, []int{base.Tokenizer().BOS(), seq[i]}, 0, func(pos int, l []float32) {
			if pos == 1 {
				want = slices.Index(l, slices.Max(l))
			}
		})
		s.Close()
		if id == want {
			same++
		}
	}
	t.Logf("wide model: dim %d, %d layers, %s; likeliest token's probability %.2f on average over %d positions; %d/%d choices tolstoy-1m's bigram's",
		m.Config().Dim, m.Config().Layers, m.TensorType(), mean, len(wProbs), same, len(wIDs))
	if mean < 0.1 || same < len(wIDs)*3/4 {
		t.Fatalf("not peaked or not tolstoy-1m's bigram: mean top probability %.2f, %d/%d choices", mean, same, len(wIDs))
	}
}

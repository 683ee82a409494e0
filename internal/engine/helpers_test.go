package engine_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
	"github.com/aitbc/aitbc/internal/engine/tokenizer"
	"github.com/aitbc/aitbc/models"
)

// tinyWeights is a small random model used to test code paths tolstoy-1m
// does not exercise (grouped-query attention, a separate classifier), to
// fuzz the loaders cheaply, and to check the engine against a direct
// transcription of run.c.
type tinyWeights struct {
	dim, hidden, layers, heads, kvHeads, vocab, seqLen int
	shared                                             bool
	emb, attnNorm, wq, wk, wv, wo, ffnNorm, w1, w2, w3 []float32
	final, cls                                         []float32
	// Optional: biases of wq, wk, wv (layers×dim, layers×kv_dim; nil for
	// none), NEOX rotary layout, linear RoPE scale (0 for none) and
	// per-frequency factors (nil for none).
	bq, bk, bv  []float32
	neox        bool
	ropeScale   float32
	ropeFactors []float32
	// actRound, when set, replaces each matrix product's input vector by
	// the values its 8-bit quantised form stands for, as the engine (and
	// llama.cpp) multiply quantised matrices with quantised activations.
	actRound func(x []float32) []float32
}

func newTiny(shared bool, seed uint64) *tinyWeights {
	return newRandomModel(&tinyWeights{dim: 16, hidden: 40, layers: 2, heads: 4, kvHeads: 2, vocab: 262, seqLen: 24, shared: shared}, seed)
}

// newMicro is a model of a few hundred bytes (vocabulary 6, matching
// microTokenizer) for fuzzing: the Go fuzzer slows to a crawl on inputs
// of tens of kilobytes.
func newMicro(shared bool, seed uint64) *tinyWeights {
	return newRandomModel(&tinyWeights{dim: 4, hidden: 6, layers: 1, heads: 2, kvHeads: 1, vocab: 6, seqLen: 4, shared: shared}, seed)
}

func newRandomModel(w *tinyWeights, seed uint64) *tinyWeights {
	r := rand.New(rand.NewPCG(seed, 1))
	kv := w.dim / w.heads * w.kvHeads
	rnd := func(n int, scale float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64()) * scale
		}
		return v
	}
	ones := func(n int) []float32 {
		v := rnd(n, 0.1)
		for i := range v {
			v[i] += 1
		}
		return v
	}
	w.emb = rnd(w.vocab*w.dim, 1)
	w.attnNorm = ones(w.layers * w.dim)
	w.wq = rnd(w.layers*w.dim*w.dim, 0.3)
	w.wk = rnd(w.layers*kv*w.dim, 0.3)
	w.wv = rnd(w.layers*kv*w.dim, 0.3)
	w.wo = rnd(w.layers*w.dim*w.dim, 0.3)
	w.ffnNorm = ones(w.layers * w.dim)
	w.w1 = rnd(w.layers*w.hidden*w.dim, 0.3)
	w.w2 = rnd(w.layers*w.dim*w.hidden, 0.3)
	w.w3 = rnd(w.layers*w.hidden*w.dim, 0.3)
	w.final = ones(w.dim)
	w.cls = w.emb
	if !w.shared {
		w.cls = rnd(w.vocab*w.dim, 0.5)
	}
	return w
}

func putFloats(b *bytes.Buffer, vs ...[]float32) {
	for _, v := range vs {
		for _, x := range v {
			binary.Write(b, binary.LittleEndian, x)
		}
	}
}

func putInts(b *bytes.Buffer, vs ...int) {
	for _, v := range vs {
		binary.Write(b, binary.LittleEndian, int32(v))
	}
}

// v0 encodes the weights as a legacy llama2.c checkpoint.
func (w *tinyWeights) v0() []byte {
	var b bytes.Buffer
	vocab := w.vocab
	if !w.shared {
		vocab = -vocab
	}
	putInts(&b, w.dim, w.hidden, w.layers, w.heads, w.kvHeads, vocab, w.seqLen)
	putFloats(&b, w.emb, w.attnNorm, w.wq, w.wk, w.wv, w.wo, w.ffnNorm, w.w1, w.w2, w.w3, w.final)
	putFloats(&b, make([]float32, w.seqLen*w.dim/w.heads)) // the unused RoPE tables
	if !w.shared {
		putFloats(&b, w.cls)
	}
	return b.Bytes()
}

// v1 encodes the weights as a version 1 ("ak42") llama2.c checkpoint.
func (w *tinyWeights) v1() []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint32(0x616b3432))
	putInts(&b, 1, w.dim, w.hidden, w.layers, w.heads, w.kvHeads, w.vocab, w.seqLen)
	if w.shared {
		b.WriteByte(1)
	} else {
		b.WriteByte(0)
	}
	b.Write(make([]byte, 256-b.Len()))
	putFloats(&b, w.attnNorm, w.ffnNorm, w.final, w.emb, w.wq, w.wk, w.wv, w.wo, w.w1, w.w2, w.w3)
	if !w.shared {
		putFloats(&b, w.cls)
	}
	return b.Bytes()
}

// tinyTokenizer has <unk>, BOS, EOS, the 256 byte tokens and a few pieces:
// vocab 262 to match tinyWeights.
func tinyTokenizer() []byte {
	pieces := []string{"<unk>", "\n<s>\n", "\n</s>\n"}
	kinds := []tokenizer.Kind{tokenizer.Unknown, tokenizer.Control, tokenizer.Control}
	for b := range 256 {
		pieces = append(pieces, "<0x"+string("0123456789ABCDEF"[b>>4])+string("0123456789ABCDEF"[b&15])+">")
		kinds = append(kinds, tokenizer.Byte)
	}
	pieces = append(pieces, " ", "a", " a")
	kinds = append(kinds, tokenizer.Normal, tokenizer.Normal, tokenizer.Normal)
	scores := make([]float32, len(pieces))
	scores[len(scores)-1] = -1
	tok, err := tokenizer.New(pieces, scores, kinds, tokenizer.Options{BOS: 1, EOS: 2, AddSpacePrefix: true})
	if err != nil {
		panic(err)
	}
	return tok.MarshalLlama2C()
}

// microTokenizer is a six-token vocabulary for newMicro.
func microTokenizer() []byte {
	tok, err := tokenizer.New([]string{"<unk>", "<s>", "</s>", " ", "a", " a"}, []float32{0, 0, 0, -1, -2, -3},
		[]tokenizer.Kind{tokenizer.Unknown, tokenizer.Control, tokenizer.Control, tokenizer.Normal, tokenizer.Normal, tokenizer.Normal},
		tokenizer.Options{BOS: 1, EOS: 2, AddSpacePrefix: true})
	if err != nil {
		panic(err)
	}
	return tok.MarshalLlama2C()
}

// forward is a direct transcription of run.c's forward pass (llama2.c,
// master), kept deliberately naive: one loop per formula, float32
// throughout, expf/sqrtf/powf/cosf/sinf as correctly rounded float32
// functions. The engine must agree with it bit for bit.
func (w *tinyWeights) forward(tokens []int) [][]float32 {
	dim, hid, hs := w.dim, w.hidden, w.dim/w.heads
	kvDim := hs * w.kvHeads
	kvMul := w.heads / w.kvHeads
	f32 := func(x float64) float32 { return float32(x) }
	matmul := func(out, x, m []float32, n, d int) {
		if w.actRound != nil {
			x = w.actRound(x[:n])
		}
		for i := 0; i < d; i++ {
			var val float32
			for j := 0; j < n; j++ {
				val += float32(m[i*n+j] * x[j])
			}
			out[i] = val
		}
	}
	rmsnorm := func(o, x, weight []float32) {
		var ss float32
		for j := range x {
			ss += float32(x[j] * x[j])
		}
		ss /= float32(len(x))
		ss += 1e-5
		ss = 1 / f32(math.Sqrt(float64(ss)))
		for j := range x {
			o[j] = weight[j] * float32(ss*x[j])
		}
	}
	softmax := func(x []float32) {
		m := x[0]
		for _, v := range x {
			m = max(m, v)
		}
		var sum float32
		for i := range x {
			x[i] = f32(math.Exp(float64(x[i] - m)))
			sum += x[i]
		}
		for i := range x {
			x[i] /= sum
		}
	}
	kc := make([]float32, w.layers*w.seqLen*kvDim)
	vc := make([]float32, w.layers*w.seqLen*kvDim)
	var out [][]float32
	for pos, token := range tokens {
		x := append([]float32(nil), w.emb[token*dim:(token+1)*dim]...)
		xb, xb2 := make([]float32, dim), make([]float32, dim)
		q := make([]float32, dim)
		hb, hb2 := make([]float32, hid), make([]float32, hid)
		for l := 0; l < w.layers; l++ {
			rmsnorm(xb, x, w.attnNorm[l*dim:])
			loff := l * w.seqLen * kvDim
			k := kc[loff+pos*kvDim : loff+(pos+1)*kvDim]
			v := vc[loff+pos*kvDim : loff+(pos+1)*kvDim]
			matmul(q, xb, w.wq[l*dim*dim:], dim, dim)
			matmul(k, xb, w.wk[l*dim*kvDim:], dim, kvDim)
			matmul(v, xb, w.wv[l*dim*kvDim:], dim, kvDim)
			if w.bq != nil {
				for i := range q {
					q[i] += w.bq[l*dim+i]
				}
				for i := range k {
					k[i] += w.bk[l*kvDim+i]
					v[i] += w.bv[l*kvDim+i]
				}
			}
			angle := func(headDim int) (float32, float32) {
				freq := 1 / f32(math.Pow(10000, float64(float32(headDim)/float32(hs))))
				val := float32(pos) * freq
				if w.ropeFactors != nil {
					val /= w.ropeFactors[headDim/2]
				}
				if w.ropeScale != 0 {
					val *= w.ropeScale
				}
				return f32(math.Cos(float64(val))), f32(math.Sin(float64(val)))
			}
			for i := 0; w.neox && i < dim; i += hs {
				for j := 0; j < hs/2; j++ {
					fcr, fci := angle(2 * j)
					for r, vec := range [][]float32{q, k} {
						if r == 1 && i >= kvDim {
							continue
						}
						v0, v1 := vec[i+j], vec[i+j+hs/2]
						vec[i+j] = float32(v0*fcr) - float32(v1*fci)
						vec[i+j+hs/2] = float32(v0*fci) + float32(v1*fcr)
					}
				}
			}
			for i := 0; !w.neox && i < dim; i += 2 {
				fcr, fci := angle(i % hs)
				rotn := 1
				if i < kvDim {
					rotn = 2
				}
				for r := 0; r < rotn; r++ {
					vec := q
					if r == 1 {
						vec = k
					}
					v0, v1 := vec[i], vec[i+1]
					vec[i] = float32(v0*fcr) - float32(v1*fci)
					vec[i+1] = float32(v0*fci) + float32(v1*fcr)
				}
			}
			for h := 0; h < w.heads; h++ {
				qh := q[h*hs : (h+1)*hs]
				att := make([]float32, pos+1)
				for t := 0; t <= pos; t++ {
					kt := kc[loff+t*kvDim+(h/kvMul)*hs:]
					var score float32
					for i := 0; i < hs; i++ {
						score += float32(qh[i] * kt[i])
					}
					score /= f32(math.Sqrt(float64(hs)))
					att[t] = score
				}
				softmax(att)
				xh := xb[h*hs : (h+1)*hs]
				clear(xh)
				for t := 0; t <= pos; t++ {
					vt := vc[loff+t*kvDim+(h/kvMul)*hs:]
					for i := 0; i < hs; i++ {
						xh[i] += float32(att[t] * vt[i])
					}
				}
			}
			matmul(xb2, xb, w.wo[l*dim*dim:], dim, dim)
			for i := range x {
				x[i] += xb2[i]
			}
			rmsnorm(xb, x, w.ffnNorm[l*dim:])
			matmul(hb, xb, w.w1[l*dim*hid:], dim, hid)
			matmul(hb2, xb, w.w3[l*dim*hid:], dim, hid)
			for i := range hb {
				val := hb[i]
				val *= 1 / (1 + f32(math.Exp(float64(-val))))
				val *= hb2[i]
				hb[i] = val
			}
			matmul(xb, hb, w.w2[l*dim*hid:], hid, dim)
			for i := range x {
				x[i] += xb[i]
			}
		}
		rmsnorm(x, x, w.final)
		logits := make([]float32, w.vocab)
		matmul(logits, x, w.cls, dim, w.vocab)
		out = append(out, logits)
	}
	return out
}

// tolstoyGGUF writes tolstoy-1m as GGUF with matrices of type typ.
func tolstoyGGUF(t testing.TB, typ gguf.TensorType) []byte {
	t.Helper()
	m := defaultModel(t)
	var b bytes.Buffer
	if err := m.WriteGGUF(&b, typ); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// loadTolstoyV0 loads the embedded checkpoint from the given bytes.
func loadTolstoyV0(b []byte) (*engine.Model, error) {
	return engine.LoadLlama2C(b, models.TolstoyTokenizer)
}

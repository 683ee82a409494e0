package engine

import "math"

// The element-wise operations of the forward pass, written to give the
// same float32 results as llama2.c's run.c compiled without fast-math:
// sums run sequentially, divisions stay divisions, and the libm float
// functions (expf, sqrtf, powf, cosf, sinf) are evaluated in float64 and
// rounded once to float32, which is their correctly rounded value.

// expf is exp rounded to float32.
func expf(x float32) float32 { return float32(math.Exp(float64(x))) }

// sqrtf is the square root rounded to float32 (exact: sqrt of a float32
// in float64 rounds to the correctly rounded float32 result).
func sqrtf(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// rmsnorm sets o = weight * (x / rms(x)), as run.c's rmsnorm.
func rmsnorm(o, x, weight []float32, eps float32) {
	x = x[:len(o)]
	weight = weight[:len(o)]
	var ss float32
	for _, v := range x {
		ss += float32(v * v)
	}
	ss /= float32(len(x))
	ss += eps
	ss = 1 / sqrtf(ss)
	for j := range o {
		o[j] = weight[j] * float32(ss*x[j])
	}
}

// softmax normalises x in place.
func softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	maxVal := x[0]
	for _, v := range x[1:] {
		if v > maxVal {
			maxVal = v
		}
	}
	var sum float32
	for i, v := range x {
		e := expf(v - maxVal)
		x[i] = e
		sum += e
	}
	for i := range x {
		x[i] /= sum
	}
}

// swiglu sets h[i] = silu(h[i]) * g[i] for the given index range.
func swiglu(h, g []float32) {
	g = g[:len(h)]
	for i, v := range h {
		v *= 1 / (1 + expf(-v))
		v *= g[i]
		h[i] = v
	}
}

// ropeFreqs returns run.c's per-pair rotary frequencies for a head:
// 1 / theta^(2k/headSize) computed in float32.
func ropeFreqs(headSize int, theta float32) []float32 {
	f := make([]float32, headSize/2)
	for k := range f {
		exp := float32(2*k) / float32(headSize)
		f[k] = 1 / float32(math.Pow(float64(theta), float64(exp)))
	}
	return f
}

// ropeTable fills cos and sin for position pos. factors (nil for none)
// divide each frequency's angle and scale (1 for none) multiplies all, as
// GGML's rope does with freq_factors and freq_scale.
func ropeTable(cos, sin, freqs, factors []float32, scale float32, pos int) {
	for k, f := range freqs {
		val := float32(pos) * f
		if factors != nil {
			val /= factors[k]
		}
		if scale != 1 {
			val *= scale
		}
		cos[k] = float32(math.Cos(float64(val)))
		sin[k] = float32(math.Sin(float64(val)))
	}
}

// rope rotates consecutive pairs (v[2k], v[2k+1]) of each head of v by the
// angles of the position: the interleaved ("normal") layout of llama2.c
// and Meta's LLaMA, which llama.cpp also uses for the llama architecture.
func rope(v, cos, sin []float32) {
	hs := 2 * len(cos)
	for h := 0; h+hs <= len(v); h += hs {
		head := v[h : h+hs : h+hs]
		for k := range cos {
			fcr, fci := cos[k], sin[k]
			v0, v1 := head[2*k], head[2*k+1]
			head[2*k] = float32(v0*fcr) - float32(v1*fci)
			head[2*k+1] = float32(v0*fci) + float32(v1*fcr)
		}
	}
}

// ropeNeox rotates the pairs (v[k], v[k+head/2]) of each head: GGML's
// NEOX layout, used by qwen2 and most architectures other than llama.
func ropeNeox(v, cos, sin []float32) {
	half := len(cos)
	for h := 0; h+2*half <= len(v); h += 2 * half {
		a := v[h : h+half : h+half]
		b := v[h+half : h+2*half : h+2*half]
		for k := range cos {
			fcr, fci := cos[k], sin[k]
			v0, v1 := a[k], b[k]
			a[k] = float32(v0*fcr) - float32(v1*fci)
			b[k] = float32(v0*fci) + float32(v1*fcr)
		}
	}
}

// addBias adds b to x when b is not nil.
func addBias(x, b []float32) {
	for i, v := range b {
		x[i] += v
	}
}

// argmax returns the index of the first largest value.
func argmax(x []float32) int {
	best, bestV := 0, x[0]
	for i, v := range x {
		if v > bestV {
			best, bestV = i, v
		}
	}
	return best
}

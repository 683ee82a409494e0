package train

import (
	"math"
	"math/bits"
)

// Every product below is wrapped in float64(...): the Go spec lets a
// compiler fuse x*y+z into one FMA instruction (arm64, ppc64 and s390x
// do), which rounds differently; an explicit conversion forbids the
// fusion, so the weights are the same bits on every architecture.

// net is one worker's scratch space for a forward and backward pass.
type net struct {
	acts   [][]float64 // acts[0] is the input; acts[l+1] layer l's output
	deltas [][]float64
}

func newNet(ls []Layer) *net {
	n := &net{acts: make([][]float64, len(ls)+1), deltas: make([][]float64, len(ls))}
	n.acts[0] = make([]float64, ls[0].In)
	for i, l := range ls {
		n.acts[i+1] = make([]float64, l.Out)
		n.deltas[i] = make([]float64, l.Out)
	}
	return n
}

// forward returns the class probabilities for x (the returned slice is
// scratch space, valid until the next call).
func (n *net) forward(ls []Layer, x []float64) []float64 {
	copy(n.acts[0], x)
	for li, l := range ls {
		in, out := n.acts[li], n.acts[li+1]
		for o := range l.Out {
			s := l.B[o]
			row := l.W[o*l.In : (o+1)*l.In]
			for i, w := range row {
				s += float64(w * in[i])
			}
			if li < len(ls)-1 && s < 0 { // ReLU between layers
				s = 0
			}
			out[o] = s
		}
	}
	softmax(n.acts[len(ls)])
	return n.acts[len(ls)]
}

// backward adds the gradient of the cross-entropy loss of (x, y) to g and
// returns the loss.
func (n *net) backward(ls []Layer, g []Layer, x []float64, y int) float64 {
	p := n.forward(ls, x)
	loss := -math.Log(max(p[y], 1e-300))
	last := len(ls) - 1
	d := n.deltas[last]
	copy(d, p)
	d[y] -= 1
	for li := last; li >= 0; li-- {
		l, gl, in := ls[li], g[li], n.acts[li]
		d := n.deltas[li]
		for o := range l.Out {
			gl.B[o] += d[o]
			row := gl.W[o*l.In : (o+1)*l.In]
			for i := range row {
				row[i] += float64(d[o] * in[i])
			}
		}
		if li == 0 {
			break
		}
		prev := n.deltas[li-1]
		for i := range l.In {
			var s float64
			for o := range l.Out {
				s += float64(l.W[o*l.In+i] * d[o])
			}
			if in[i] <= 0 { // ReLU's derivative
				s = 0
			}
			prev[i] = s
		}
	}
	return loss
}

func softmax(z []float64) {
	m := z[0]
	for _, v := range z {
		m = max(m, v)
	}
	var sum float64
	for i, v := range z {
		z[i] = exp(v - m)
		sum += z[i]
	}
	for i := range z {
		z[i] /= sum
	}
}

// exp is e**x for x <= 0, computed in Go alone: math.Exp has assembly
// versions on some architectures whose last bit may differ. The algorithm
// is the one of Go's portable math.Exp (FreeBSD's e_exp.c).
func exp(x float64) float64 {
	const (
		ln2Hi     = 6.93147180369123816490e-01
		ln2Lo     = 1.90821492927058770002e-10
		log2e     = 1.44269504088896338700e+00
		underflow = -7.45133219101941108420e+02
		nearZero  = 1.0 / (1 << 28)
		p1        = 1.66666666666666657415e-01
		p2        = -2.77777777770155933842e-03
		p3        = 6.61375632143793436117e-05
		p4        = -1.65339022054652515390e-06
		p5        = 4.13813679705723846039e-08
	)
	switch {
	case math.IsNaN(x):
		return x
	case x < underflow:
		return 0
	case -nearZero < x && x < nearZero:
		return 1 + x
	}
	k := int(float64(log2e*x) - 0.5)
	if x > 0 {
		k = int(float64(log2e*x) + 0.5)
	}
	hi := x - float64(float64(k)*ln2Hi)
	lo := float64(float64(k) * ln2Lo)
	r := hi - lo
	t := float64(r * r)
	poly := p1 + float64(t*(p2+float64(t*(p3+float64(t*(p4+float64(t*p5)))))))
	c := r - float64(t*poly)
	y := 1 - ((lo - float64(r*c)/(2-c)) - hi)
	return math.Ldexp(y, k)
}

// rand64 is SplitMix64: a tiny generator whose sequence is fixed by its
// seed forever (math/rand's may change between Go releases).
type rand64 struct{ s uint64 }

func splitmix(seed uint64) rand64 { return rand64{seed} }

func (r *rand64) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float is uniform in [0, 1).
func (r *rand64) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// intn is uniform in [0, n) (Lemire's method without the rare retry: the
// bias is below 2^-40 for the sizes used here, and it is deterministic).
func (r *rand64) intn(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

func (r *rand64) shuffle(xs []int) {
	for i := len(xs) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		xs[i], xs[j] = xs[j], xs[i]
	}
}

func (r *rand64) perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r.shuffle(p)
	return p
}

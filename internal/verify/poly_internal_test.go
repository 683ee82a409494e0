package verify

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// referenceInterpolate is the textbook Lagrange interpolation (every step
// reduced, one inverse per point): what interpolate must equal.
func referenceInterpolate(xs, ys []uint32) []uint32 {
	k := len(xs)
	coef := make([]uint32, k)
	for i, xi := range xs {
		basis := []uint32{1} // Π_{j≠i} (x − x_j), lowest degree first
		denom := uint32(1)
		for j, xj := range xs {
			if j == i {
				continue
			}
			next := make([]uint32, len(basis)+1)
			for t, b := range basis {
				next[t+1] = addmod(next[t+1], b)
				next[t] = submod(next[t], mulmod(b, xj))
			}
			basis = next
			denom = mulmod(denom, submod(xi, xj))
		}
		w := mulmod(ys[i], invmod(denom))
		for t, b := range basis {
			coef[t] = addmod(coef[t], mulmod(w, b))
		}
	}
	return coef
}

func TestInterpolateMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, k := range []int{1, 2, 3, 4, 5, 7, 64, 127, 128, 130} {
		for range 3 {
			xs, ys := make([]uint32, k), make([]uint32, k)
			seen := map[uint32]bool{}
			for i := range xs {
				for {
					x := uint32(r.IntN(fieldP))
					if !seen[x] {
						seen[x], xs[i] = true, x
						break
					}
				}
				ys[i] = uint32(r.IntN(fieldP))
			}
			// The extremes of the field as well: 0 and p−1 as points and values.
			if k >= 4 && !seen[0] && !seen[fieldP-1] {
				xs[0], xs[1], ys[2], ys[3] = 0, fieldP-1, fieldP-1, 0
			}
			got, want := interpolate(xs, ys), referenceInterpolate(xs, ys)
			if !slices.Equal(got, want) {
				t.Fatalf("k=%d: coefficients differ from the reference", k)
			}
			for i, x := range xs {
				if y := evalPoly(got, x); y != ys[i] {
					t.Fatalf("k=%d: P(%d) = %d, want %d", k, x, y, ys[i])
				}
			}
		}
	}
}

// referenceTopK sorts every index: what topK must return.
func referenceTopK(v []float32, k int) []int {
	mag := func(i int) float64 {
		a := math.Abs(float64(v[i]))
		if a != a {
			return -1
		}
		return a
	}
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		ma, mb := mag(a), mag(b)
		switch {
		case ma > mb:
			return -1
		case ma < mb:
			return 1
		}
		return 0
	})
	return idx[:min(k, len(v))]
}

func TestTopKMatchesSorting(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	for _, n := range []int{1, 5, 128, 129, 1000, 4096} {
		v := make([]float32, n)
		for i := range v {
			switch r.IntN(10) {
			case 0:
				v[i] = float32(r.IntN(3) - 1) // ties, and signed zeros below
			case 1:
				v[i] = -v[max(i-1, 0)] // equal magnitudes, opposite signs
			case 2:
				v[i] = []float32{nan, inf, -inf, float32(math.Copysign(0, -1))}[r.IntN(4)]
			default:
				v[i] = float32(r.NormFloat64())
			}
		}
		for _, k := range []int{1, 3, 128} {
			if got, want := topK(v, k), referenceTopK(v, k); !slices.Equal(got, want) {
				t.Fatalf("n=%d k=%d: %v, want %v", n, k, got[:min(8, len(got))], want[:min(8, len(want))])
			}
		}
	}
}

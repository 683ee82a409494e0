package verify

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// The commitment to one chunk of hidden states is TOPLOC's (arXiv
// 2501.16007): the k largest activations by magnitude, each reduced to
// bfloat16, are the points (index mod m, bf16 bits) of the polynomial of
// degree < k over GF(65497) that passes through them, and the commitment is
// m and the polynomial's k coefficients: 2 + 2k bytes (258 for k = 128).
// A verifier who recomputes the chunk finds its own top k indices and
// evaluates the polynomial there: an honest recomputation gets back
// (nearly) the values it computed; a different model, input or precision
// moves the top k set and the values, and the polynomial evaluated at the
// wrong points gives field noise. The index set itself costs no bytes.

// fieldP is the prime of the field the polynomial lives in (TOPLOC's).
// Every finite bfloat16 bit pattern (< 0xFF80) is below it.
const fieldP = 65497

// minModulus bounds the search for a modulus that keeps the top k indices
// distinct (TOPLOC searches the same range).
const minModulus = 1 << 15

// ChunkCommitment is the encoded commitment to one chunk: a big-endian
// uint16 modulus m, then k big-endian uint16 coefficients, lowest degree
// first.
type ChunkCommitment []byte

func mulmod(a, b uint32) uint32 { return uint32(uint64(a) * uint64(b) % fieldP) }

func addmod(a, b uint32) uint32 { return (a + b) % fieldP }

func submod(a, b uint32) uint32 { return (a + fieldP - b) % fieldP }

// invmod is a^(p-2) mod p (Fermat); a must not be 0.
func invmod(a uint32) uint32 {
	r, e := uint32(1), uint32(fieldP-2)
	for e > 0 {
		if e&1 == 1 {
			r = mulmod(r, a)
		}
		a = mulmod(a, a)
		e >>= 1
	}
	return r
}

// interpolate returns the coefficients (lowest degree first) of the
// polynomial of degree < len(xs) through (xs[i], ys[i]); xs are distinct
// field elements. O(k²) by Lagrange: P = Σ_i w_i·M(x)/(x − x_i) with
// M(x) = Π(x − x_i) and w_i = y_i / M'(x_i).
//
// The field is exact, so any order of operations gives the same
// coefficients (TestInterpolateMatchesReference holds it to the textbook
// form); this one is arranged for speed, since it is most of a
// commitment's cost. Every product of two reduced elements plus one more
// is below 2^32 (p² + p < 2^32), so the arithmetic is uint32 with one
// reduction per step; the k serial chains (Horner for M'(x_i), synthetic
// division for M/(x − x_i)) run four at a time so that the CPU overlaps
// their latencies; the k inverses take one exponentiation (Montgomery's
// batch inversion) instead of k; and each quotient's coefficients are
// added into the result as the division produces them, never stored.
func interpolate(xs, ys []uint32) []uint32 {
	k := len(xs)
	m := make([]uint32, k+1) // M, lowest degree first
	m[0] = 1
	for i, xi := range xs {
		// m ← m·(x − xi); only the i+2 lowest coefficients can be non-zero.
		for j := i + 1; j >= 1; j-- {
			m[j] = submod(m[j-1], m[j]*xi%fieldP)
		}
		m[0] = submod(0, m[0]*xi%fieldP)
	}
	// d_i = M'(x_i), by Horner over M' = Σ j·m_j x^(j-1).
	dm := make([]uint32, k)
	for j := range dm {
		dm[j] = uint32(j+1) % fieldP * m[j+1] % fieldP
	}
	d := make([]uint32, k)
	i := 0
	for ; i+4 <= k; i += 4 {
		x0, x1, x2, x3 := xs[i], xs[i+1], xs[i+2], xs[i+3]
		var y0, y1, y2, y3 uint32
		for j := k - 1; j >= 0; j-- {
			c := dm[j]
			y0 = (y0*x0 + c) % fieldP
			y1 = (y1*x1 + c) % fieldP
			y2 = (y2*x2 + c) % fieldP
			y3 = (y3*x3 + c) % fieldP
		}
		d[i], d[i+1], d[i+2], d[i+3] = y0, y1, y2, y3
	}
	for ; i < k; i++ {
		var y uint32
		for j := k - 1; j >= 0; j-- {
			y = (y*xs[i] + dm[j]) % fieldP
		}
		d[i] = y
	}
	w := batchInvert(d)
	for i, y := range ys {
		w[i] = y % fieldP * w[i] % fieldP
	}
	// Σ_i w_i·q_i with q_i = M/(x − x_i): q_i[k-1] = m[k], q_i[j-1] =
	// m[j] + q_i[j]·x_i. Each product w·q is below 2^32 and at most
	// MaxTopK of them are added per coefficient, so acc does not overflow.
	acc := make([]uint64, k)
	i = 0
	for ; i+4 <= k; i += 4 {
		x0, x1, x2, x3 := xs[i], xs[i+1], xs[i+2], xs[i+3]
		w0, w1, w2, w3 := uint64(w[i]), uint64(w[i+1]), uint64(w[i+2]), uint64(w[i+3])
		q0, q1, q2, q3 := m[k], m[k], m[k], m[k]
		for j := k - 1; ; j-- {
			acc[j] += w0*uint64(q0) + w1*uint64(q1) + w2*uint64(q2) + w3*uint64(q3)
			if j == 0 {
				break
			}
			c := m[j]
			q0 = (q0*x0 + c) % fieldP
			q1 = (q1*x1 + c) % fieldP
			q2 = (q2*x2 + c) % fieldP
			q3 = (q3*x3 + c) % fieldP
		}
	}
	for ; i < k; i++ {
		wi, q := uint64(w[i]), m[k]
		for j := k - 1; ; j-- {
			acc[j] += wi * uint64(q)
			if j == 0 {
				break
			}
			q = (q*xs[i] + m[j]) % fieldP
		}
	}
	coef := make([]uint32, k)
	for j, a := range acc {
		coef[j] = uint32(a % fieldP)
	}
	return coef
}

// batchInvert returns the inverses of the non-zero elements v with one
// exponentiation: prefix products forward, then one inverse unwound
// backwards (Montgomery's trick).
func batchInvert(v []uint32) []uint32 {
	out := make([]uint32, len(v))
	acc := uint32(1)
	for i, a := range v {
		out[i] = acc // product of v[:i]
		acc = mulmod(acc, a)
	}
	inv := invmod(acc)
	for i := len(v) - 1; i >= 0; i-- {
		out[i] = mulmod(out[i], inv) // 1/v[i]
		inv = mulmod(inv, v[i])      // 1/product of v[:i]
	}
	return out
}

// evalPoly evaluates coefficients c (lowest degree first) at x by Horner.
func evalPoly(c []uint32, x uint32) uint32 {
	var y uint32
	for j := len(c) - 1; j >= 0; j-- {
		y = (y*x + c[j]) % fieldP
	}
	return y
}

// bf16 rounds f to bfloat16 (nearest, ties to even) and returns its bits.
func bf16(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f {
		return 0x7FC0
	}
	b += 0x7FFF + (b>>16)&1
	return uint16(b >> 16)
}

// topK returns the indices of the k entries of v largest in magnitude,
// ties to the lower index, in that order. NaNs rank last.
//
// Magnitudes are compared as integers: for non-NaN float32s the order of
// |v| is the order of the bits with the sign cleared, and that plus one
// leaves 0 for NaN, below every number. A candidate no larger than the
// weakest of the k kept (the heap's root) is skipped with one comparison,
// which is nearly every entry of a wide chunk.
func topK(v []float32, k int) []int {
	key := func(i int) uint32 {
		b := math.Float32bits(v[i]) &^ (1 << 31)
		if b > 0x7F800000 {
			return 0 // NaN
		}
		return b + 1
	}
	// before reports whether index a ranks before index b.
	before := func(a, b int) bool {
		ka, kb := key(a), key(b)
		return ka > kb || (ka == kb && a < b)
	}
	k = min(k, len(v))
	// A min-heap of the best k seen so far: its root is the weakest.
	h := make([]int, 0, k)
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			w := l
			if r := l + 1; r < len(h) && before(h[l], h[r]) {
				w = r
			}
			if !before(h[i], h[w]) {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	for i := range k {
		h = append(h, i)
		for j := len(h) - 1; j > 0; {
			p := (j - 1) / 2
			if !before(h[p], h[j]) {
				break
			}
			h[p], h[j] = h[j], h[p]
			j = p
		}
	}
	// A later index with the root's magnitude ranks after it: only a
	// strictly larger key displaces the root.
	weakest := uint32(0)
	if k > 0 {
		weakest = key(h[0])
	}
	for i := k; i < len(v); i++ {
		if key(i) <= weakest {
			continue
		}
		h[0] = i
		down(0)
		weakest = key(h[0])
	}
	slices.SortFunc(h, func(a, b int) int {
		if before(a, b) {
			return -1
		}
		return 1
	})
	return h
}

// injectiveModulus is the largest m in (2^15, 65497] under which the
// indices stay distinct.
func injectiveModulus(idx []int) (uint32, error) {
	seen := make(map[uint32]struct{}, len(idx))
	for m := uint32(fieldP); m > minModulus; m-- {
		clear(seen)
		ok := true
		for _, i := range idx {
			r := uint32(i) % m
			if _, dup := seen[r]; dup {
				ok = false
				break
			}
			seen[r] = struct{}{}
		}
		if ok {
			return m, nil
		}
	}
	return 0, fmt.Errorf("%w: no modulus keeps %d indices distinct", ErrCommitment, len(idx))
}

// CommitChunk commits to the activations of one chunk (the hidden states
// of its tokens, concatenated) with the top k of them.
func CommitChunk(acts []float32, k int) (ChunkCommitment, error) {
	if k <= 0 || k > MaxTopK || len(acts) < k {
		return nil, fmt.Errorf("%w: top %d of %d activations", ErrCommitment, k, len(acts))
	}
	idx := topK(acts, k)
	m, err := injectiveModulus(idx)
	if err != nil {
		return nil, err
	}
	xs, ys := make([]uint32, k), make([]uint32, k)
	for j, i := range idx {
		xs[j] = uint32(i) % m
		ys[j] = uint32(bf16(acts[i]))
	}
	coef := interpolate(xs, ys)
	out := make(ChunkCommitment, 2+2*k)
	binary.BigEndian.PutUint16(out, uint16(m))
	for j, c := range coef {
		binary.BigEndian.PutUint16(out[2+2*j:], uint16(c))
	}
	return out, nil
}

// decode splits a commitment into its modulus and coefficients.
func (c ChunkCommitment) decode() (uint32, []uint32, error) {
	if len(c) < 4 || len(c)%2 != 0 || (len(c)-2)/2 > MaxTopK {
		return 0, nil, fmt.Errorf("%w: %d bytes", ErrCommitment, len(c))
	}
	m := uint32(binary.BigEndian.Uint16(c))
	if m <= minModulus || m > fieldP {
		return 0, nil, fmt.Errorf("%w: modulus %d", ErrCommitment, m)
	}
	coef := make([]uint32, (len(c)-2)/2)
	for j := range coef {
		v := uint32(binary.BigEndian.Uint16(c[2+2*j:]))
		if v >= fieldP {
			return 0, nil, fmt.Errorf("%w: coefficient %d out of the field", ErrCommitment, v)
		}
		coef[j] = v
	}
	return m, coef, nil
}

// ChunkResult compares a commitment with recomputed activations: of the
// recomputation's top k, how many values disagree with the committed ones
// in sign or exponent, and the mean and median distance of the 7-bit
// mantissas of those that agree (TOPLOC's statistics), and the statistic
// the tolerance bounds (Mismatches), which is robust to what another
// engine's rounding does to a commitment.
//
// TOPLOC's exponent count cannot tell an honest engine that rounds its
// activations differently (llama.cpp's 8-bit activations on Q8_0 files)
// from a cheat: such an engine moves a few values across the top-k
// boundary, where the committed polynomial gives field noise at the
// index it did not commit, and a few across a bf16 exponent, where a
// value one step below a power of two becomes one a step above it. Both
// are honest near-misses (docs/VERIFICATION.md, "Across engines":
// every exponent mismatch of 1,200 llama.cpp jobs was one of the two), so
// Mismatches leaves out the indices whose recomputed magnitude is within
// BoundaryMargin of the k-th largest (Boundary counts them) and measures
// the others in bf16 steps, which run on across an exponent: a value
// mismatches when its sign differs or it is more than FarSteps steps from
// the committed one. A different model, prompt or output moves values by
// far more than that, at indices well inside the top k.
type ChunkResult struct {
	ExpMismatches int     `json:"exp_mismatches"`
	MantMean      float64 `json:"mant_err_mean"`
	MantMedian    float64 `json:"mant_err_median"`
	// Mismatches counts the values off the boundary whose sign differs
	// from the committed value or that are more than FarSteps bf16 steps
	// from it.
	Mismatches int `json:"mismatches"`
	// Boundary counts the top-k indices within BoundaryMargin of the k-th
	// magnitude, left out of Mismatches.
	Boundary int `json:"boundary"`
}

// BoundaryMargin is how close (relatively) to the k-th largest magnitude a
// recomputed value may be and still be left out of Mismatches: another
// engine may have ranked its neighbour in instead. llama.cpp's Q8_0 runs
// (1,200 jobs) moved values across the boundary from at most 3.1% above it.
const BoundaryMargin = 0.05

// FarSteps is how many bf16 steps (units in the last place, 1/128 of a
// power of two) a recomputed value may be from the committed one without
// counting as a mismatch. llama.cpp's Q8_0 runs (1,200 jobs) were at most
// 8 steps off away from the boundary; field noise lands within 16 steps
// of a value once in about 2,000.
const FarSteps = 16

// CheckChunk evaluates commitment c at the top k of the recomputed acts.
func CheckChunk(c ChunkCommitment, acts []float32) (ChunkResult, error) {
	m, coef, err := c.decode()
	if err != nil {
		return ChunkResult{}, err
	}
	k := len(coef)
	if len(acts) < k {
		return ChunkResult{}, fmt.Errorf("%w: top %d of %d activations", ErrCommitment, k, len(acts))
	}
	var res ChunkResult
	var errs []float64
	idx := topK(acts, k)
	edge := math.Abs(float64(acts[idx[len(idx)-1]])) * (1 + BoundaryMargin)
	for _, i := range idx {
		claimed := evalPoly(coef, uint32(i)%m)
		mine := uint32(bf16(acts[i]))
		if math.Abs(float64(acts[i])) < edge {
			res.Boundary++
		} else if claimed>>15 != mine>>15 || max(claimed, mine)-min(claimed, mine) > FarSteps {
			// Within one sign, the order of bf16 bit patterns is the order
			// of magnitudes, so their difference counts steps across
			// exponents. Field noise may exceed 0xFFFF's patterns: far.
			res.Mismatches++
		}
		if claimed>>7 != mine>>7 {
			res.ExpMismatches++
			continue
		}
		errs = append(errs, math.Abs(float64(claimed&0x7F)-float64(mine&0x7F)))
	}
	if len(errs) == 0 {
		res.MantMean, res.MantMedian = 128, 128 // worse than any real distance (7-bit mantissas)
		return res, nil
	}
	var sum float64
	for _, e := range errs {
		sum += e
	}
	res.MantMean = sum / float64(len(errs))
	slices.Sort(errs)
	if n := len(errs); n%2 == 1 {
		res.MantMedian = errs[n/2]
	} else {
		res.MantMedian = (errs[n/2-1] + errs[n/2]) / 2
	}
	return res, nil
}

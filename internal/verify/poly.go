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
// field elements. O(k²): M(x) = Π(x − xi), and each Lagrange basis
// polynomial is M(x)/(x − xi) scaled by its value at xi.
func interpolate(xs, ys []uint32) []uint32 {
	k := len(xs)
	m := make([]uint32, k+1) // M, lowest degree first
	m[0] = 1
	for _, xi := range xs {
		// m ← m·(x − xi)
		for j := k; j >= 1; j-- {
			m[j] = submod(m[j-1], mulmod(m[j], xi))
		}
		m[0] = submod(0, mulmod(m[0], xi))
	}
	// Each product below is < 2^32, so up to 2^32 of them sum in a uint64
	// before one reduction: the coefficients are accumulated unreduced.
	acc := make([]uint64, k)
	q := make([]uint32, k)
	for i, xi := range xs {
		// q = M / (x − xi) by synthetic division from the top.
		q[k-1] = m[k]
		for j := k - 1; j >= 1; j-- {
			q[j-1] = uint32((uint64(m[j]) + uint64(q[j])*uint64(xi)) % fieldP)
		}
		w := uint64(mulmod(ys[i], invmod(evalPoly(q, xi))))
		for j, qj := range q {
			acc[j] += w * uint64(qj)
		}
	}
	coef := make([]uint32, k)
	for j, a := range acc {
		coef[j] = uint32(a % fieldP)
	}
	return coef
}

// evalPoly evaluates coefficients c (lowest degree first) at x by Horner.
func evalPoly(c []uint32, x uint32) uint32 {
	var y uint64
	for j := len(c) - 1; j >= 0; j-- {
		y = (y*uint64(x) + uint64(c[j])) % fieldP
	}
	return uint32(y)
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
func topK(v []float32, k int) []int {
	mag := func(i int) float64 {
		a := math.Abs(float64(v[i]))
		if a != a {
			return -1
		}
		return a
	}
	// before reports whether index a ranks before index b.
	before := func(a, b int) bool {
		ma, mb := mag(a), mag(b)
		return ma > mb || (ma == mb && a < b)
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
	for i := range v {
		if len(h) < k {
			h = append(h, i)
			for j := len(h) - 1; j > 0; {
				p := (j - 1) / 2
				if !before(h[p], h[j]) {
					break
				}
				h[p], h[j] = h[j], h[p]
				j = p
			}
			continue
		}
		if before(i, h[0]) {
			h[0] = i
			down(0)
		}
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
// mantissas of those that agree (TOPLOC's statistics).
type ChunkResult struct {
	ExpMismatches int     `json:"exp_mismatches"`
	MantMean      float64 `json:"mant_err_mean"`
	MantMedian    float64 `json:"mant_err_median"`
}

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
	for _, i := range topK(acts, k) {
		claimed := evalPoly(coef, uint32(i)%m)
		mine := uint32(bf16(acts[i]))
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

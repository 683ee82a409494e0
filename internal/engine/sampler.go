package engine

import (
	"fmt"
	"math"
	"slices"
)

// DefaultSeed replaces a zero seed: the xorshift generator's state must
// not be zero.
const DefaultSeed uint64 = 0x9E3779B97F4A7C15

// Rng is llama2.c's xorshift* generator. Its stream is defined here, not by
// a library, so a seed gives the same tokens on every machine and release.
type Rng struct{ state uint64 }

// NewRng returns a generator seeded with seed (DefaultSeed when zero).
func NewRng(seed uint64) *Rng {
	if seed == 0 {
		seed = DefaultSeed
	}
	return &Rng{state: seed}
}

// Uint32 returns the next 32 random bits (run.c's random_u32).
func (r *Rng) Uint32() uint32 {
	r.state ^= r.state >> 12
	r.state ^= r.state << 25
	r.state ^= r.state >> 27
	return uint32((r.state * 0x2545F4914F6CDD1D) >> 32)
}

// Float32 returns a uniform float32 in [0, 1) (run.c's random_f32).
func (r *Rng) Float32() float32 { return float32(r.Uint32()>>8) / 16777216.0 }

// SamplingParams are the sampling settings a generation ran with, after
// defaults: TopP 0 made 1, Seed 0 made DefaultSeed, MaxTokens 0 made the
// context's room. With the logits they determine every token drawn.
type SamplingParams struct {
	Temperature float32
	TopP        float32
	Seed        uint64
	MaxTokens   int
}

// NormalizeSampling applies the sampler's defaults to a request's
// temperature, top-p and seed, as Generate does: top-p 0 means 1, seed 0
// means DefaultSeed.
func NormalizeSampling(temperature, topP float32, seed uint64) SamplingParams {
	if topP == 0 {
		topP = 1
	}
	if seed == 0 {
		seed = DefaultSeed
	}
	return SamplingParams{Temperature: temperature, TopP: topP, Seed: seed}
}

// Sampler picks the next token from logits: greedy (argmax) at temperature
// 0, otherwise from softmax(logits/temperature), restricted to the nucleus
// of probability top-p when top-p < 1. It mirrors run.c's sampler; ties in
// the top-p sort are broken by token id so the result never depends on the
// sort algorithm.
//
// The algorithm is frozen: a verifier replays it from the attested seed to
// check every output token and the stop of an engine job
// (internal/verify, docs/VERIFICATION.md), so a change to what it draws
// for given logits, temperature, top-p and seed (the generator, the
// order of the sums, the tie rules, one coin per token at a positive
// temperature) makes every earlier job fail verification. Every float32
// operation is written to round once, in order: a product is converted
// explicitly before it is added (Go may fuse a multiply-add on arm64 and
// other architectures, and an explicit conversion forbids it), and the
// softmax evaluates exp in float64 rounded once (ops.go).
type Sampler struct {
	temperature, topP float32
	rng               *Rng
	cand              []probIndex
}

type probIndex struct {
	prob  float32
	index int
}

// Temperature and top-p bounds.
const (
	MaxTemperature = 2
)

// validateSampling checks temperature and top-p (0 meaning 1).
func validateSampling(temperature, topP float32) error {
	if !(temperature >= 0 && temperature <= MaxTemperature) {
		return fmt.Errorf("%w: %v, want 0 to %v", ErrTemperature, temperature, MaxTemperature)
	}
	if !(topP >= 0 && topP <= 1) {
		return fmt.Errorf("%w: %v, want more than 0 and at most 1", ErrTopP, topP)
	}
	return nil
}

// NewSampler returns a sampler for a vocabulary of n tokens. topP 0 means
// 1 (no nucleus restriction).
func NewSampler(n int, temperature, topP float32, seed uint64) (*Sampler, error) {
	if err := validateSampling(temperature, topP); err != nil {
		return nil, err
	}
	if topP == 0 {
		topP = 1
	}
	return &Sampler{temperature: temperature, topP: topP, rng: NewRng(seed), cand: make([]probIndex, 0, n)}, nil
}

// Skip advances the random stream as Sample would without drawing: one
// coin at a positive temperature, none when greedy. A verifier that
// replays only some positions skips the others.
func (s *Sampler) Skip() {
	if s.temperature != 0 {
		s.rng.Float32()
	}
}

// Sample returns the next token id. It overwrites logits with
// probabilities when sampling at a positive temperature. Greedy decoding
// takes the first of equal maxima (the lowest id).
func (s *Sampler) Sample(logits []float32) int {
	if s.temperature == 0 {
		return argmax(logits)
	}
	for i := range logits {
		logits[i] /= s.temperature
	}
	softmax(logits)
	coin := s.rng.Float32()
	if s.topP <= 0 || s.topP >= 1 {
		return sampleMult(logits, coin)
	}
	return s.sampleTopP(logits, coin)
}

func sampleMult(probs []float32, coin float32) int {
	var cdf float32
	for i, p := range probs {
		cdf += p
		if coin < cdf {
			return i
		}
	}
	return len(probs) - 1
}

func (s *Sampler) sampleTopP(probs []float32, coin float32) int {
	cand, last, cum := s.nucleus(probs)
	r := float32(coin * cum) // rounded before any sum: no fused multiply-add
	var cdf float32
	for _, c := range cand[:last+1] {
		cdf += c.prob
		if r < cdf {
			return c.index
		}
	}
	return cand[last].index
}

// nucleus sorts the top-p candidates of probs by probability (ties to
// the lower id) and returns them, the index of the nucleus's last and
// its mass.
func (s *Sampler) nucleus(probs []float32) ([]probIndex, int, float32) {
	// Tokens below (1-topP)/(n-1) cannot be in the nucleus; drop them
	// before sorting.
	cutoff := (1 - s.topP) / float32(len(probs)-1)
	cand := s.cand[:0]
	for i, p := range probs {
		if p >= cutoff {
			cand = append(cand, probIndex{p, i})
		}
	}
	slices.SortFunc(cand, func(a, b probIndex) int {
		switch {
		case a.prob > b.prob:
			return -1
		case a.prob < b.prob:
			return 1
		}
		return a.index - b.index
	})
	var cum float32
	last := len(cand) - 1
	for i, c := range cand {
		cum += c.prob
		if cum > s.topP {
			last = i
			break
		}
	}
	s.cand = cand
	return cand, last, cum
}

// StopDraw is what the sampler's next draw looks like to a verifier that
// cannot reproduce the logits bit for bit (another engine's rounding):
// the coin it uses, and where the given tokens lie on the walk it makes,
// so the verifier can ask whether the coin fell on one of them up to a
// slack (internal/verify, "Replaying the sampler").
type StopDraw struct {
	// Greedy: temperature 0, no coin drawn; Margin is then the largest
	// logit minus the largest of the tokens' logits (0: one of them is
	// the argmax).
	Greedy bool
	Margin float32
	// Coin is the draw's coin in [0, 1); Intervals holds, per token, the
	// part of [0, 1) on which the coin draws it, as the walk computes it
	// (in vocabulary order, or, under top-p, in the nucleus's sorted order
	// scaled by the nucleus's mass, as sampleTopP compares coin × cum). A
	// token outside the nucleus gets the empty interval [1, 1): were
	// another engine's rounding to admit it, it would join the walk's end.
	Coin      float32
	Intervals [][2]float64
}

// DrawTokens makes the next draw as Sample would (one coin at a positive
// temperature, none when greedy) without choosing: it returns the coin
// and the intervals of tokens. It overwrites logits with probabilities at
// a positive temperature. Sample is unchanged; the two consume the stream
// alike, so a replay may mix them.
func (s *Sampler) DrawTokens(logits []float32, tokens []int) StopDraw {
	if s.temperature == 0 {
		hi := logits[argmax(logits)]
		best := float32(math.Inf(-1))
		for _, t := range tokens {
			if t >= 0 && t < len(logits) {
				best = max(best, logits[t])
			}
		}
		return StopDraw{Greedy: true, Margin: hi - best}
	}
	for i := range logits {
		logits[i] /= s.temperature
	}
	softmax(logits)
	d := StopDraw{Coin: s.rng.Float32(), Intervals: make([][2]float64, len(tokens))}
	for k := range d.Intervals {
		d.Intervals[k] = [2]float64{1, 1}
	}
	set := func(id int, lo, hi float32, scale float32) {
		for k, t := range tokens {
			if t == id {
				d.Intervals[k] = [2]float64{float64(lo) / float64(scale), float64(hi) / float64(scale)}
			}
		}
	}
	if s.topP <= 0 || s.topP >= 1 {
		var cdf float32
		for i, p := range logits {
			lo := cdf
			cdf += p
			if slices.Contains(tokens, i) {
				set(i, lo, cdf, 1)
			}
		}
		return d
	}
	cand, last, cum := s.nucleus(logits)
	var cdf float32
	for _, c := range cand[:last+1] {
		lo := cdf
		cdf += c.prob
		if slices.Contains(tokens, c.index) {
			set(c.index, lo, cdf, cum)
		}
	}
	return d
}

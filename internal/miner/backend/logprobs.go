package backend

import (
	"bytes"
	"cmp"
	"errors"
	"slices"
	"strings"

	"github.com/aitbc/aitbc/internal/verify"
)

// Commitments for remote backends. Ollama and OpenAI-compatible servers
// (llama-server, vLLM) cannot expose hidden states, but they report the
// log-probability of each sampled token and of the likeliest alternatives
// (OpenAI's logprobs/top_logprobs, Ollama's logprobs/top_logprobs). The
// clients ask for them, and the miner signs them into the receipt as a
// verify.LogprobAttestation in Result.Attestation, which a verifier checks
// with the built-in engine on the same GGUF (verify.RecomputeLogprobs;
// docs/VERIFICATION.md says what that catches and misses).

// maxLogprobBytes bounds the token text a recorder keeps for one job (a
// server could send 20 long alternatives per token).
const maxLogprobBytes = 4 << 20

// wireLogprob is one token's entry as both OpenAI's chat format
// (choices[].logprobs.content[]) and Ollama's (logprobs[]) send it.
type wireLogprob struct {
	Token       string        `json:"token"`
	Logprob     float64       `json:"logprob"`
	Bytes       []int         `json:"bytes"`
	TopLogprobs []wireLogprob `json:"top_logprobs"`
}

// text is the token's bytes where the server sends them (a token that is
// part of a UTF-8 sequence cannot be a JSON string), else its text.
func (w *wireLogprob) text() []byte {
	if len(w.Bytes) == 0 {
		return []byte(w.Token)
	}
	b := make([]byte, len(w.Bytes))
	for i, v := range w.Bytes {
		if v < 0 || v > 255 {
			return []byte(w.Token)
		}
		b[i] = byte(v)
	}
	return b
}

// refusedLogprobs reports whether a request was refused for asking for
// log-probabilities (a 400 or 422 whose message names them): the client
// then sends it again without them.
func refusedLogprobs(err error) bool {
	return errors.Is(err, ErrInvalidRequest) && strings.Contains(strings.ToLower(err.Error()), "logprob")
}

// logprobRecorder collects a stream's log-probabilities; a nil recorder
// collects nothing.
type logprobRecorder struct {
	pos   []verify.PositionLogprobs
	bytes int
	bad   bool // too many or too large: no attestation
}

func (r *logprobRecorder) add(tok []byte, lp float64, top []verify.TopLogprob) {
	if r == nil || r.bad {
		return
	}
	r.bytes += len(tok)
	for _, t := range top {
		r.bytes += len(t.Token)
	}
	if len(r.pos) >= verify.MaxTokens || len(top) > verify.MaxTopLogprobs || r.bytes > maxLogprobBytes {
		r.bad = true
		return
	}
	r.pos = append(r.pos, verify.PositionLogprobs{Token: tok, Logprob: verify.MicroLogprob(lp), Top: top})
}

// addWire records entries in OpenAI's chat / Ollama's shape.
func (r *logprobRecorder) addWire(ws []wireLogprob) {
	if r == nil {
		return
	}
	for i := range ws {
		w := &ws[i]
		top := make([]verify.TopLogprob, 0, len(w.TopLogprobs))
		for j := range w.TopLogprobs {
			t := &w.TopLogprobs[j]
			top = append(top, verify.TopLogprob{Token: t.text(), Logprob: verify.MicroLogprob(t.Logprob)})
		}
		r.add(w.text(), w.Logprob, top)
	}
}

// addLegacy records OpenAI's completions shape: parallel arrays, the
// alternatives as a map from text to log-probability (ordered here by
// log-probability, then text, so that the encoding does not depend on the
// map's order).
func (r *logprobRecorder) addLegacy(tokens []string, lps []float64, tops []map[string]float64) {
	if r == nil {
		return
	}
	for i, t := range tokens {
		if i >= len(lps) {
			r.bad = true
			return
		}
		var top []verify.TopLogprob
		if i < len(tops) {
			for k, v := range tops[i] {
				top = append(top, verify.TopLogprob{Token: []byte(k), Logprob: verify.MicroLogprob(v)})
			}
			slices.SortFunc(top, func(a, b verify.TopLogprob) int {
				return cmp.Or(cmp.Compare(b.Logprob, a.Logprob), bytes.Compare(a.Token, b.Token))
			})
		}
		r.add([]byte(t), lps[i], top)
	}
}

// attestation is the encoded verify.LogprobAttestation of the recorded
// positions, or "" when there is none to sign: the server sent no
// log-probabilities, too many, or tokens that do not make the text (a stop
// sequence cut it, as the built-in engine's attestation is dropped then).
func (r *logprobRecorder) attestation(backend, model, text string) string {
	if r == nil || r.bad || len(r.pos) == 0 {
		return ""
	}
	a := verify.LogprobAttestation{Version: verify.LogprobVersion, Backend: backend, Model: model, Positions: r.pos}
	if a.Text() != text || a.Check() != nil {
		return ""
	}
	enc, err := a.Encode()
	if err != nil {
		return ""
	}
	return string(enc)
}

package swarm

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Paths of the span server's API.
const (
	PathInfo    = "/v1/spans"
	PathForward = "/v1/spans/forward"
	PathSession = "/v1/spans/sessions/{id}"
)

// Limits of one forward request.
const (
	// MaxRows is the most positions one request may carry (a prompt is
	// sent in one request; longer prompts are split by the Pipeline).
	MaxRows = 256
	// MaxSessionID is the longest session id.
	MaxSessionID = 64
	// maxForwardBody bounds a forward request body: MaxRows hidden
	// states of up to 8192 float32s, base64-encoded, plus the envelope.
	maxForwardBody = MaxRows*8192*4*4/3 + 4096
)

// ForwardRequest asks a span server to run layers [First, Last) of Model
// on Rows consecutive positions starting at Pos, in the KV cache of
// Session. The first span (First == 0) takes Tokens (embedded on the
// server); every other span takes Hidden: Rows × Dim float32s,
// little-endian, base64 (standard encoding), row-major.
type ForwardRequest struct {
	Session string `json:"session"`
	Model   string `json:"model"`
	First   int    `json:"first"`
	Last    int    `json:"last"`
	Pos     int    `json:"pos"`
	Rows    int    `json:"rows"`
	Dim     int    `json:"dim,omitempty"`
	Tokens  []int  `json:"tokens,omitempty"`
	Hidden  string `json:"hidden,omitempty"`
	// Job (32 hex characters) and ChainID name the job a session serves,
	// on the session's first request: a server with a key then answers
	// each request with its signed stage receipt so far (stage.go).
	Job     string `json:"job,omitempty"`
	ChainID string `json:"chain_id,omitempty"`
}

// ForwardResponse carries the hidden states after layer Last-1 (Rows ×
// Dim, same encoding as the request), or, when Last is the model's last
// layer, the logits of the last row only (Vocab float32s): the driver
// needs no more to pick the next token.
type ForwardResponse struct {
	Rows   int    `json:"rows"`
	Dim    int    `json:"dim,omitempty"`
	Hidden string `json:"hidden,omitempty"`
	Vocab  int    `json:"vocab,omitempty"`
	Logits string `json:"logits,omitempty"`
	// Receipt is the session's stage receipt after this request (base64
	// of its CBOR encoding, jobs.StageReceipt), when the session names a
	// job and the server signs.
	Receipt string `json:"receipt,omitempty"`
}

// SpanInfo describes one span a server serves.
type SpanInfo struct {
	Model  string `json:"model"`
	First  int    `json:"first"`
	Last   int    `json:"last"`
	Layers int    `json:"layers"` // the model's layer count
	Dim    int    `json:"dim"`
	Vocab  int    `json:"vocab"`
	BOS    int    `json:"bos"`
	EOS    int    `json:"eos"`
}

// Info is the answer of GET /v1/spans.
type Info struct {
	Spans           []SpanInfo `json:"spans"`
	Sessions        int        `json:"sessions"`
	CacheBytes      int64      `json:"cache_bytes"`
	TokensProcessed uint64     `json:"tokens_processed"` // positions × layers computed
	// LayerTokensPerSecond is the measured speed: layer-positions computed
	// per second of compute, the "server speed" of the routing graph.
	LayerTokensPerSecond float64 `json:"layer_tokens_per_second"`
}

// errShape is wrapped by every decoding error of a hidden-state payload.
var errShape = errors.New("shape mismatch")

// EncodeFloats encodes v as little-endian float32s in base64.
func EncodeFloats(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeFloats decodes want float32s from s, refusing any other length.
func DecodeFloats(s string, want int) ([]float32, error) {
	if base64.StdEncoding.DecodedLen(len(s)) > 4*want+3 {
		return nil, fmt.Errorf("%w: payload of %d base64 characters, want %d float32s", errShape, len(s), want)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64: %v", errShape, err)
	}
	if len(b) != 4*want {
		return nil, fmt.Errorf("%w: payload of %d bytes, want %d (%d float32s)", errShape, len(b), 4*want, want)
	}
	v := make([]float32, want)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

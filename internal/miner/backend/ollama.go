package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"github.com/aitbc/aitbc/internal/verify"
)

// DefaultOllamaURL is where an Ollama server listens by default.
const DefaultOllamaURL = "http://127.0.0.1:11434"

// Ollama runs jobs on an Ollama server through its native API: POST
// /api/generate for a Prompt (the server applies the model's template, as
// it does for any client that does not ask for raw mode), POST /api/chat
// for Messages, both with "stream": true (NDJSON, one object per line), and
// GET /api/tags to list models. Token counts come from the final object's
// prompt_eval_count and eval_count.
type Ollama struct {
	base   string
	client *http.Client
}

var _ Backend = (*Ollama)(nil)

// NewOllama returns a backend for the Ollama server at baseURL
// (DefaultOllamaURL when empty). client nil means http.DefaultClient; give
// it no overall Timeout, since a stream lasts as long as the generation
// (cancel through the context instead).
func NewOllama(baseURL string, client *http.Client) *Ollama {
	if baseURL == "" {
		baseURL = DefaultOllamaURL
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &Ollama{base: strings.TrimRight(baseURL, "/"), client: client}
}

// Name implements Backend.
func (o *Ollama) Name() string { return "ollama" }

// BaseURL is the server's address.
func (o *Ollama) BaseURL() string { return o.base }

// Models implements Backend with GET /api/tags.
func (o *Ollama) Models(ctx context.Context) ([]ModelInfo, error) {
	resp, err := httpDo(ctx, o.client, http.MethodGet, o.base+"/api/tags", nil, nil, o.classify("/api/tags"))
	if err != nil {
		return nil, o.wrap(err)
	}
	defer resp.Body.Close()
	var tags struct {
		Models []struct {
			Name    string `json:"name"`
			Model   string `json:"model"`
			Size    int64  `json:"size"`
			Details struct {
				Format            string `json:"format"`
				Family            string `json:"family"`
				ParameterSize     string `json:"parameter_size"`
				QuantizationLevel string `json:"quantization_level"`
			} `json:"details"`
		} `json:"models"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxLine)).Decode(&tags); err != nil {
		if ctx.Err() != nil {
			return nil, o.wrap(ctx.Err())
		}
		return nil, fmt.Errorf("%w: ollama /api/tags: malformed answer: %v", ErrBackendFailed, err)
	}
	out := make([]ModelInfo, 0, len(tags.Models))
	for _, m := range tags.Models {
		name := m.Name
		if name == "" {
			name = m.Model
		}
		if name == "" {
			continue
		}
		out = append(out, ModelInfo{
			Name: name, SizeBytes: m.Size, Family: m.Details.Family, Format: m.Details.Format,
			ParameterSize: m.Details.ParameterSize, Quantization: m.Details.QuantizationLevel,
		})
	}
	return out, nil
}

// ollamaOptions are the Modelfile parameters a job sets. Temperature is
// always sent: Ollama's own default is 0.8, not greedy.
type ollamaOptions struct {
	NumPredict  int      `json:"num_predict"`
	Temperature float32  `json:"temperature"`
	TopP        float32  `json:"top_p,omitempty"`
	Seed        int64    `json:"seed,omitempty"`
	Stop        []string `json:"stop,omitempty"`
}

type ollamaRequest struct {
	Model    string        `json:"model"`
	Prompt   string        `json:"prompt,omitempty"`
	Messages []ChatMessage `json:"messages,omitempty"`
	Stream   bool          `json:"stream"`
	Options  ollamaOptions `json:"options"`
	// Logprobs and TopLogprobs ask for log-probabilities (logprobs.go);
	// an Ollama without logprobs support ignores them.
	Logprobs    bool `json:"logprobs,omitempty"`
	TopLogprobs int  `json:"top_logprobs,omitempty"`
}

// seed63 reduces a seed to what servers that parse it as a signed integer
// accept.
func seed63(s uint64) int64 { return int64(s & math.MaxInt64) }

// Generate implements Backend.
func (o *Ollama) Generate(ctx context.Context, req Request, onToken func(string) error) (Result, error) {
	res := Result{Backend: o.Name()}
	if err := req.Validate(); err != nil {
		return res, err
	}
	path := "/api/generate"
	if len(req.Messages) > 0 {
		path = "/api/chat"
	}
	body := ollamaRequest{
		Model: req.Model, Prompt: req.Prompt, Messages: req.Messages, Stream: true,
		Options:  ollamaOptions{NumPredict: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP, Seed: seed63(req.Seed), Stop: req.Stop},
		Logprobs: true, TopLogprobs: verify.TopLogprobs,
	}
	resp, err := httpDo(ctx, o.client, http.MethodPost, o.base+path, body, nil, o.classify(path))
	if refusedLogprobs(err) {
		body.Logprobs, body.TopLogprobs = false, 0
		resp, err = httpDo(ctx, o.client, http.MethodPost, o.base+path, body, nil, o.classify(path))
	}
	if err != nil {
		if isCtxErr(err) {
			return canceled(res, o.wrap(err))
		}
		return res, err
	}
	defer resp.Body.Close()
	lp := &logprobRecorder{}
	res, err = decodeOllamaStreamLogprobs(ctx, resp.Body, req.MaxTokens, onToken, lp)
	res.Backend = o.Name()
	if err == nil {
		res.Attestation = lp.attestation(o.Name(), req.Model, res.Text)
	}
	if err != nil && res.FinishReason == FinishCanceled {
		err = o.wrap(err)
	}
	return res, err
}

// wrap prefixes errors that do not carry the package prefix (a context's).
func (o *Ollama) wrap(err error) error {
	if isCtxErr(err) && !strings.HasPrefix(err.Error(), "backend:") {
		return fmt.Errorf("backend: ollama: %w", err)
	}
	return err
}

// classify maps an Ollama error status: 404 naming a model is an unknown
// model (Ollama answers `model "x" not found, try pulling it first`); a
// 404 without one means the URL is not an Ollama server.
func (o *Ollama) classify(path string) func(int, apiError) error {
	return func(status int, e apiError) error {
		if status == http.StatusNotFound {
			if strings.Contains(strings.ToLower(e.Message), "model") {
				return statusError(ErrUnknownModel, "ollama", path, status, e)
			}
			return statusError(ErrBackendUnavailable, "ollama", path, status, e)
		}
		if s := statusClass(status); s != nil {
			return statusError(s, "ollama", path, status, e)
		}
		return statusError(ErrBackendFailed, "ollama", path, status, e)
	}
}

// ollamaChunk is one line of an /api/generate or /api/chat stream.
// Metric fields are pointers: Ollama omits them when zero, and a missing
// count is told apart from a real one.
type ollamaChunk struct {
	Response string `json:"response"` // /api/generate
	Message  *struct {
		Content string `json:"content"`
	} `json:"message"` // /api/chat
	Done            bool            `json:"done"`
	DoneReason      string          `json:"done_reason"`
	PromptEvalCount *int            `json:"prompt_eval_count"`
	EvalCount       *int            `json:"eval_count"`
	Error           json.RawMessage `json:"error"`
	Logprobs        []wireLogprob   `json:"logprobs"`
}

func (c *ollamaChunk) text() string {
	if c.Message != nil {
		return c.Message.Content
	}
	return c.Response
}

// parseOllamaLine decodes one NDJSON line. An {"error": ...} line is
// returned as an error wrapping ErrBackendFailed.
func parseOllamaLine(line []byte) (ollamaChunk, error) {
	var c ollamaChunk
	if err := json.Unmarshal(line, &c); err != nil {
		return c, fmt.Errorf("%w: ollama: malformed stream line %.120q: %v", ErrBackendFailed, line, err)
	}
	if len(c.Error) > 0 && string(c.Error) != "null" {
		e := parseAPIError(line)
		if e.Message == "" {
			e.Message = string(c.Error)
		}
		return c, fmt.Errorf("%w: ollama: error in stream: %s", ErrBackendFailed, e)
	}
	return c, nil
}

// decodeOllamaStream reads an NDJSON generation stream up to its done
// object, streaming text to onToken. maxTokens tells a length stop from
// servers that predate done_reason. On error the Result holds what was
// streamed so far.
func decodeOllamaStream(ctx context.Context, r io.Reader, maxTokens int, onToken func(string) error) (Result, error) {
	return decodeOllamaStreamLogprobs(ctx, r, maxTokens, onToken, nil)
}

// decodeOllamaStreamLogprobs is decodeOllamaStream that also records the
// lines' log-probabilities in lp (when not nil).
func decodeOllamaStreamLogprobs(ctx context.Context, r io.Reader, maxTokens int, onToken func(string) error, lp *logprobRecorder) (Result, error) {
	var (
		res    Result
		text   strings.Builder
		chunks int
	)
	sc := newLineScanner(r)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		c, err := parseOllamaLine(line)
		if err != nil {
			res.Text, res.TokensOut, res.UsageEstimated = text.String(), chunks, true
			return res, err
		}
		lp.addWire(c.Logprobs)
		if t := c.text(); t != "" {
			chunks++
			text.WriteString(t)
			if onToken != nil {
				if err := onToken(t); err != nil {
					res.Text, res.TokensOut, res.UsageEstimated = text.String(), chunks, true
					return canceled(res, errCallback("ollama", err))
				}
			}
		}
		if !c.Done {
			continue
		}
		res.Text = text.String()
		res.TokensOut = chunks
		if c.EvalCount != nil {
			res.TokensOut = *c.EvalCount
		} else if chunks > 0 {
			res.UsageEstimated = true
		}
		if c.PromptEvalCount != nil {
			res.TokensIn = *c.PromptEvalCount
		} else {
			res.UsageEstimated = true
		}
		res.FinishReason = FinishStop
		if c.DoneReason == "length" || (c.DoneReason == "" && maxTokens > 0 && res.TokensOut >= maxTokens) {
			res.FinishReason = FinishLength
		}
		return res, nil
	}
	res.Text, res.TokensOut, res.UsageEstimated = text.String(), chunks, true
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return canceled(res, ctx.Err())
		}
		return res, streamError(ctx, "ollama", scanErr(err))
	}
	if ctx.Err() != nil {
		return canceled(res, ctx.Err())
	}
	return res, fmt.Errorf("%w: ollama: the stream ended before its final (done) object", ErrBackendFailed)
}

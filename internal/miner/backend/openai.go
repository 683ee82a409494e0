package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/aitbc/aitbc/internal/verify"
)

// OpenAI runs jobs on a server that speaks the OpenAI API, such as vLLM or
// llama.cpp's llama-server: POST /v1/chat/completions for Messages, POST
// /v1/completions for a Prompt, both with "stream": true and
// "stream_options": {"include_usage": true} (server-sent events, "data:
// {chunk}" ... "data: [DONE]"), and GET /v1/models to list models. Token
// counts come from the usage object the server sends with the last chunk;
// a server that sends none gets its streamed chunks counted instead
// (Result.UsageEstimated).
type OpenAI struct {
	base   string // without the trailing /v1
	apiKey string
	client *http.Client
	vision []string // models declared to read images (vision.go)
}

var _ Backend = (*OpenAI)(nil)

// NewOpenAI returns a backend for the OpenAI-compatible server at baseURL,
// with or without its "/v1" suffix (e.g. http://127.0.0.1:8080 for
// llama-server, http://127.0.0.1:8000/v1 for vLLM). apiKey, when set, is
// sent as a bearer token. client nil means http.DefaultClient; give it no
// overall Timeout, since a stream lasts as long as the generation.
func NewOpenAI(baseURL, apiKey string, client *http.Client) *OpenAI {
	if client == nil {
		client = http.DefaultClient
	}
	base := strings.TrimSuffix(strings.TrimRight(baseURL, "/"), "/v1")
	return &OpenAI{base: base, apiKey: apiKey, client: client}
}

// Name implements Backend.
func (o *OpenAI) Name() string { return "openai" }

// BaseURL is the server's address, without "/v1".
func (o *OpenAI) BaseURL() string { return o.base }

func (o *OpenAI) header() http.Header {
	h := http.Header{}
	if o.apiKey != "" {
		h.Set("Authorization", "Bearer "+o.apiKey)
	}
	return h
}

// Models implements Backend with GET /v1/models. Besides the ids it reads
// the extras llama-server (meta.size, meta.n_ctx_train, meta.n_params) and
// vLLM (max_model_len) add.
func (o *OpenAI) Models(ctx context.Context) ([]ModelInfo, error) {
	resp, err := httpDo(ctx, o.client, http.MethodGet, o.base+"/v1/models", nil, o.header(), o.classify("/v1/models"))
	if err != nil {
		return nil, o.wrap(err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct {
			ID          string `json:"id"`
			MaxModelLen int    `json:"max_model_len"`
			Meta        *struct {
				Size      int64 `json:"size"`
				NCtxTrain int   `json:"n_ctx_train"`
			} `json:"meta"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxLine)).Decode(&list); err != nil {
		if ctx.Err() != nil {
			return nil, o.wrap(ctx.Err())
		}
		return nil, fmt.Errorf("%w: openai /v1/models: malformed answer: %v", ErrBackendFailed, err)
	}
	out := make([]ModelInfo, 0, len(list.Data))
	for _, m := range list.Data {
		if m.ID == "" {
			continue
		}
		info := ModelInfo{Name: m.ID, ContextLength: m.MaxModelLen}
		if m.Meta != nil {
			info.SizeBytes = m.Meta.Size
			if info.ContextLength == 0 {
				info.ContextLength = m.Meta.NCtxTrain
			}
			info.Format = "gguf" // llama-server serves GGUF files only
		}
		out = append(out, info)
	}
	return out, nil
}

type openAIStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type openAIRequest struct {
	Model         string              `json:"model"`
	Prompt        string              `json:"prompt,omitempty"`
	Messages      []openAIMessage     `json:"messages,omitempty"`
	MaxTokens     int                 `json:"max_tokens"`
	Temperature   float32             `json:"temperature"`
	TopP          float32             `json:"top_p,omitempty"`
	Seed          int64               `json:"seed,omitempty"`
	Stop          []string            `json:"stop,omitempty"`
	Stream        bool                `json:"stream"`
	StreamOptions openAIStreamOptions `json:"stream_options"`
	// Logprobs asks for log-probabilities (logprobs.go): the number of
	// alternatives for /v1/completions, true for /v1/chat/completions,
	// which takes the number as TopLogprobs.
	Logprobs    any `json:"logprobs,omitempty"`
	TopLogprobs int `json:"top_logprobs,omitempty"`
}

// Generate implements Backend.
func (o *OpenAI) Generate(ctx context.Context, req Request, onToken func(string) error) (Result, error) {
	res := Result{Backend: o.Name()}
	if err := req.Validate(); err != nil {
		return res, err
	}
	path := "/v1/completions"
	if len(req.Messages) > 0 {
		path = "/v1/chat/completions"
	}
	if hasImages(req.Messages) && !slices.Contains(o.vision, req.Model) {
		return res, noVision("openai", req.Model)
	}
	msgs, err := toOpenAIMessages(req.Messages)
	if err != nil {
		return res, err
	}
	body := openAIRequest{
		Model: req.Model, Prompt: req.Prompt, Messages: msgs, MaxTokens: req.MaxTokens,
		Temperature: req.Temperature, TopP: req.TopP, Seed: seed63(req.Seed), Stop: req.Stop,
		Stream: true, StreamOptions: openAIStreamOptions{IncludeUsage: true},
		Logprobs: verify.TopLogprobs,
	}
	if len(req.Messages) > 0 {
		body.Logprobs, body.TopLogprobs = true, verify.TopLogprobs
	}
	resp, err := httpDo(ctx, o.client, http.MethodPost, o.base+path, body, o.header(), o.classify(path))
	if refusedLogprobs(err) {
		// A server that does not take log-probabilities still runs the
		// job, without an attestation.
		body.Logprobs, body.TopLogprobs = nil, 0
		resp, err = httpDo(ctx, o.client, http.MethodPost, o.base+path, body, o.header(), o.classify(path))
	}
	if err != nil {
		if isCtxErr(err) {
			return canceled(res, o.wrap(err))
		}
		return res, err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json") {
		// Not a stream: an error object, or a server that ignored "stream".
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if e := parseAPIError(raw); e.Message != "" {
			return res, fmt.Errorf("%w: openai %s: %s", ErrBackendFailed, path, e)
		}
		return res, fmt.Errorf("%w: openai %s: the server answered with one JSON object, not a stream", ErrBackendFailed, path)
	}
	lp := &logprobRecorder{}
	res, err = decodeOpenAIStreamLogprobs(ctx, resp.Body, onToken, lp)
	res.Backend = o.Name()
	if err == nil {
		res.Attestation = lp.attestation(o.Name(), req.Model, res.Text)
	}
	if err != nil && res.FinishReason == FinishCanceled {
		err = o.wrap(err)
	}
	return res, err
}

func (o *OpenAI) wrap(err error) error {
	if isCtxErr(err) && !strings.HasPrefix(err.Error(), "backend:") {
		return fmt.Errorf("backend: openai: %w", err)
	}
	return err
}

// classify maps an error status. A model the server does not have is a
// 404 whose body names a model (OpenAI: code "model_not_found"; vLLM: "The
// model `x` does not exist."), or any 4xx with code "model_not_found"; a
// 404 that names none means the URL is not an OpenAI-compatible server.
func (o *OpenAI) classify(path string) func(int, apiError) error {
	return func(status int, e apiError) error {
		unknown := e.Code == "model_not_found" && status >= 400 && status < 500
		if status == http.StatusNotFound {
			unknown = unknown || strings.Contains(strings.ToLower(e.Message), "model")
			if !unknown {
				return statusError(ErrBackendUnavailable, "openai", path, status, e)
			}
		}
		if unknown {
			return statusError(ErrUnknownModel, "openai", path, status, e)
		}
		if s := statusClass(status); s != nil {
			return statusError(s, "openai", path, status, e)
		}
		return statusError(ErrBackendFailed, "openai", path, status, e)
	}
}

// openAIChunk is one streamed chunk of a completion or chat completion,
// or an error object some servers send in its place.
type openAIChunk struct {
	Choices []struct {
		Text  string `json:"text"` // completions
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"` // chat completions
		FinishReason *string         `json:"finish_reason"`
		Logprobs     *openAILogprobs `json:"logprobs"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error  json.RawMessage `json:"error"`
	Object string          `json:"object"`
}

// parseOpenAIChunk decodes the data of one event. An error object
// ({"error": {...}} from OpenAI, vLLM and newer llama-server, {"object":
// "error", ...} from older vLLM) is returned as an error wrapping
// ErrBackendFailed.
func parseOpenAIChunk(data []byte) (openAIChunk, error) {
	var c openAIChunk
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%w: openai: malformed stream event %.120q: %v", ErrBackendFailed, data, err)
	}
	if (len(c.Error) > 0 && string(c.Error) != "null") || c.Object == "error" {
		return c, fmt.Errorf("%w: openai: error in stream: %s", ErrBackendFailed, parseAPIError(data))
	}
	return c, nil
}

// decodeOpenAIStream reads an SSE stream of chunks up to "data: [DONE]",
// streaming text to onToken. Only choice 0 is read (the request asks for
// one). On error the Result holds what was streamed so far.
func decodeOpenAIStream(ctx context.Context, r io.Reader, onToken func(string) error) (Result, error) {
	return decodeOpenAIStreamLogprobs(ctx, r, onToken, nil)
}

// openAILogprobs is a chunk's log-probabilities: Content in the chat
// format (which llama-server also sends for completions), the parallel
// arrays in the legacy completions format.
type openAILogprobs struct {
	Content       []wireLogprob        `json:"content"`
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float64            `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
}

// decodeOpenAIStreamLogprobs is decodeOpenAIStream that also records the
// chunks' log-probabilities in lp (when not nil).
func decodeOpenAIStreamLogprobs(ctx context.Context, r io.Reader, onToken func(string) error, lp *logprobRecorder) (Result, error) {
	var (
		res    Result
		text   strings.Builder
		chunks int
		finish string
		usage  bool
	)
	partial := func() Result {
		res.Text = text.String()
		if !usage {
			res.TokensOut, res.UsageEstimated = chunks, true
		}
		return res
	}
	sr := newSSEReader(r)
	for {
		ev, err := sr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return canceled(partial(), ctx.Err())
			}
			return partial(), streamError(ctx, "openai", err)
		}
		if ev.Event == "error" {
			e := parseAPIError([]byte(ev.Data))
			if e.Message == "" {
				e.Message = ev.Data
			}
			return partial(), fmt.Errorf("%w: openai: error in stream: %s", ErrBackendFailed, e)
		}
		data := strings.TrimSpace(ev.Data)
		if data == "[DONE]" {
			return finished(partial(), finish)
		}
		c, err := parseOpenAIChunk([]byte(data))
		if err != nil {
			return partial(), err
		}
		if c.Usage != nil {
			usage = true
			res.TokensIn, res.TokensOut, res.UsageEstimated = c.Usage.PromptTokens, c.Usage.CompletionTokens, false
		}
		if len(c.Choices) == 0 {
			continue
		}
		ch := c.Choices[0]
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			finish = *ch.FinishReason
		}
		if l := ch.Logprobs; l != nil && lp != nil {
			lp.addWire(l.Content)
			lp.addLegacy(l.Tokens, l.TokenLogprobs, l.TopLogprobs)
		}
		t := ch.Text + ch.Delta.Content
		if t == "" {
			continue
		}
		chunks++
		text.WriteString(t)
		if onToken != nil {
			if err := onToken(t); err != nil {
				return canceled(partial(), errCallback("openai", err))
			}
		}
	}
	if ctx.Err() != nil {
		return canceled(partial(), ctx.Err())
	}
	if finish != "" { // a server that ends the stream without [DONE]
		return finished(partial(), finish)
	}
	return partial(), fmt.Errorf("%w: openai: the stream ended before [DONE]", ErrBackendFailed)
}

// finished maps OpenAI's finish_reason: "length" is a length stop, every
// other reason (stop, eos, content_filter, tool_calls) a stop.
func finished(res Result, finish string) (Result, error) {
	res.FinishReason = FinishStop
	if finish == "length" {
		res.FinishReason = FinishLength
	}
	return res, nil
}

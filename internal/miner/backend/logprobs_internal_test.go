package backend

import (
	"bytes"
	"context"
	"testing"

	"github.com/aitbc/aitbc/internal/verify"
)

// FuzzLogprobStreams: whatever log-probabilities a server streams, in
// Ollama's or OpenAI's shape, the decoders do not panic and the recorder
// gives either no attestation or one that decodes, checks, makes exactly
// the result's text, and re-encodes to the same bytes.
func FuzzLogprobStreams(f *testing.F) {
	f.Add([]byte(`{"response":"Hi","done":false,"logprobs":[{"token":"Hi","logprob":-0.5,"top_logprobs":[{"token":"Yo","logprob":-2}]}]}`+"\n"+`{"done":true,"done_reason":"stop","eval_count":1,"prompt_eval_count":1}`+"\n"), false)
	f.Add([]byte(`data: {"choices":[{"text":"Hi","logprobs":{"tokens":["Hi"],"token_logprobs":[-0.5],"top_logprobs":[{"Hi":-0.5,"Yo":-3}]},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n"), true)
	f.Add([]byte(`data: {"choices":[{"delta":{"content":"é"},"logprobs":{"content":[{"token":"\\xc3","logprob":-1,"bytes":[195]},{"token":"\\xa9","logprob":0.5,"bytes":[169,300]}]},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n"), true)
	f.Fuzz(func(t *testing.T, raw []byte, openai bool) {
		lp := &logprobRecorder{}
		var res Result
		var err error
		if openai {
			res, err = decodeOpenAIStreamLogprobs(context.Background(), bytes.NewReader(raw), nil, lp)
		} else {
			res, err = decodeOllamaStreamLogprobs(context.Background(), bytes.NewReader(raw), 0, nil, lp)
		}
		if err != nil {
			return
		}
		att := lp.attestation("fuzz", "m", res.Text)
		if att == "" {
			return
		}
		a, err := verify.DecodeLogprobAttestation([]byte(att))
		if err != nil {
			t.Fatalf("the recorder's attestation does not decode: %v", err)
		}
		if a.Text() != res.Text {
			t.Fatalf("attested text %q, result %q", a.Text(), res.Text)
		}
		again, err := a.Encode()
		if err != nil || string(again) != att {
			t.Fatalf("re-encoding differs (%v)", err)
		}
	})
}

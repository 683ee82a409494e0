package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// The stream decoders read whatever a remote server sends: they must never
// panic, must stream exactly the text they return, and must give back what
// an encoder following the documented format wrote.

// checkStreamed runs decode with a callback and checks that Result.Text is
// the concatenation of the streamed pieces, none of them empty.
func checkStreamed(t *testing.T, decode func(func(string) error) (Result, error)) (Result, error) {
	t.Helper()
	var b strings.Builder
	res, err := decode(func(s string) error {
		if s == "" {
			t.Fatal("empty piece streamed")
		}
		b.WriteString(s)
		return nil
	})
	if res.Text != b.String() {
		t.Fatalf("Text %q, streamed %q", res.Text, b.String())
	}
	if err == nil && res.FinishReason != FinishStop && res.FinishReason != FinishLength {
		t.Fatalf("success with finish reason %q", res.FinishReason)
	}
	if err != nil && !errors.Is(err, ErrBackendFailed) {
		t.Fatalf("error %v is not ErrBackendFailed", err)
	}
	return res, err
}

func ollamaStream(pieces []string, prompt, eval int) []byte {
	var b bytes.Buffer
	for _, p := range pieces {
		line, _ := json.Marshal(map[string]any{"model": "m", "created_at": "2023-08-04T08:52:19.385406455-07:00", "response": p, "done": false})
		b.Write(line)
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, `{"model":"m","created_at":"2023-08-04T19:22:45.499127Z","response":"","done":true,"done_reason":"stop","context":[1,2,3],"prompt_eval_count":%d,"eval_count":%d}`+"\n", prompt, eval)
	return b.Bytes()
}

func FuzzOllamaStream(f *testing.F) {
	f.Add(ollamaStream([]string{"The", " sky"}, 26, 2), "piece")
	f.Add([]byte(`{"error":"model \"x\" not found"}`+"\n"), "é")
	f.Add([]byte(`{"response":"a","done":fal`), "")
	f.Add([]byte(`{"message":{"role":"assistant","content":"Hi"},"done":false}`+"\n"+`{"done":true,"eval_count":1}`), "\xff")
	f.Add([]byte("\n\n{}\n[]\n\"x\"\nnull\n"), "a\nb")
	f.Fuzz(func(t *testing.T, raw []byte, piece string) {
		checkStreamed(t, func(cb func(string) error) (Result, error) {
			return decodeOllamaStream(context.Background(), bytes.NewReader(raw), 5, cb)
		})
		if !utf8.ValidString(piece) {
			return // JSON carries only valid UTF-8
		}
		stream := ollamaStream([]string{piece, piece}, 7, 2)
		res, err := checkStreamed(t, func(cb func(string) error) (Result, error) {
			return decodeOllamaStream(context.Background(), bytes.NewReader(stream), 0, cb)
		})
		if err != nil || res.Text != piece+piece || res.TokensIn != 7 || res.TokensOut != 2 {
			t.Fatalf("round trip of %q: %+v, %v", piece, res, err)
		}
	})
}

// sseEncode writes data as one event, a "data:" line per line of it.
func sseEncode(w io.Writer, data string) {
	for _, line := range strings.Split(data, "\n") {
		fmt.Fprintf(w, "data: %s\n", line)
	}
	io.WriteString(w, "\n")
}

func FuzzSSE(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: [DONE]\n\n"), "x")
	f.Add([]byte(": ping\n\nevent: error\ndata: {\"error\":{\"message\":\"boom\"}}\n\n"), "a\nb")
	f.Add([]byte("error: {\"code\":400,\"message\":\"too long\"}\n\n"), "")
	f.Add([]byte("data:{\"choices\":[{\"delta\":{\"content\":\"é\"},\"finish_reason\":null}],\"usage\":null}\r\n\r\ndata:[DONE]"), " lead")
	f.Add([]byte("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":\"x\"}}\n\n"), "{}")
	f.Add([]byte("retry: 10\nid: 1\ndata\n\n"), "data: [DONE]")
	f.Fuzz(func(t *testing.T, raw []byte, data string) {
		// No panic, and every event ends: the reader makes progress.
		sr := newSSEReader(bytes.NewReader(raw))
		for i := 0; ; i++ {
			if _, err := sr.Next(); err != nil {
				break
			}
			if i > len(raw) {
				t.Fatal("more events than bytes")
			}
		}
		checkStreamed(t, func(cb func(string) error) (Result, error) {
			return decodeOpenAIStream(context.Background(), bytes.NewReader(raw), cb)
		})

		// Round trip: an event's data comes back whole (SSE cannot carry a
		// carriage return, which ends a line like a newline does).
		if strings.ContainsRune(data, '\r') {
			return
		}
		var b bytes.Buffer
		sseEncode(&b, data)
		sseEncode(&b, "second")
		sr = newSSEReader(&b)
		for _, want := range []string{data, "second"} {
			ev, err := sr.Next()
			if err != nil || ev.Data != want {
				t.Fatalf("event %+v, %v; want data %q", ev, err, want)
			}
		}
		if _, err := sr.Next(); err != io.EOF {
			t.Fatalf("after the last event: %v", err)
		}

		// And a chunk carrying data as text streams it back.
		if !utf8.ValidString(data) || data == "" {
			return
		}
		chunk, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"index": 0, "text": data, "finish_reason": nil}}})
		b.Reset()
		sseEncode(&b, string(chunk))
		sseEncode(&b, `{"choices":[{"index":0,"text":"","finish_reason":"length"}]}`)
		sseEncode(&b, `{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":1}}`)
		sseEncode(&b, "[DONE]")
		res, err := checkStreamed(t, func(cb func(string) error) (Result, error) {
			return decodeOpenAIStream(context.Background(), &b, cb)
		})
		if err != nil || res.Text != data || res.TokensIn != 4 || res.TokensOut != 1 || res.FinishReason != FinishLength {
			t.Fatalf("round trip of %q: %+v, %v", data, res, err)
		}
	})
}

func FuzzParseAPIError(f *testing.F) {
	f.Add([]byte(`{"error":"model \"x\" not found, try pulling it first"}`))
	f.Add([]byte(`{"error":{"message":"m","type":"t","param":null,"code":"model_not_found"}}`))
	f.Add([]byte(`{"object":"error","message":"m","type":"NotFoundError","code":404}`))
	f.Add([]byte(`{"error":[1,2]}`))
	f.Add([]byte(`{"error":null,"object":"error"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e := parseAPIError(raw)
		_ = e.String()
		if (e != apiError{}) && e.Message == "" {
			t.Fatalf("an error without a message: %+v", e)
		}
	})
}

func FuzzEmitter(f *testing.F) {
	f.Add("Hello END world", "END", uint8(3))
	f.Add("caf\xc3\xa9 \xf0\x9f\x98\x80", "é", uint8(1))
	f.Add("aaab", "aab", uint8(1))
	f.Add("", "", uint8(0))
	f.Fuzz(func(t *testing.T, input, stop string, size uint8) {
		n := int(size%8) + 1
		var got strings.Builder
		e := newEmitter([]string{stop}, func(s string) error { got.WriteString(s); return nil })
		stopped := false
		for i := 0; i < len(input) && !stopped; i += n {
			s, err := e.write(input[i:min(i+n, len(input))])
			if err != nil {
				t.Fatal(err)
			}
			stopped = s
		}
		if !stopped {
			e.flush()
		}
		want := input
		if i := strings.Index(input, stop); stop != "" && i >= 0 {
			want = input[:i]
			if !stopped {
				t.Fatalf("%q in %q not found", stop, input)
			}
		} else if stopped {
			t.Fatalf("stopped without %q in %q", stop, input)
		}
		if got.String() != want || e.text() != want {
			t.Fatalf("emitted %q, want %q", got.String(), want)
		}
	})
}

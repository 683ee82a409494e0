package tokenizer_test

import (
	"bytes"
	"testing"

	"github.com/aitbc/aitbc/internal/engine/tokenizer"
	"github.com/aitbc/aitbc/models"
)

// FuzzLoadLlama2C checks that any input either fails to load or loads into
// a vocabulary that marshals back to the same bytes (when the declared
// maximum length is the real one) and encodes without panicking.
func FuzzLoadLlama2C(f *testing.F) {
	// Small seeds: the fuzzer slows to a crawl on inputs of many kilobytes
	// (tolstoy-1m's 12 kB vocabulary is loaded by the unit tests instead).
	small, err := tokenizer.New(
		[]string{"<unk>", "\n<s>\n", "\n</s>\n", "<0x0A>", "<0xC3>", " ", "a", " a", "é"},
		[]float32{0, 0, 0, 0, 0, -1, -2, -3, -4},
		[]tokenizer.Kind{tokenizer.Unknown, tokenizer.Control, tokenizer.Control, tokenizer.Byte, tokenizer.Byte,
			tokenizer.Normal, tokenizer.Normal, tokenizer.Normal, tokenizer.Normal},
		tokenizer.Options{BOS: 1, EOS: 2, AddSpacePrefix: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small.MarshalLlama2C())
	f.Add(models.TolstoyTokenizer[:200])
	f.Add([]byte{5, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := tokenizer.LoadLlama2C(b)
		if err != nil {
			return
		}
		again, err := tokenizer.LoadLlama2C(tok.MarshalLlama2C())
		if err != nil {
			t.Fatalf("reloading a marshalled vocabulary: %v", err)
		}
		if !bytes.Equal(again.MarshalLlama2C(), tok.MarshalLlama2C()) {
			t.Fatal("marshal round trip changed the vocabulary")
		}
		ids := tok.Encode("Hello, wörld\n", true)
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("id %d outside the vocabulary", id)
			}
		}
		_ = tok.Decode(ids)
	})
}

// FuzzRoundTrip checks Decode(Encode(s)) == s on tolstoy-1m's vocabulary,
// which has a byte token for every byte.
func FuzzRoundTrip(f *testing.F) {
	tok, err := tokenizer.LoadLlama2C(models.TolstoyTokenizer)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"It was", " x", "\n\n", "é\xff", "Наташа"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s, true)
		if got := tok.Decode(ids); got != s {
			t.Fatalf("Decode(Encode(%q)) = %q", s, got)
		}
	})
}

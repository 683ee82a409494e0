package tokenizer_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/engine/tokenizer"
	"github.com/aitbc/aitbc/models"
)

func tolstoy(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.LoadLlama2C(models.TolstoyTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// The prompt ids in tolstoy-1m's README, produced by llama2.c's encoder.
func TestEncodeReferencePrompts(t *testing.T) {
	tok := tolstoy(t)
	if tok.VocabSize() != 1024 {
		t.Fatalf("vocab %d", tok.VocabSize())
	}
	for _, c := range []struct {
		prompt string
		ids    []int
	}{
		{"It was", []int{1, 689, 318}},
		{"Prince Andrew", []int{1, 484, 554}},
		{"Natasha", []int{1, 540}},
		{"", []int{1}},
	} {
		if got := tok.Encode(c.prompt, true); !reflect.DeepEqual(got, c.ids) {
			t.Errorf("Encode(%q) = %v, want %v", c.prompt, got, c.ids)
		}
	}
}

func TestByteTokens(t *testing.T) {
	tok := tolstoy(t)
	// Newline has no piece of its own: it is the byte token 0x0A + 3.
	ids := tok.Encode("a\nb", false)
	if !contains(ids, 13) {
		t.Errorf("Encode(a\\nb) = %v, want the newline byte token 13", ids)
	}
	// A character outside the vocabulary falls back to its UTF-8 bytes.
	ids = tok.Encode("ж", false)
	want := []int{943, 0xD0 + 3, 0xB6 + 3}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("Encode(ж) = %v, want %v", ids, want)
	}
	if p := tok.Piece(-1, 13); p != "\n" {
		t.Errorf("Piece(13) = %q", p)
	}
	if p := tok.Piece(-1, 1); p != "" {
		t.Errorf("BOS decodes to %q", p)
	}
	// é is a piece of its own (id 1023).
	if ids := tok.Encode("é", false); !reflect.DeepEqual(ids, []int{943, 1023}) {
		t.Errorf("Encode(é) = %v", ids)
	}
}

func contains(ids []int, id int) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func TestRoundTrip(t *testing.T) {
	tok := tolstoy(t)
	for _, s := range []string{
		"It was", "Prince Andrew", "Natasha", "", " ", "  leading spaces", "trailing ",
		"\"Well, you'll go to the Emperor,\" said the officer.",
		"line one\nline two\n\n", "tab\tand\rcarriage",
		"Pierre Bézukhov — «Наташа» 日本語 🙂", "naïve café", "\x00\x01\xff\xfe invalid UTF-8 \xc3",
		strings.Repeat("war and peace ", 40),
	} {
		ids := tok.Encode(s, true)
		if got := tok.Decode(ids); got != s {
			t.Errorf("Decode(Encode(%q)) = %q (ids %v)", s, got, ids)
		}
	}
}

// TestMergeMatchesQuadratic compares the heap-based merge with a direct
// transcription of run.c's quadratic loop.
func TestMergeMatchesQuadratic(t *testing.T) {
	tok := tolstoy(t)
	for _, s := range []string{
		"It was the best of times", "Prince Andrew Bolkónski said nothing at all.",
		"aaaaaaaaaaaaaaaa", "the the the the", "\"Yes, yes,\" he said; \"it is so!\"",
		"Pierre Bézukhov — «Наташа»",
	} {
		got := tok.Encode(s, true)
		want := quadraticEncode(tok, s)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: heap %v, quadratic %v", s, got, want)
		}
	}
}

func quadraticEncode(tok *tokenizer.Tokenizer, s string) []int {
	// Character tokens: take them from Encode of each character alone is
	// not possible (merges), so rebuild from the vocabulary.
	lookup := map[string]int{}
	for id := 0; id < tok.VocabSize(); id++ {
		p, _, k := tok.Token(id)
		if k == tokenizer.Normal || k == tokenizer.UserDefined {
			if _, dup := lookup[p]; !dup {
				lookup[p] = id
			}
		}
	}
	text := " " + s
	ids := []int{}
	for i := 0; i < len(text); {
		j := i + 1
		for j < len(text) && text[j]&0xC0 == 0x80 && j-i < 4 {
			j++
		}
		if id, ok := lookup[text[i:j]]; ok {
			ids = append(ids, id)
		} else {
			for k := i; k < j; k++ {
				ids = append(ids, int(text[k])+3)
			}
		}
		i = j
	}
	for {
		best, bestID, bestIdx := float32(-1e10), -1, -1
		for i := 0; i+1 < len(ids); i++ {
			a, _, _ := tok.Token(ids[i])
			b, _, _ := tok.Token(ids[i+1])
			if id, ok := lookup[a+b]; ok {
				if _, sc, _ := tok.Token(id); sc > best {
					best, bestID, bestIdx = sc, id, i
				}
			}
		}
		if bestIdx < 0 {
			break
		}
		ids[bestIdx] = bestID
		ids = append(ids[:bestIdx+1], ids[bestIdx+2:]...)
	}
	return append([]int{1}, ids...)
}

func TestRawBytePieces(t *testing.T) {
	// A vocabulary whose byte tokens are raw one-byte pieces rather than
	// "<0xXX>" strings.
	pieces := []string{"<unk>", "<s>", "</s>"}
	kinds := []tokenizer.Kind{tokenizer.Unknown, tokenizer.Control, tokenizer.Control}
	for b := 0; b < 256; b++ {
		pieces = append(pieces, string([]byte{byte(b)}))
		kinds = append(kinds, tokenizer.Byte)
	}
	pieces = append(pieces, " h", " hi")
	kinds = append(kinds, tokenizer.Normal, tokenizer.Normal)
	scores := make([]float32, len(pieces))
	scores[len(scores)-1] = 1
	tok, err := tokenizer.New(pieces, scores, kinds, tokenizer.Options{BOS: 1, EOS: 2, UNK: 0, AddSpacePrefix: true})
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.Encode("hi\xe6", true)
	if want := []int{1, 260, 0xe6 + 3}; !reflect.DeepEqual(ids, want) {
		t.Errorf("Encode = %v, want %v", ids, want)
	}
	if got := tok.Decode(ids); got != "hi\xe6" {
		t.Errorf("Decode = %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	good := models.TolstoyTokenizer
	if len(good) < 100 {
		t.Fatal("fixture")
	}
	for _, n := range []int{0, 3, 5, 11, 12 + 3, len(good) - 1} {
		if _, err := tokenizer.LoadLlama2C(good[:n]); !errors.Is(err, tokenizer.ErrTruncated) {
			t.Errorf("cut at %d: %v", n, err)
		}
	}
	bad := bytes.Clone(good)
	binary.LittleEndian.PutUint32(bad[8:], 1<<31-1) // first token length
	if _, err := tokenizer.LoadLlama2C(bad); !errors.Is(err, tokenizer.ErrTruncated) {
		t.Errorf("huge length: %v", err)
	}
	binary.LittleEndian.PutUint32(bad[8:], 0xffffffff) // -1
	if _, err := tokenizer.LoadLlama2C(bad); !errors.Is(err, tokenizer.ErrTruncated) {
		t.Errorf("negative length: %v", err)
	}
	bad = bytes.Clone(good)
	binary.LittleEndian.PutUint32(bad, 2) // max length smaller than "<unk>"
	if _, err := tokenizer.LoadLlama2C(bad); !errors.Is(err, tokenizer.ErrInvalid) {
		t.Errorf("max length: %v", err)
	}
	if _, err := tokenizer.New([]string{"a"}, []float32{0}, []tokenizer.Kind{tokenizer.Normal}, tokenizer.Options{BOS: 1}); !errors.Is(err, tokenizer.ErrInvalid) {
		t.Errorf("BOS outside vocabulary: %v", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	tok := tolstoy(t)
	if got := tok.MarshalLlama2C(); !bytes.Equal(got, models.TolstoyTokenizer) {
		t.Fatalf("MarshalLlama2C differs from the file it was loaded from")
	}
}

func BenchmarkEncode(b *testing.B) {
	tok := tolstoy(b)
	s := strings.Repeat("\"Well, Prince, so Genoa and Lucca are now just family estates of the Buonapartes.\" ", 4)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		tok.Encode(s, true)
	}
}

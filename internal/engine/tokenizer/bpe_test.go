package tokenizer

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// llama3Fixture is testdata/llama3.json: the Llama 3 vocabulary reduced to
// the tokens and merges its cases can reach (every merge whose two sides
// and concatenation occur inside one of the cases' words, so every merge
// the full vocabulary would consider is there in the same order, and the
// encodings are the full vocabulary's), with the ids the llama3-tokenizer-js
// package's encoder gives, renumbered. docs/ENGINE.md says how it was made.
type llama3Fixture struct {
	Pre     string   `json:"pre"`
	BOS     int      `json:"bos"`
	EOS     int      `json:"eos"`
	Tokens  []string `json:"tokens"`
	Kinds   []Kind   `json:"kinds"`
	Merges  []string `json:"merges"`
	Cases   []fixCase
	Special []fixCase
}

type fixCase struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

func loadLlama3(t testing.TB) (*Tokenizer, *llama3Fixture) {
	t.Helper()
	return loadFixture(t, "testdata/llama3.json")
}

// loadFixture reads a reduced vocabulary with its cases (llama3.json,
// qwen2.json).
func loadFixture(t testing.TB, path string) (*Tokenizer, *llama3Fixture) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f llama3Fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	tk, err := NewBPE(f.Tokens, f.Kinds, f.Merges, BPEOptions{BOS: f.BOS, EOS: f.EOS, Pre: f.Pre})
	if err != nil {
		t.Fatal(err)
	}
	return tk, &f
}

// TestLlama3Vocabulary encodes 65 tricky strings (whitespace runs, CRLF,
// digits of several scripts, contractions in both cases, code, twelve
// scripts, emoji with modifiers and joiners, combining marks, invisible
// characters) and checks the ids llama3-tokenizer-js gives, then decodes
// them back to the text.
func TestLlama3Vocabulary(t *testing.T) {
	tk, f := loadLlama3(t)
	if len(f.Cases) < 60 {
		t.Fatalf("fixture has %d cases", len(f.Cases))
	}
	for _, c := range f.Cases {
		got := tk.Encode(c.Text, false)
		if !slices.Equal(got, c.IDs) {
			t.Errorf("Encode(%q) = %v, want %v", c.Text, got, c.IDs)
		}
		if d := tk.Decode(got); d != c.Text {
			t.Errorf("Decode(Encode(%q)) = %q", c.Text, d)
		}
	}
	if got := tk.Encode("hi", true); got[0] != f.BOS {
		t.Errorf("Encode with BOS starts %v", got)
	}
}

// TestQwen2Vocabulary encodes the same 64 strings and a ChatML prompt with
// the Qwen vocabulary (testdata/qwen2.json: Qwen 3's, which has Qwen 2's
// byte-level BPE and qwen2 pre-tokenizer, reduced as llama3.json is) and
// checks the ids llama.cpp's llama-tokenize gave on a GGUF of the full
// vocabulary. Hugging Face's tokenizer agrees on all but one: it first
// applies the NFC normalisation of tokenizer.json, so "e" + U+0301
// becomes "é" there; llama.cpp (and this engine) do not normalise.
func TestQwen2Vocabulary(t *testing.T) {
	tk, f := loadFixture(t, "testdata/qwen2.json")
	if len(f.Cases) < 60 || len(f.Special) != 1 {
		t.Fatalf("fixture has %d cases, %d special", len(f.Cases), len(f.Special))
	}
	for _, c := range f.Cases {
		got := tk.Encode(c.Text, false)
		if !slices.Equal(got, c.IDs) && !(len(got) == 0 && len(c.IDs) == 0) {
			t.Errorf("Encode(%q) = %v, want %v", c.Text, got, c.IDs)
		}
		if d := tk.Decode(got); d != c.Text {
			t.Errorf("Decode(Encode(%q)) = %q", c.Text, d)
		}
	}
	for _, c := range f.Special {
		if got := tk.EncodeSpecial(c.Text, false); !slices.Equal(got, c.IDs) {
			t.Errorf("EncodeSpecial(%q) = %v, want %v", c.Text, got, c.IDs)
		}
	}
}

// TestLlama3SpecialTokens: EncodeSpecial turns the text of control tokens
// (a rendered chat template) into their ids as the reference does; Encode
// treats the same text as ordinary characters, so a prompt cannot forge a
// control token; control tokens decode to nothing.
func TestLlama3SpecialTokens(t *testing.T) {
	tk, f := loadLlama3(t)
	for _, c := range f.Special {
		if got := tk.EncodeSpecial(c.Text, false); !slices.Equal(got, c.IDs) {
			t.Errorf("EncodeSpecial(%q) = %v, want %v", c.Text, got, c.IDs)
		}
		plain := tk.Encode(c.Text, false)
		for _, id := range plain {
			if _, _, k := tk.Token(id); k == Control {
				t.Errorf("Encode(%q) produced control token %d", c.Text, id)
			}
		}
		if d := tk.Decode(plain); d != c.Text {
			t.Errorf("Decode(Encode(%q)) = %q", c.Text, d)
		}
	}
	if d := tk.Decode(tk.EncodeSpecial("text<|eot_id|>more", false)); d != "textmore" {
		t.Errorf("control token decoded as text: %q", d)
	}
}

// TestPreTokenizerSplits pins the words of each pre-tokenizer on strings
// where the alternatives of the expressions disagree.
func TestPreTokenizerSplits(t *testing.T) {
	cases := []struct {
		pre, text string
		want      []string
	}{
		{"llama-bpe", "1234567", []string{"123", "456", "7"}},
		{"qwen2", "1234", []string{"1", "2", "3", "4"}},
		{"gpt-2", "a 1234 b", []string{"a", " 1234", " b"}},
		{"llama-bpe", "a   b", []string{"a", "  ", " b"}},
		{"llama-bpe", "a  \n\n  b", []string{"a", "  \n\n", " ", " b"}},
		{"llama-bpe", "end   ", []string{"end", "   "}},
		{"llama-bpe", "I'M we'Ll", []string{"I", "'M", " we", "'Ll"}},
		{"gpt-2", "I'M we'll", []string{"I", "'", "M", " we", "'ll"}},
		{"llama-bpe", "x = (y);\n\nz", []string{"x", " =", " (", "y", ");\n\n", "z"}},
		{"llama-bpe", "$hello", []string{"$hello"}},
		{"gpt-2", "$hello", []string{"$", "hello"}},
		{"llama-bpe", "\thello", []string{"\thello"}},
		{"gpt-2", "\thello", []string{"\t", "hello"}},
		{"llama-bpe", "a\xffb", []string{"a", "\xffb"}},
		{"qwen2", "\r\n\r\nx", []string{"\r\n\r\n", "x"}},
	}
	for _, c := range cases {
		if got := preTokenizers[c.pre].split(c.text); !slices.Equal(got, c.want) {
			t.Errorf("%s split(%q) = %q, want %q", c.pre, c.text, got, c.want)
		}
	}
}

// TestBPEAddedTokens: user-defined (added) tokens are matched in any text,
// longest first, as llama.cpp's tokenizer_st_partition does, and decode
// to their text verbatim.
func TestBPEAddedTokens(t *testing.T) {
	var toks []string
	var kinds []Kind
	for b := range 256 {
		toks = append(toks, string(byteRune[b]))
		kinds = append(kinds, Normal)
	}
	toks = append(toks, "ab", "<tool>", "<tool_call>", "<|ctl|>")
	kinds = append(kinds, Normal, UserDefined, UserDefined, Control)
	tk, err := NewBPE(toks, kinds, []string{"a b"}, BPEOptions{Pre: "qwen2"})
	if err != nil {
		t.Fatal(err)
	}
	got := tk.Encode("ab<tool_call>x<tool><|ctl|>", false)
	want := []int{256, 258, 'x', 257}
	want = append(want, tk.Encode("<|ctl|>", false)...)
	if !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if d := tk.Decode(got); d != "ab<tool_call>x<tool><|ctl|>" {
		t.Errorf("Decode = %q", d)
	}
}

func TestNewBPEErrors(t *testing.T) {
	toks := []string{"a", "b", "ab"}
	kinds := []Kind{Normal, Normal, Normal}
	for _, c := range []struct {
		name   string
		merges []string
		opts   BPEOptions
		want   error
	}{
		{"unknown pre-tokenizer", nil, BPEOptions{Pre: "default"}, ErrUnsupportedPre},
		{"merge without a space", []string{"ab"}, BPEOptions{Pre: "gpt-2"}, ErrInvalid},
		{"BOS outside", nil, BPEOptions{Pre: "gpt-2", BOS: 3}, ErrInvalid},
	} {
		if _, err := NewBPE(toks, kinds, c.merges, c.opts); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := NewBPE(toks, kinds[:2], nil, BPEOptions{Pre: "gpt-2"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("kinds of another length: %v", err)
	}
}

// FuzzBPERoundTrip: any text, valid UTF-8 or not, decodes back to itself
// from the Llama 3 vocabulary, and EncodeSpecial agrees with Encode on
// text without control-token spellings.
func FuzzBPERoundTrip(f *testing.F) {
	tk, fx := loadLlama3(f)
	for _, c := range fx.Cases {
		f.Add(c.Text)
	}
	f.Add("\xff\xfe<|eot_id|>")
	f.Fuzz(func(t *testing.T, s string) {
		ids := tk.Encode(s, false)
		if d := tk.Decode(ids); d != s {
			t.Fatalf("Decode(Encode(%q)) = %q", s, d)
		}
		if !strings.Contains(s, "<|") && !slices.Equal(tk.EncodeSpecial(s, false), ids) {
			t.Fatalf("EncodeSpecial differs on %q", s)
		}
	})
}

// TestEncodeTemplateUntrustedSpans: the text of a control token that
// overlaps an untrusted span, even by one byte, is encoded as Encode
// encodes it; one that only touches a span is the control token; without
// spans EncodeTemplate is EncodeSpecial.
func TestEncodeTemplateUntrustedSpans(t *testing.T) {
	tk, _ := loadLlama3(t)
	const eot = "<|eot_id|>"
	eotID := tk.EncodeSpecial(eot, false)
	if len(eotID) != 1 {
		t.Fatalf("test premise: %q is %v", eot, eotID)
	}
	text := "a" + eot + "b" + eot // eot at [1, 11) and [12, 22)
	cases := []struct {
		name  string
		spans []Span
		want  []int
	}{
		{"none", nil, tk.EncodeSpecial(text, false)},
		{"first inside", []Span{{1, 11}}, concat(tk.Encode("a"+eot+"b", false), eotID)},
		{"one byte of the first", []Span{{10, 11}}, concat(tk.Encode("a"+eot+"b", false), eotID)},
		{"touching only", []Span{{0, 1}, {11, 12}}, tk.EncodeSpecial(text, false)},
		{"both", []Span{{0, len(text)}}, tk.Encode(text, false)},
	}
	for _, c := range cases {
		if got := tk.EncodeTemplate(text, c.spans, false); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func concat(a, b []int) []int { return append(slices.Clone(a), b...) }

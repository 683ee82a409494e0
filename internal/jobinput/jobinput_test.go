package jobinput_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/jobinput"
)

// words counts whitespace-separated words: a stand-in tokenizer.
type words struct{}

func (words) Count(s string) int { return len(strings.Fields(s)) }

func TestWholeFileFitsAndIsNamedByHash(t *testing.T) {
	data := []byte("region,sales\nnorth,10\nsouth,20\n")
	p, err := jobinput.Build("Analyze processed data for trends", data, "processed_data.csv", "ab12", jobinput.Budget{MaxBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	want := "Analyze processed data for trends\n\nInput data: processed_data.csv (sha256 ab12, 3 lines):\nregion,sales\nnorth,10\nsouth,20\n"
	if p.Text != want || p.Truncated || p.Note != "" || p.KeptLines != 3 || p.KeptBytes != len(data) {
		t.Fatalf("got %+v\n%q", p, p.Text)
	}
}

func TestTruncatesOnALineToTheContextAndSaysSo(t *testing.T) {
	var sb strings.Builder
	for range 100 {
		sb.WriteString("a b c d\n") // 4 words a line
	}
	// Prompt and header are 14 words; 60 - 20 reserved = 40 → 6 lines fit.
	b := jobinput.Budget{Counter: words{}, ContextTokens: 60, ReserveTokens: 20, MaxBytes: 1 << 20}
	var w words
	p, err := jobinput.Build("find the trend", []byte(sb.String()), "x.csv", "ff", b)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Count(p.Text); got > 40 || got+4 <= 40 {
		t.Fatalf("prompt is %d words: not the most that fits 40", got)
	}
	if !p.Truncated || p.KeptLines != 6 || !strings.Contains(p.Text, "the first 6 lines") ||
		p.Note != "input truncated: 6 of 100 lines (48 of 800 bytes) of x.csv fit the model's context of 60 tokens (20 kept for the answer)" {
		t.Fatalf("got %+v", p)
	}
	if !strings.HasSuffix(p.Text, "a b c d\n") {
		t.Fatal("cut inside a line")
	}
}

func TestBadInput(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		b    jobinput.Budget
		want error
	}{
		{"binary", []byte{0xff, 0xfe, 0x00}, jobinput.Budget{MaxBytes: 100}, jobinput.ErrNotText},
		{"empty", nil, jobinput.Budget{MaxBytes: 100}, jobinput.ErrEmpty},
		{"over the file limit", []byte("12345"), jobinput.Budget{MaxBytes: 100, MaxFileBytes: 4}, jobinput.ErrTooLarge},
		{"prompt alone fills the context", []byte("x\n"), jobinput.Budget{Counter: words{}, ContextTokens: 5, MaxBytes: 100}, jobinput.ErrNoRoom},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := jobinput.Build("a long prompt here", c.data, "f", "00", c.b); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

package verify

import (
	"errors"
	"slices"
	"testing"

	"github.com/aitbc/aitbc/internal/engine/tokenizer"
)

// TestAlignTokensEmptyToken: a token reported without bytes (llama-server's
// rendering of a sampled control token, "<s>" on the wide model) is left
// for RecomputeLogprobs to place among the control tokens; a token with
// bytes the vocabulary lacks is still ErrTokens.
func TestAlignTokensEmptyToken(t *testing.T) {
	pieces := []string{"<unk>", "<s>", "</s>", " the", " old", "<0x0A>", "<|im_end|>", "<unused0>"}
	kinds := []tokenizer.Kind{tokenizer.Unknown, tokenizer.Control, tokenizer.Control, tokenizer.Normal, tokenizer.Normal, tokenizer.Byte, tokenizer.Control, tokenizer.Unused}
	tok, err := tokenizer.New(pieces, make([]float32, len(pieces)), kinds, tokenizer.Options{BOS: 1, EOS: 2, UNK: 0, AddSpacePrefix: true})
	if err != nil {
		t.Fatal(err)
	}
	pos := []PositionLogprobs{{Token: []byte(" the")}, {Token: nil}, {Token: []byte(" old")}, {Token: []byte("\n")}}
	got, err := alignTokens(tok, pos)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{3, emptyToken, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("aligned %v, want %v", got, want)
	}
	// The candidates are the control, unknown and unused tokens (llama.cpp
	// renders them as nothing), in id order.
	if c, want := emptyCandidates(tok), []int{0, 1, 2, 6, 7}; !slices.Equal(c, want) {
		t.Errorf("candidates %v, want %v", c, want)
	}
	pos[2].Token = []byte(" prince")
	if _, err := alignTokens(tok, pos); !errors.Is(err, ErrTokens) {
		t.Errorf("unknown token: %v, want ErrTokens", err)
	}
}

func TestMaxEmptyTokens(t *testing.T) {
	for n, want := range map[int]int{1: 1, 8: 1, 9: 2, 64: 8, 65: 9} {
		if got := maxEmptyTokens(n); got != want {
			t.Errorf("maxEmptyTokens(%d) = %d, want %d", n, got, want)
		}
	}
}

// Package tokenizer implements the two tokenizers of LLaMA-family GGUF
// files: the SentencePiece-style BPE of llama2.c and Llama 2 ("llama"
// tokenizer model: pieces with merge scores, greedy highest-score pair
// merging with byte fallback, and the llama2.c tokenizer.bin format), and
// the byte-level BPE of GPT-2, Llama 3 and Qwen 2 ("gpt2": ranked merges
// after a pre-tokenizer, see bpe.go).
//
// Encoding follows llama2.c's run.c exactly: an optional BOS id, a dummy
// space prefix for non-empty text, one token per UTF-8 character (its bytes
// as byte tokens when the character is not in the vocabulary), then
// repeatedly merging the adjacent pair whose concatenation is the
// highest-scoring piece (leftmost on ties). Decoding turns byte tokens
// ("<0x0A>" or a raw one-byte piece) into bytes and strips the dummy space
// after BOS, so Decode(Encode(s, true)) == s for any string s when every
// byte has a byte token.
//
// Imported by package engine; it has no dependencies outside the standard
// library.
package tokenizer

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Errors returned when loading a vocabulary.
var (
	// ErrTruncated means a tokenizer.bin file ends inside an entry.
	ErrTruncated = errors.New("tokenizer: truncated file")
	// ErrInvalid means the vocabulary or its options are inconsistent.
	ErrInvalid = errors.New("tokenizer: invalid vocabulary")
	// ErrUnsupportedPre means a BPE vocabulary names a pre-tokenizer that
	// is not implemented.
	ErrUnsupportedPre = errors.New("tokenizer: unsupported pre-tokenizer")
)

// Kind classifies a vocabulary entry. The values are those of
// SentencePiece and of GGUF's tokenizer.ggml.token_type.
type Kind int32

// Token kinds.
const (
	Normal      Kind = 1 // text piece, takes part in encoding
	Unknown     Kind = 2 // <unk>
	Control     Kind = 3 // BOS, EOS and other markers; never produced from text
	UserDefined Kind = 4 // text piece
	Unused      Kind = 5 // never produced from text
	Byte        Kind = 6 // one raw byte (byte fallback)
)

// Options are the special ids and flags of a vocabulary.
type Options struct {
	BOS, EOS, UNK  int  // special token ids
	AddSpacePrefix bool // prepend a space to non-empty text ("dummy prefix")
}

// Tokenizer encodes text to token ids and back. It is immutable after
// construction and safe for concurrent use.
type Tokenizer struct {
	pieces  []string
	scores  []float32
	kinds   []Kind
	text    []string // decoded bytes of each token ("" for control tokens)
	lookup  map[string]int32
	byteID  [256]int32
	opts    Options
	maxLen  int
	hasByte bool
	bpe     *bpe // byte-level BPE state; nil for SentencePiece
	// specials are the ids whose text EncodeSpecial turns into them
	// (control tokens; user-defined ones too for BPE), longest text first.
	specials []int32
}

// New builds a tokenizer from parallel slices of pieces, merge scores and
// kinds; it keeps pieces and scores, which must not change afterwards. A Byte piece is either "<0xXX>" or a single raw byte; a Normal
// piece of one byte also serves as that byte's fallback token when no Byte
// piece for it exists.
func New(pieces []string, scores []float32, kinds []Kind, opts Options) (*Tokenizer, error) {
	n := len(pieces)
	if n == 0 || len(scores) != n || len(kinds) != n {
		return nil, fmt.Errorf("%w: %d pieces, %d scores, %d kinds", ErrInvalid, n, len(scores), len(kinds))
	}
	for name, id := range map[string]int{"BOS": opts.BOS, "EOS": opts.EOS, "UNK": opts.UNK} {
		if id < 0 || id >= n {
			return nil, fmt.Errorf("%w: %s id %d outside a vocabulary of %d", ErrInvalid, name, id, n)
		}
	}
	kinds = append([]Kind(nil), kinds...)
	t := &Tokenizer{
		pieces: pieces,
		scores: scores,
		kinds:  kinds,
		text:   make([]string, n),
		lookup: make(map[string]int32, n),
		opts:   opts,
	}
	for i := range t.byteID {
		t.byteID[i] = -1
	}
	rawByte := [256]int32{}
	for i := range rawByte {
		rawByte[i] = -1
	}
	for id, p := range pieces {
		t.maxLen = max(t.maxLen, len(p))
		k := kinds[id]
		if k < Normal || k > Byte {
			return nil, fmt.Errorf("%w: token %d has kind %d", ErrInvalid, id, k)
		}
		if b, ok := hexByte(p); ok && (k == Byte || k == Normal) {
			// "<0xXX>" is a byte token whatever its declared kind.
			t.kinds[id] = Byte
			if t.byteID[b] < 0 {
				t.byteID[b] = int32(id)
			}
			t.text[id] = string([]byte{b})
			t.hasByte = true
			continue
		}
		if k == Byte && len(p) != 1 {
			return nil, fmt.Errorf("%w: byte token %d is %q, want <0xXX> or one byte", ErrInvalid, id, p)
		}
		switch k {
		case Control, Unknown, Unused:
			continue
		}
		if len(p) == 1 && rawByte[p[0]] < 0 {
			rawByte[p[0]] = int32(id)
		}
		t.text[id] = p
		if _, dup := t.lookup[p]; !dup && p != "" {
			t.lookup[p] = int32(id)
		}
	}
	for b := range t.byteID {
		if t.byteID[b] < 0 {
			t.byteID[b] = rawByte[b]
		}
	}
	for id, p := range pieces {
		if t.kinds[id] == Control && p != "" {
			t.specials = append(t.specials, int32(id))
		}
	}
	slices.SortStableFunc(t.specials, func(a, b int32) int { return len(pieces[b]) - len(pieces[a]) })
	return t, nil
}

// hexByte parses a "<0xXX>" piece.
func hexByte(p string) (byte, bool) {
	if len(p) != 6 || p[:3] != "<0x" || p[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range []byte(p[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		case c >= 'a' && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.pieces) }

// Options returns the special ids and flags.
func (t *Tokenizer) Options() Options { return t.opts }

// BOS is the beginning-of-sequence id.
func (t *Tokenizer) BOS() int { return t.opts.BOS }

// EOS is the end-of-sequence id.
func (t *Tokenizer) EOS() int { return t.opts.EOS }

// Token returns the stored piece, score and kind of id.
func (t *Tokenizer) Token(id int) (piece string, score float32, kind Kind) {
	return t.pieces[id], t.scores[id], t.kinds[id]
}

// Encode returns the token ids of text, preceded by BOS when bos is true.
func (t *Tokenizer) Encode(text string, bos bool) []int {
	if t.bpe != nil {
		return t.encodeBPE(text, bos, false, nil)
	}
	ids := make([]int, 0, len(text)+2)
	if bos {
		ids = append(ids, t.opts.BOS)
	}
	return t.encodeSPM(ids, text, t.opts.AddSpacePrefix)
}

// encodeSPM appends the SentencePiece encoding of text to ids, with a
// leading space when prefix is set and text is not empty.
func (t *Tokenizer) encodeSPM(ids []int, text string, prefix bool) []int {
	if text == "" {
		return ids
	}
	if prefix {
		text = " " + text
	}
	start := len(ids)
	// One token per UTF-8 character, as run.c groups bytes: a lead byte
	// followed by at most three continuation bytes.
	for i := 0; i < len(text); {
		j := i + 1
		for j < len(text) && text[j]&0xC0 == 0x80 && j-i < 4 {
			j++
		}
		if id, ok := t.lookup[text[i:j]]; ok {
			ids = append(ids, int(id))
		} else {
			for k := i; k < j; k++ {
				ids = append(ids, t.byteToken(text[k]))
			}
		}
		i = j
	}
	return append(ids[:start], t.merge(ids[start:])...)
}

func (t *Tokenizer) byteToken(b byte) int {
	if id := t.byteID[b]; id >= 0 {
		return int(id)
	}
	return t.opts.UNK
}

// minMergeScore is run.c's starting best score: pieces scoring at or below
// it are never merged.
const minMergeScore = -1e10

// merge applies the highest-score-first merges to ids. It gives the same
// result as run.c's quadratic loop (best score, leftmost on ties) using a
// heap of candidate pairs over a linked list.
func (t *Tokenizer) merge(ids []int) []int {
	n := len(ids)
	if n < 2 {
		return ids
	}
	next := make([]int, n)
	prev := make([]int, n)
	for i := range ids {
		next[i], prev[i] = i+1, i-1
	}
	next[n-1] = -1
	h := &pairHeap{}
	buf := make([]byte, 0, 2*t.maxLen+1)
	push := func(l int) {
		r := next[l]
		if l < 0 || r < 0 {
			return
		}
		var s float32
		if t.bpe != nil {
			var ok bool
			if s, ok = t.bpeRank(buf, ids[l], ids[r]); !ok {
				return
			}
		}
		buf = append(append(buf[:0], t.pieces[ids[l]]...), t.pieces[ids[r]]...)
		id, ok := t.lookup[string(buf)]
		if !ok {
			return
		}
		if t.bpe == nil {
			s = t.scores[id]
		}
		if !(s > minMergeScore) {
			return
		}
		heap.Push(h, pair{score: s, left: l, leftID: ids[l], rightID: ids[r], merged: int(id)})
	}
	for i := 0; i < n-1; i++ {
		push(i)
	}
	alive := make([]bool, n)
	for i := range alive {
		alive[i] = true
	}
	for h.Len() > 0 {
		p := heap.Pop(h).(pair)
		l := p.left
		r := next[l]
		if !alive[l] || r < 0 || ids[l] != p.leftID || ids[r] != p.rightID {
			continue // stale: one side has merged since this pair was queued
		}
		ids[l] = p.merged
		alive[r] = false
		next[l] = next[r]
		if next[r] >= 0 {
			prev[next[r]] = l
		}
		if prev[l] >= 0 {
			push(prev[l])
		}
		push(l)
	}
	out := ids[:0]
	for i := 0; i >= 0; i = next[i] {
		out = append(out, ids[i])
	}
	return out
}

type pair struct {
	score           float32
	left            int // index of the left token in the original sequence
	leftID, rightID int // the tokens this pair was computed from
	merged          int
}

type pairHeap []pair

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	if h[i].score != h[j].score {
		return h[i].score > h[j].score
	}
	return h[i].left < h[j].left
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pair)) }
func (h *pairHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Piece returns the text of token id when it follows token prev (use -1
// for none): the bytes of a byte token, nothing for control tokens, and the
// piece without its leading space right after BOS when the vocabulary adds
// a space prefix. The result may be part of a UTF-8 sequence that later
// byte tokens complete. It does not allocate.
func (t *Tokenizer) Piece(prev, id int) string {
	if id < 0 || id >= len(t.text) {
		return ""
	}
	s := t.text[id]
	if prev == t.opts.BOS && t.opts.AddSpacePrefix && len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	return s
}

// Decode returns the text of a token sequence.
func (t *Tokenizer) Decode(ids []int) string {
	var b strings.Builder
	prev := -1
	for _, id := range ids {
		b.WriteString(t.Piece(prev, id))
		prev = id
	}
	return b.String()
}

// LoadLlama2C parses a llama2.c tokenizer.bin: a uint32 maximum piece
// length, then for each token a float32 score, an int32 byte length and the
// piece bytes, up to the end of the file. Ids 0, 1 and 2 are <unk>, BOS and
// EOS as in llama2.c; "<0xXX>" pieces are byte tokens.
func LoadLlama2C(b []byte) (*Tokenizer, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %d bytes, want at least a 4-byte header", ErrTruncated, len(b))
	}
	le := binary.LittleEndian
	maxLen := le.Uint32(b)
	var pieces []string
	var scores []float32
	for off := 4; off < len(b); {
		if len(b)-off < 8 {
			return nil, fmt.Errorf("%w: token %d header at offset %d", ErrTruncated, len(pieces), off)
		}
		score := math.Float32frombits(le.Uint32(b[off:]))
		n := int32(le.Uint32(b[off+4:]))
		off += 8
		if n < 0 || int64(n) > int64(len(b)-off) {
			return nil, fmt.Errorf("%w: token %d claims %d bytes at offset %d, %d left", ErrTruncated, len(pieces), n, off, len(b)-off)
		}
		if uint32(n) > maxLen {
			return nil, fmt.Errorf("%w: token %d is %d bytes, longer than the declared maximum %d", ErrInvalid, len(pieces), n, maxLen)
		}
		pieces = append(pieces, string(b[off:off+int(n)]))
		scores = append(scores, score)
		off += int(n)
	}
	if len(pieces) < 3 {
		return nil, fmt.Errorf("%w: %d tokens, want at least <unk>, BOS and EOS", ErrInvalid, len(pieces))
	}
	kinds := make([]Kind, len(pieces))
	for i, p := range pieces {
		switch {
		case i == 0:
			kinds[i] = Unknown
		case i <= 2:
			kinds[i] = Control
		default:
			kinds[i] = Normal
			if _, ok := hexByte(p); ok {
				kinds[i] = Byte
			}
		}
	}
	return New(pieces, scores, kinds, Options{BOS: 1, EOS: 2, UNK: 0, AddSpacePrefix: true})
}

// MarshalLlama2C encodes the vocabulary in llama2.c's tokenizer.bin format.
func (t *Tokenizer) MarshalLlama2C() []byte {
	size := 4
	for _, p := range t.pieces {
		size += 8 + len(p)
	}
	b := make([]byte, 4, size)
	binary.LittleEndian.PutUint32(b, uint32(t.maxLen))
	for i, p := range t.pieces {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(t.scores[i]))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

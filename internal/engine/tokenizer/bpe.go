package tokenizer

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Byte-level BPE, GGUF's tokenizer.ggml.model = "gpt2" (Llama 3, Qwen 2,
// Mistral-Nemo and most current models), as llama.cpp's llama-vocab.cpp
// runs it:
//
//  1. The text is split around special tokens: user-defined (added) tokens
//     always, control tokens only with EncodeSpecial. As llama.cpp does,
//     the special tokens are tried longest first, each over the fragments
//     the longer ones left.
//  2. Each remaining fragment is cut into words by the pre-tokenizer that
//     tokenizer.ggml.pre names (see preTokenizers).
//  3. Each word's bytes are mapped to the printable characters GPT-2's
//     bytes_to_unicode uses, one character per byte, and the adjacent pair
//     of lowest merge rank (tokenizer.ggml.merges, "left right", rank =
//     index) is merged until none applies, leftmost first on equal ranks.
//     With ignore_merges (the llama-bpe family) a word that is itself a
//     token is taken whole first.
//
// Decoding maps a normal token's characters back to bytes and gives a
// user-defined token's text as is; control tokens decode to nothing.

// preTokenizer is a word-splitting rule (GGUF tokenizer.ggml.pre).
type preTokenizer struct {
	digits       int  // longest run of digits in one word (0: unbounded, GPT-2's " ?\p{N}+")
	llama3       bool // Llama 3's rules; false: GPT-2's
	ignoreMerges bool
}

// preTokenizers are the tokenizer.ggml.pre values implemented, with
// llama.cpp's regular expressions:
//
//	llama-bpe (llama3, llama-v3, falcon3, pixtral): (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])
//	    |[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//	qwen2 (stablelm2): the same with \p{N} (one digit per word)
//	gpt-2 (and "default" here): 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// llama.cpp's "default" adds three more expressions (punctuation runs,
// digits); it is refused rather than approximated.
var preTokenizers = map[string]preTokenizer{
	"llama-bpe": {digits: 3, llama3: true, ignoreMerges: true},
	"llama3":    {digits: 3, llama3: true, ignoreMerges: true},
	"llama-v3":  {digits: 3, llama3: true, ignoreMerges: true},
	"falcon3":   {digits: 3, llama3: true, ignoreMerges: true},
	"pixtral":   {digits: 3, llama3: true, ignoreMerges: true},
	"qwen2":     {digits: 1, llama3: true},
	"stablelm2": {digits: 1, llama3: true},
	"gpt-2":     {},
}

// PreTokenizers lists the implemented tokenizer.ggml.pre names.
func PreTokenizers() []string {
	names := make([]string, 0, len(preTokenizers))
	for n := range preTokenizers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// bpe is the byte-level state of a Tokenizer built by NewBPE.
type bpe struct {
	preName string
	merges  []string
	pre     preTokenizer
	ranks   map[string]int32 // "left right" -> merge rank
	byteTok [256]int32       // token of each single byte's character, -1 if none
}

// byteRune is GPT-2's bytes_to_unicode: printable bytes stand for
// themselves, the others for U+0100 onwards in byte order.
var byteRune, runeByte = func() ([256]rune, map[rune]byte) {
	var br [256]rune
	rb := make(map[rune]byte, 256)
	n := 0
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff) {
			br[b] = rune(b)
		} else {
			br[b] = rune(256 + n)
			n++
		}
		rb[br[b]] = byte(b)
	}
	return br, rb
}()

// BPEOptions configure NewBPE.
type BPEOptions struct {
	BOS, EOS, UNK int
	Pre           string // tokenizer.ggml.pre
}

// NewBPE builds a byte-level BPE tokenizer from GGUF's token strings (in
// bytes_to_unicode form), kinds and merges ("left right", most preferred
// first). It keeps tokens, which must not change afterwards.
func NewBPE(tokens []string, kinds []Kind, merges []string, opts BPEOptions) (*Tokenizer, error) {
	n := len(tokens)
	if n == 0 || len(kinds) != n {
		return nil, fmt.Errorf("%w: %d tokens, %d kinds", ErrInvalid, n, len(kinds))
	}
	pre, ok := preTokenizers[opts.Pre]
	if !ok {
		return nil, fmt.Errorf("%w: pre-tokenizer %q (implemented: %s)", ErrUnsupportedPre, opts.Pre, strings.Join(PreTokenizers(), ", "))
	}
	for name, id := range map[string]int{"BOS": opts.BOS, "EOS": opts.EOS, "UNK": opts.UNK} {
		if id < 0 || id >= n {
			return nil, fmt.Errorf("%w: %s id %d outside a vocabulary of %d", ErrInvalid, name, id, n)
		}
	}
	t := &Tokenizer{
		pieces: tokens,
		scores: make([]float32, n),
		kinds:  append([]Kind(nil), kinds...),
		text:   make([]string, n),
		lookup: make(map[string]int32, n),
		opts:   Options{BOS: opts.BOS, EOS: opts.EOS, UNK: opts.UNK},
		bpe:    &bpe{preName: opts.Pre, merges: merges, pre: pre, ranks: make(map[string]int32, len(merges))},
	}
	for id, p := range tokens {
		t.maxLen = max(t.maxLen, len(p))
		switch k := t.kinds[id]; k {
		case Normal, Byte:
			t.kinds[id] = Normal
			t.text[id] = unmapBytes(p)
			if _, dup := t.lookup[p]; !dup && p != "" {
				t.lookup[p] = int32(id)
			}
		case UserDefined:
			t.text[id] = p
			if p != "" {
				t.specials = append(t.specials, int32(id))
			}
		case Control:
			if p != "" {
				t.specials = append(t.specials, int32(id))
			}
		case Unknown, Unused:
		default:
			return nil, fmt.Errorf("%w: token %d has kind %d", ErrInvalid, id, k)
		}
	}
	// Longest first; equal lengths by id, so the order is deterministic.
	slices.SortStableFunc(t.specials, func(a, b int32) int { return len(tokens[b]) - len(tokens[a]) })
	for b := range 256 {
		t.bpe.byteTok[b] = -1
		if id, ok := t.lookup[string(byteRune[b])]; ok {
			t.bpe.byteTok[b] = id
		}
	}
	for i, m := range merges {
		l, r, ok := strings.Cut(m, " ")
		if !ok || l == "" || r == "" {
			return nil, fmt.Errorf("%w: merge %d is %q, want \"left right\"", ErrInvalid, i, m)
		}
		if _, dup := t.bpe.ranks[m]; !dup {
			t.bpe.ranks[m] = int32(i)
		}
	}
	return t, nil
}

// unmapBytes turns a token's bytes_to_unicode characters back into bytes;
// a character outside the table (a malformed vocabulary) stays as it is.
func unmapBytes(p string) string {
	b := make([]byte, 0, len(p))
	for _, r := range p {
		if c, ok := runeByte[r]; ok {
			b = append(b, c)
		} else {
			b = utf8.AppendRune(b, r)
		}
	}
	return string(b)
}

// fragment is a piece of the text: raw text to pre-tokenize, or a special
// token already decided.
type fragment struct {
	text string
	id   int32 // -1 for raw text
	off  int   // byte offset of text in the whole input
}

// Span is a byte range [Start, End) of a text.
type Span struct{ Start, End int }

// overlaps reports whether [a, b) overlaps one of spans.
func overlaps(a, b int, spans []Span) bool {
	for _, s := range spans {
		if a < s.End && s.Start < b {
			return true
		}
	}
	return false
}

// splitSpecial is llama.cpp's tokenizer_st_partition. Control tokens are
// recognised only when parseControl is set, and never where they overlap
// one of the untrusted spans.
func (t *Tokenizer) splitSpecial(text string, parseControl bool, untrusted []Span) []fragment {
	frags := []fragment{{text: text, id: -1}}
	for _, id := range t.specials {
		control := t.kinds[id] == Control
		if control && !parseControl {
			continue
		}
		sp := t.pieces[id]
		var out []fragment
		for _, f := range frags {
			if f.id >= 0 || !strings.Contains(f.text, sp) {
				out = append(out, f)
				continue
			}
			start, pos := 0, 0 // pending raw text starts at start; search from pos
			for {
				i := strings.Index(f.text[pos:], sp)
				if i < 0 {
					break
				}
				at := pos + i
				if control && overlaps(f.off+at, f.off+at+len(sp), untrusted) {
					pos = at + 1 // stays text: a user's words cannot end a turn
					continue
				}
				if at > start {
					out = append(out, fragment{text: f.text[start:at], id: -1, off: f.off + start})
				}
				out = append(out, fragment{id: id})
				start = at + len(sp)
				pos = start
			}
			if start < len(f.text) {
				out = append(out, fragment{text: f.text[start:], id: -1, off: f.off + start})
			}
		}
		frags = out
	}
	return frags
}

// encodeBPE is Encode for a byte-level BPE vocabulary.
func (t *Tokenizer) encodeBPE(text string, bos, parseControl bool, untrusted []Span) []int {
	ids := make([]int, 0, len(text)/3+2)
	if bos {
		ids = append(ids, t.opts.BOS)
	}
	var word []int
	var mapped []byte
	for _, f := range t.splitSpecial(text, parseControl, untrusted) {
		if f.id >= 0 {
			ids = append(ids, int(f.id))
			continue
		}
		for _, w := range t.bpe.pre.split(f.text) {
			mapped = mapped[:0]
			for i := 0; i < len(w); i++ {
				mapped = utf8.AppendRune(mapped, byteRune[w[i]])
			}
			if t.bpe.pre.ignoreMerges {
				if id, ok := t.lookup[string(mapped)]; ok {
					ids = append(ids, int(id))
					continue
				}
			}
			word = word[:0]
			for i := 0; i < len(w); i++ {
				id := t.bpe.byteTok[w[i]]
				if id < 0 {
					id = int32(t.opts.UNK)
				}
				word = append(word, int(id))
			}
			ids = append(ids, t.merge(word)...)
		}
	}
	return ids
}

// BPE reports whether t is a byte-level BPE vocabulary and, if so, its
// pre-tokenizer name and merges (not to be modified), for writing it back
// to GGUF.
func (t *Tokenizer) BPE() (pre string, merges []string, ok bool) {
	if t.bpe == nil {
		return "", nil, false
	}
	return t.bpe.preName, t.bpe.merges, true
}

// EncodeSpecial is Encode that also turns the text of control tokens (for
// example "<|eot_id|>" in a rendered chat template, or "</s>" in a Llama 2
// one) into those tokens. Encode never produces a control token from
// text, so a user's prompt cannot forge one.
func (t *Tokenizer) EncodeSpecial(text string, bos bool) []int {
	return t.EncodeTemplate(text, nil, bos)
}

// EncodeTemplate is EncodeSpecial for a rendered chat template whose
// untrusted spans (the messages' roles and contents) must not produce
// control tokens: there the text of one is encoded as plain text, as
// Encode would. Apart from that the result is EncodeSpecial's, so a chat
// without such text is tokenized exactly as llama.cpp tokenizes the whole
// rendered string.
func (t *Tokenizer) EncodeTemplate(text string, untrusted []Span, bos bool) []int {
	if t.bpe != nil {
		return t.encodeBPE(text, bos, true, untrusted)
	}
	// SentencePiece as llama.cpp: each stretch of text between control
	// tokens is encoded on its own, with the space prefix at the start
	// and after each control token.
	ids := make([]int, 0, len(text)+2)
	if bos {
		ids = append(ids, t.opts.BOS)
	}
	prevSpecial := true
	for _, f := range t.splitSpecial(text, true, untrusted) {
		if f.id >= 0 {
			ids = append(ids, int(f.id))
			prevSpecial = true
			continue
		}
		ids = t.encodeSPM(ids, f.text, t.opts.AddSpacePrefix && prevSpecial)
		prevSpecial = false
	}
	return ids
}

// bpeRank is the merge score of the pair (l, r) of tokens: higher is
// preferred, so it is the negated rank.
func (t *Tokenizer) bpeRank(buf []byte, l, r int) (float32, bool) {
	buf = append(append(append(buf[:0], t.pieces[l]...), ' '), t.pieces[r]...)
	rank, ok := t.bpe.ranks[string(buf)]
	return -float32(rank), ok
}

type runeClass uint8

const (
	classOther runeClass = iota
	classLetter
	classNumber
	classSpace
)

// classify reads the character at s[i:]. A byte that does not start valid
// UTF-8 is one character of class other, so every byte of the text ends in
// exactly one word and decoding gives the text back.
func classify(s string, i int) (runeClass, rune, int) {
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n <= 1 {
		return classOther, r, 1
	}
	switch {
	case unicode.IsLetter(r):
		return classLetter, r, n
	case unicode.IsNumber(r):
		return classNumber, r, n
	case unicode.IsSpace(r):
		return classSpace, r, n
	}
	return classOther, r, n
}

// split cuts text into words by the pre-tokenizer's expression; each
// branch below is one alternative, tried in the expression's order.
func (p preTokenizer) split(text string) []string {
	var words []string
	at := func(i int) (runeClass, rune, int) {
		if i >= len(text) {
			return 255, 0, 0
		}
		return classify(text, i)
	}
	// run returns the end of the run of characters of class c from i.
	run := func(i int, c runeClass, limit int) int {
		for k := 0; i < len(text) && (limit == 0 || k < limit); k++ {
			cc, _, n := classify(text, i)
			if cc != c {
				break
			}
			i += n
		}
		return i
	}
	for i := 0; i < len(text); {
		c, r, n := at(i)
		end := 0
		switch {
		case r == '\'' && c == classOther:
			end = p.contraction(text, i)
		}
		if end == 0 {
			end = p.word(text, i, c, r, n, at, run)
		}
		words = append(words, text[i:end])
		i = end
	}
	return words
}

// contraction matches 's 't 're 've 'm 'll 'd at i (any case for Llama 3),
// returning the end or 0.
func (p preTokenizer) contraction(text string, i int) int {
	rest := text[i+1:]
	if !p.llama3 {
		for _, s := range []string{"s", "t", "re", "ve", "m", "ll", "d"} {
			if strings.HasPrefix(rest, s) {
				return i + 1 + len(s)
			}
		}
		return 0
	}
	for _, s := range []string{"s", "t", "re", "ve", "m", "ll", "d"} {
		if len(rest) >= len(s) && strings.EqualFold(rest[:len(s)], s) && isASCIILetters(rest[:len(s)]) {
			return i + 1 + len(s)
		}
	}
	return 0
}

func isASCIILetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// word matches the alternatives after the contractions at i, where the
// character is r of class c and n bytes.
func (p preTokenizer) word(text string, i int, c runeClass, r rune, n int,
	at func(int) (runeClass, rune, int), run func(int, runeClass, int) int) int {
	nc, _, _ := at(i + n)
	if p.llama3 {
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if c == classLetter {
			return run(i, classLetter, 0)
		}
		if c != classNumber && r != '\r' && r != '\n' && nc == classLetter {
			return run(i+n, classLetter, 0)
		}
		// \p{N}{1,digits}
		if c == classNumber {
			return run(i, classNumber, p.digits)
		}
		// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
		if c == classOther || (r == ' ' && nc == classOther) {
			j := i
			if r == ' ' {
				j += n
			}
			j = run(j, classOther, 0)
			for j < len(text) && (text[j] == '\r' || text[j] == '\n') {
				j++
			}
			return j
		}
		// \s*[\r\n]+: through the last newline of the whitespace run.
		end := run(i, classSpace, 0)
		if k := strings.LastIndexAny(text[i:end], "\r\n"); k >= 0 {
			return i + k + 1
		}
		return spaceRun(text, i, end)
	}
	// GPT-2: ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
	start, cc := i, c
	if r == ' ' && (nc == classLetter || nc == classNumber || nc == classOther) {
		start, cc = i+n, nc
	}
	if cc != classSpace {
		return run(start, cc, 0)
	}
	return spaceRun(text, i, run(i, classSpace, 0))
}

// spaceRun is \s+(?!\S)|\s+ for the whitespace run text[i:end]: all of it
// at the end of the text, else all but its last character (which then
// leads the next word), or the one character when that is all there is.
func spaceRun(text string, i, end int) int {
	if end == len(text) {
		return end
	}
	_, last := utf8.DecodeLastRuneInString(text[i:end])
	if end-last > i {
		return end - last
	}
	return end
}

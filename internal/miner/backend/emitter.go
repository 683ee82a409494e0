package backend

import (
	"strings"
	"unicode/utf8"
)

// emitter turns token pieces into the text a client sees, for a backend
// that does its own stop sequences (the built-in one). It holds back an
// incomplete UTF-8 sequence until the bytes that complete it arrive (a
// byte-fallback token is one byte of a character), and text that may be
// the beginning of a stop sequence until it can tell. When a stop sequence
// appears it emits the text before it and reports the match; the stop
// sequence and anything after it are dropped.
type emitter struct {
	stops   []string
	emit    func(string) error // may be nil
	pending string             // received, not yet emitted
	out     strings.Builder    // emitted
	cbErr   error              // what emit returned, if it failed
}

func newEmitter(stops []string, emit func(string) error) *emitter {
	e := &emitter{emit: emit}
	for _, s := range stops {
		if s != "" {
			e.stops = append(e.stops, s)
		}
	}
	return e
}

// write adds a piece. It reports whether a stop sequence matched, and the
// callback's error if it failed (after which the emitter must not be used).
func (e *emitter) write(piece string) (stopped bool, err error) {
	e.pending += piece
	first := -1
	for _, s := range e.stops {
		if i := strings.Index(e.pending, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	if first >= 0 {
		err := e.send(e.pending[:first])
		e.pending = ""
		return true, err
	}
	hold := incompleteUTF8Tail(e.pending)
	for _, s := range e.stops {
		for k := min(len(s)-1, len(e.pending)); k > hold; k-- {
			if strings.HasSuffix(e.pending, s[:k]) {
				hold = k
				break
			}
		}
	}
	n := len(e.pending) - hold
	err = e.send(e.pending[:n])
	e.pending = e.pending[n:]
	return false, err
}

// flush emits whatever is held back (the generation ended).
func (e *emitter) flush() error {
	err := e.send(e.pending)
	e.pending = ""
	return err
}

func (e *emitter) send(s string) error {
	if s == "" {
		return nil
	}
	e.out.WriteString(s)
	if e.emit == nil {
		return nil
	}
	if err := e.emit(s); err != nil {
		e.cbErr = err
		return err
	}
	return nil
}

// text is everything emitted so far.
func (e *emitter) text() string { return e.out.String() }

// incompleteUTF8Tail is the length of an unfinished UTF-8 sequence at the
// end of s (0 when s ends on a character boundary or with invalid bytes,
// which no later byte could complete).
func incompleteUTF8Tail(s string) int {
	for i := 1; i <= utf8.UTFMax-1 && i <= len(s); i++ {
		c := s[len(s)-i]
		if c < utf8.RuneSelf {
			return 0 // ASCII: complete
		}
		if utf8.RuneStart(c) {
			if utf8.FullRuneInString(s[len(s)-i:]) {
				return 0
			}
			return i
		}
	}
	return 0
}

package backend

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// newLineScanner reads lines ("\n" or "\r\n" ended, the last one possibly
// unterminated) of up to maxLine bytes.
func newLineScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	return sc
}

// scanErr names a too-long line.
func scanErr(err error) error {
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("a line longer than %d bytes", maxLine)
	}
	return err
}

// sseEvent is one server-sent event: its type ("" for the default
// "message") and its data lines joined with "\n".
type sseEvent struct {
	Event string
	Data  string
}

// sseReader splits a text/event-stream into events, following the
// WHATWG rules that matter here: "field: value" lines (one leading space of
// the value dropped, "data:" lines accumulated), comments (":" lines, used
// as keep-alives) skipped, a blank line ending the event. Two leniencies:
// an event still open at the end of the stream is delivered, and a line
// with the non-standard field "error" (what some llama.cpp server builds
// send for a failure mid-stream) is delivered at once as an event of type
// "error".
type sseReader struct {
	sc    *bufio.Scanner
	event string
	data  bytes.Buffer
	has   bool // at least one data line in the current event
	err   error
}

func newSSEReader(r io.Reader) *sseReader { return &sseReader{sc: newLineScanner(r)} }

// Next returns the next event, io.EOF after the last one, or the read
// error.
func (s *sseReader) Next() (sseEvent, error) {
	if s.err != nil {
		return sseEvent{}, s.err
	}
	for s.sc.Scan() {
		line := s.sc.Bytes()
		if len(line) == 0 {
			if ev, ok := s.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "data":
			s.data.Write(value)
			s.data.WriteByte('\n')
			s.has = true
		case "event":
			s.event = string(value)
		case "error":
			s.reset()
			return sseEvent{Event: "error", Data: string(value)}, nil
		}
	}
	s.err = io.EOF
	if err := s.sc.Err(); err != nil {
		s.err = scanErr(err)
	}
	if ev, ok := s.dispatch(); ok {
		return ev, nil
	}
	return sseEvent{}, s.err
}

func (s *sseReader) dispatch() (sseEvent, bool) {
	if !s.has {
		s.reset()
		return sseEvent{}, false
	}
	d := s.data.Bytes()
	ev := sseEvent{Event: s.event, Data: string(d[:len(d)-1])}
	s.reset()
	return ev, true
}

func (s *sseReader) reset() {
	s.event = ""
	s.data.Reset()
	s.has = false
}

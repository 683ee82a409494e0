package backend

import (
	"strings"
	"testing"
)

func TestEmitter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pieces  []string
		stops   []string
		emitted []string // what the callback receives
		stopped bool
	}{
		{"plain", []string{"a", "b", "c"}, nil, []string{"a", "b", "c"}, false},
		{"utf8 split over byte tokens", []string{"caf", "\xc3", "\xa9", "!"}, nil, []string{"caf", "é", "!"}, false},
		{"4-byte rune in pieces", []string{"\xf0\x9f", "\x98", "\x80x"}, nil, []string{"😀x"}, false},
		{"invalid byte passes through", []string{"a\xff", "b"}, nil, []string{"a\xff", "b"}, false},
		{"incomplete at end is flushed", []string{"a", "\xe2\x82"}, nil, []string{"a", "\xe2\x82"}, false},
		{"stop inside a piece", []string{"Hello END world"}, []string{"END"}, []string{"Hello "}, true},
		{"stop across pieces", []string{"Hello E", "N", "D world"}, []string{"END"}, []string{"Hello "}, true},
		{"false start is released", []string{"Hello E", "nough"}, []string{"END"}, []string{"Hello ", "Enough"}, false},
		{"earliest of two stops", []string{"xx B yy A"}, []string{"A", "B"}, []string{"xx "}, true},
		{"stop at the start", []string{"END"}, []string{"END"}, nil, true},
		{"empty stop ignored", []string{"ab"}, []string{""}, []string{"ab"}, false},
		{"held prefix flushed at end", []string{"Hello E"}, []string{"END"}, []string{"Hello ", "E"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			e := newEmitter(tc.stops, func(s string) error { got = append(got, s); return nil })
			stopped := false
			for _, p := range tc.pieces {
				s, err := e.write(p)
				if err != nil {
					t.Fatal(err)
				}
				if s {
					stopped = true
					break
				}
			}
			if !stopped {
				if err := e.flush(); err != nil {
					t.Fatal(err)
				}
			}
			want := strings.Join(tc.emitted, "")
			if stopped != tc.stopped || strings.Join(got, "") != want || e.text() != want {
				t.Fatalf("emitted %q (stopped %v, text %q), want %q (stopped %v)", got, stopped, e.text(), tc.emitted, tc.stopped)
			}
			for _, g := range got {
				if g == "" {
					t.Fatal("an empty piece was emitted")
				}
			}
		})
	}
}

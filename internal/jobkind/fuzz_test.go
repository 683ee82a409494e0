package jobkind_test

import (
	"encoding/json"
	"testing"

	"github.com/aitbc/aitbc/internal/jobkind"
)

// FuzzParseSpec: a prompt parses or is refused, never panics; a spec that
// parses marshals back to JSON that parses to the same spec.
func FuzzParseSpec(f *testing.F) {
	f.Add(`{"type":"data-processing","input":{"sha256":"ab","bytes":3},"data":{"group_by":["a"]},"units":1}`)
	f.Add(`{"type":"training","input":{"sha256":"ab","bytes":3},"train":{"params":{"kind":"mlp","epochs":1}},"resources":{"gpus":1},"units":2}`)
	f.Add(`{"type":1}`)
	f.Fuzz(func(t *testing.T, prompt string) {
		s, err := jobkind.ParseSpec(prompt)
		if err != nil {
			return
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := jobkind.ParseSpec(string(b))
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		b2, _ := json.Marshal(s2)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed %s into %s", b, b2)
		}
	})
}

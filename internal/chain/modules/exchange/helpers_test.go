package exchange_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/module"
)

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fmtSscanf(note string, id *uint64) (int, error) { return fmt.Sscanf(note, "order %d", id) }

type req struct{ path, params map[string]string }

func (r req) PathValue(n string) string { return r.path[n] }
func (r req) Param(n string) string     { return r.params[n] }

// mustQuery runs the module's route for path against the world's state and
// round-trips the answer through JSON, as a client reads it.
func mustQuery[T any](t *testing.T, w *world, path string, pathValues map[string]string) T {
	t.Helper()
	var out T
	for _, rt := range w.k.Routes() {
		if !matches(rt.Path, path) {
			continue
		}
		v, err := rt.Handle(module.Query{State: w.kv, Height: w.h}, req{path: pathValues})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if err := json.Unmarshal(mustJSON(t, v), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	t.Fatalf("no route for %s", path)
	return out
}

func matches(pattern, path string) bool {
	i, j := 0, 0
	for i < len(pattern) && j < len(path) {
		if pattern[i] == '{' {
			for i < len(pattern) && pattern[i] != '}' {
				i++
			}
			i++
			for j < len(path) && path[j] != '/' {
				j++
			}
			continue
		}
		if pattern[i] != path[j] {
			return false
		}
		i++
		j++
	}
	return i == len(pattern) && j == len(path)
}

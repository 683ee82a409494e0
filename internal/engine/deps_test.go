package engine_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDependencies keeps the engine free of third-party code and of the
// rest of AITBC: it may import the standard library, its own subpackages,
// the embedded models and golang.org/x/sys/cpu (the Go team's CPU feature
// detection, which selects the AVX2 kernels), nothing else (no cgo either).
func TestDependencies(t *testing.T) {
	for _, dir := range []string{".", "gguf", "tokenizer"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				first := strings.Split(p, "/")[0]
				switch {
				case p == "C":
					t.Errorf("%s uses cgo", f)
				case p == "github.com/aitbc/aitbc/models", p == "golang.org/x/sys/cpu",
					strings.HasPrefix(p, "github.com/aitbc/aitbc/internal/engine"):
				case strings.Contains(first, "."):
					t.Errorf("%s imports %s", f, p)
				}
			}
		}
	}
}

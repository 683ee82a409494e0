// Package chain_test enforces rules that keep the state machine
// deterministic and self-contained: no package under internal/chain may
// reach the network, randomness or the wall clock, and none may import an
// AITBC package outside the chain other than internal/address (services
// depend on the chain, never the reverse).
package chain_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var forbiddenImports = map[string]string{
	"net/http":     "the network",
	"net":          "the network",
	"math/rand":    "randomness",
	"math/rand/v2": "randomness",
	"crypto/rand":  "randomness",
	"os/exec":      "other processes",
}

const project = "github.com/aitbc/aitbc/"

func TestChainPackagesAreDeterministic(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if why, bad := forbiddenImports[p]; bad {
				t.Errorf("%s imports %s (%s) into the state machine", path, p, why)
			}
			if strings.HasPrefix(p, project) && !strings.HasPrefix(p, project+"internal/chain/") && p != project+"internal/address" {
				t.Errorf("%s imports %s: the chain may import only chain packages and internal/address", path, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" && (sel.Sel.Name == "Now" || sel.Sel.Name == "Since" || sel.Sel.Name == "Until") {
				t.Errorf("%s: time.%s reads the wall clock; use the block time", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

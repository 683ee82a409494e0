package api_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/bridge"
)

// TestBridgeOpenAPIListsEveryRoute keeps docs/api/bridge.openapi.yaml and
// the bridge daemon's server in step both ways: every pattern
// internal/bridge/http.go registers is in the file, and every operation
// in the file reaches a handler (not the catch-all 404).
func TestBridgeOpenAPIListsEveryRoute(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("bridge.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	af, err := parser.ParseFile(token.NewFileSet(), "../../internal/bridge/http.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	ast.Inspect(af, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) != 2 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
			return true
		}
		if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if p, _ := strconv.Unquote(lit.Value); strings.Contains(p, " ") {
				routes = append(routes, p)
			}
		}
		return true
	})
	if len(routes) < 2 {
		t.Fatalf("found only %d bridge routes: %v", len(routes), routes)
	}
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		if item := doc.Paths.Value(path); item == nil || item.GetOperation(method) == nil {
			t.Errorf("%s is not in bridge.openapi.yaml", r)
		}
	}
	h := new(bridge.Daemon).Handler(prometheus.NewRegistry())
	for _, path := range doc.Paths.InMatchingOrder() {
		for method := range doc.Paths.Value(path).Operations() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
			if rec.Code != http.StatusOK {
				t.Errorf("%s %s in the OpenAPI file: the daemon answers %d %s", method, path, rec.Code, rec.Body)
			}
		}
	}
}

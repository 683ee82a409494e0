package api_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/walletd"
)

// walletdRoutes reads the patterns the wallet daemon registers
// ("GET /api/v1/health", ...) from its source: the server keeps its mux
// to itself, and this way a route added there without a line in the
// OpenAPI file fails here.
func walletdRoutes(t *testing.T) []string { return registeredRoutes(t, "../../internal/walletd/*.go") }

// registeredRoutes reads the "METHOD /path" patterns that the non-test Go
// files matching glob register with Handle or HandleFunc.
func registeredRoutes(t *testing.T, glob string) []string {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			p, _ := strconv.Unquote(lit.Value)
			if strings.Contains(p, " ") { // "/" is the catch-all 404
				routes = append(routes, p)
			}
			return true
		})
	}
	return routes
}

// TestWalletdOpenAPIListsEveryRoute keeps docs/api/walletd.openapi.yaml
// and the wallet daemon in step both ways: every route it registers is in
// the file, and every operation in the file reaches a handler of the real
// server (not its catch-all 404).
func TestWalletdOpenAPIListsEveryRoute(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("walletd.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes := walletdRoutes(t)
	if len(routes) < 10 {
		t.Fatalf("found only %d walletd routes: %v", len(routes), routes)
	}
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("%s is not in walletd.openapi.yaml", r)
		}
	}

	srv, err := walletd.NewServer(walletd.Config{
		Home: t.TempDir(), APIKey: "test-key", Registry: prometheus.NewRegistry(),
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	for _, path := range doc.Paths.InMatchingOrder() {
		for method := range doc.Paths.Value(path).Operations() {
			target := strings.NewReplacer("{name}", "nobody").Replace(path)
			req := httptest.NewRequest(method, target, strings.NewReader("{}"))
			req.Header.Set(walletd.APIKeyHeader, "test-key")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code == http.StatusMethodNotAllowed || strings.Contains(rec.Body.String(), `"code":"not_found"`) {
				t.Errorf("%s %s in the OpenAPI file: the server answers %d %s", method, path, rec.Code, rec.Body)
			}
			// Without the key every operation is refused, as the file says.
			req = httptest.NewRequest(method, target, strings.NewReader("{}"))
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("%s %s without the key: %d", method, path, rec.Code)
			}
		}
	}
}

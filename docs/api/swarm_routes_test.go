package api_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/swarm"
)

// TestSwarmOpenAPIListsEveryRoute keeps docs/api/swarm.openapi.yaml and
// the span server in step both ways: every pattern internal/swarm/server.go
// registers is in the file, and every operation in the file reaches a
// handler (not the catch-all 404 or 405).
func TestSwarmOpenAPIListsEveryRoute(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("swarm.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes := registeredRoutes(t, "../../internal/swarm/server.go")
	if len(routes) < 3 {
		t.Fatalf("found only %d span server routes: %v", len(routes), routes)
	}
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		if item := doc.Paths.Value(path); item == nil || item.GetOperation(method) == nil {
			t.Errorf("%s is not in swarm.openapi.yaml", r)
		}
	}
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	s, err := swarm.NewServer([]swarm.ServedSpan{{Name: "tolstoy-1m", Model: m, First: 0, Last: 2}}, swarm.ServerConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for _, path := range doc.Paths.InMatchingOrder() {
		for method := range doc.Paths.Value(path).Operations() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, strings.ReplaceAll(path, "{id}", "x"), strings.NewReader("{}")))
			if c := rec.Body.String(); strings.Contains(c, `"not_found"`) || strings.Contains(c, "method_not_allowed") {
				t.Errorf("%s %s in the OpenAPI file: the span server answers %d %s", method, path, rec.Code, c)
			}
		}
	}
}

package api_test

import (
	"net/http"
	"net/http/httptest"
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
	routes := registeredRoutes(t, "../../internal/bridge/http.go")
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

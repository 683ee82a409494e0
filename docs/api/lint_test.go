// Package api_test lints the OpenAPI files in this folder with a real
// OpenAPI 3 validator (kin-openapi), so that `go test ./...` checks them
// and CI needs nothing else.
package api_test

import (
	"context"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestSpecsLintClean validates every docs/api/*.openapi.yaml and holds
// each operation to the house rules: an operationId, its security
// declared on the operation (`security: []` for a public one), 401 among
// the answers of one that needs a key, and a 4xx answer for one that
// takes input a caller can get wrong.
func TestSpecsLintClean(t *testing.T) {
	files, err := filepath.Glob("*.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"coordinator", "node", "walletd", "web"} {
		if !slices.Contains(files, want+".openapi.yaml") {
			t.Errorf("%s.openapi.yaml is missing", want)
		}
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			loader := openapi3.NewLoader()
			doc, err := loader.LoadFromFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := doc.Validate(context.Background()); err != nil {
				t.Fatalf("invalid OpenAPI: %v", err)
			}
			paths := doc.Paths.InMatchingOrder()
			sort.Strings(paths)
			ops := 0
			for _, path := range paths {
				for method, op := range doc.Paths.Value(path).Operations() {
					ops++
					name := method + " " + path
					if op.OperationID == "" {
						t.Errorf("%s: no operationId", name)
					}
					if op.Security == nil {
						t.Errorf("%s: security not declared (a public operation says security: [])", name)
					}
					sec := doc.Security
					if op.Security != nil {
						sec = *op.Security
					}
					if len(sec) > 0 && op.Responses.Value("401") == nil {
						t.Errorf("%s: needs a key but does not answer 401", name)
					}
					// Input a caller can get wrong: a body, a path parameter
					// or a required one. (Optional query parameters of the
					// read-only pages fall back to their defaults.)
					input := op.RequestBody != nil || mustGive(op.Parameters) || mustGive(doc.Paths.Value(path).Parameters)
					if input && !has4xx(op) {
						t.Errorf("%s: takes input but declares no 4xx answer", name)
					}
				}
			}
			if ops == 0 {
				t.Fatal("no operations")
			}
		})
	}
}

func mustGive(ps openapi3.Parameters) bool {
	for _, p := range ps {
		if p.Value != nil && (p.Value.In == "path" || p.Value.Required) {
			return true
		}
	}
	return false
}

func has4xx(op *openapi3.Operation) bool {
	for code := range op.Responses.Map() {
		if strings.HasPrefix(code, "4") {
			return true
		}
	}
	return false
}

package node_test

import (
	"os"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/errs"
)

// TestEveryChainErrorIsDocumented keeps the error-code list of the OpenAPI
// file complete: a client must be able to look up any code it receives.
func TestEveryChainErrorIsDocumented(t *testing.T) {
	spec, err := os.ReadFile("../../docs/api/node.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	all := errs.All()
	if len(all) < 20 {
		t.Fatalf("only %d errors registered: are the modules linked?", len(all))
	}
	for _, e := range all {
		if !strings.Contains(string(spec), e.Name) {
			t.Errorf("error code %s (%s/%d) is not in docs/api/node.openapi.yaml", e.Name, e.Codespace, e.Code)
		}
	}
}

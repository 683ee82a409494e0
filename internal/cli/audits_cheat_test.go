//go:build aitbc_cheat

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/miner/backend"
)

type paramsNode struct{ allow bool }

func (n paramsNode) GetJSON(_ context.Context, path string, out any) error {
	if path != "/api/v1/audits/params" {
		return errors.New("unexpected " + path)
	}
	p := audits.DefaultParams()
	p.AllowCheatMiners = n.allow
	b, _ := json.Marshal(p)
	return json.Unmarshal(b, out)
}

// TestCheatMinerRunsOnlyWhereTheGenesisAllowsIt: a test build's --cheat
// refuses a chain whose genesis leaves audits.allow_cheat_miners off.
func TestCheatMinerRunsOnlyWhereTheGenesisAllowsIt(t *testing.T) {
	honest := backend.NewBuiltin(t.TempDir(), backend.BuiltinOptions{})
	ctx := context.Background()
	if _, err := applyCheat(ctx, paramsNode{allow: false}, honest, "truncate"); !errors.Is(err, ErrCheatNotAllowed) {
		t.Fatalf("genesis without allow_cheat_miners: %v, want ErrCheatNotAllowed", err)
	}
	b, err := applyCheat(ctx, paramsNode{allow: true}, honest, "truncate")
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := b.(*backend.Cheat); !ok || c.Mode != backend.CheatTruncate || len(c.ClaimHash) != 32 {
		t.Fatalf("got %T %+v", b, b)
	}
	if _, err := applyCheat(ctx, paramsNode{allow: true}, honest, "model"); err == nil {
		t.Fatal("a mode it cannot serve on a devnet was accepted")
	}
	if b, err := applyCheat(ctx, paramsNode{allow: false}, honest, ""); err != nil || b != honest {
		t.Fatalf("no --cheat: %T, %v", b, err)
	}
}

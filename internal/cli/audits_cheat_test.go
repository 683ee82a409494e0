//go:build aitbc_cheat

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/engine"
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
	home := t.TempDir()
	honest := backend.NewBuiltin(home, backend.BuiltinOptions{})
	ctx := context.Background()
	if _, err := applyCheat(ctx, home, paramsNode{allow: false}, honest, "truncate"); !errors.Is(err, ErrCheatNotAllowed) {
		t.Fatalf("genesis without allow_cheat_miners: %v, want ErrCheatNotAllowed", err)
	}
	b, err := applyCheat(ctx, home, paramsNode{allow: true}, honest, "truncate")
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := b.(*backend.Cheat); !ok || c.Mode != backend.CheatTruncate || len(c.ClaimHash) != 32 {
		t.Fatalf("got %T %+v", b, b)
	}
	if _, err := applyCheat(ctx, home, paramsNode{allow: false}, honest, "model"); !errors.Is(err, ErrCheatNotAllowed) {
		t.Fatalf("--cheat model without allow_cheat_miners: %v, want ErrCheatNotAllowed", err)
	}
	// model: the substitute is written into the home's registry and served
	// under the default model's name, claiming its hash.
	b, err = applyCheat(ctx, home, paramsNode{allow: true}, honest, "model")
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := b.(*backend.Cheat); !ok || c.Mode != backend.CheatModel || c.Substitute == "" || len(c.ClaimHash) != 32 {
		t.Fatalf("--cheat model: %T %+v", b, b)
	}
	if _, err := os.Stat(filepath.Join(engine.NewRegistry(home).Dir(), b.(*backend.Cheat).Substitute)); err != nil {
		t.Fatalf("the substitute is not in the registry: %v", err)
	}
	if _, err := applyCheat(ctx, home, paramsNode{allow: true}, honest, "quant"); err == nil {
		t.Fatal("an unknown mode was accepted")
	}
	if b, err := applyCheat(ctx, home, paramsNode{allow: false}, honest, ""); err != nil || b != honest {
		t.Fatalf("no --cheat: %T, %v", b, err)
	}
}

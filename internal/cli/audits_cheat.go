//go:build aitbc_cheat

package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/miner/backend"
	"github.com/aitbc/aitbc/internal/verify"
)

// ErrCheatNotAllowed: the chain's genesis does not let cheating miners run
// (audits.allow_cheat_miners is false, the default).
var ErrCheatNotAllowed = errors.New("miner: this chain's genesis does not allow cheating miners (audits.allow_cheat_miners)")

// registerCheatFlags adds --cheat, which exists only in binaries built
// with -tags aitbc_cheat (devnets that test the spot checks).
func registerCheatFlags(f *pflag.FlagSet, mode *string) {
	f.StringVar(mode, "cheat", "", "TEST BUILDS ONLY: serve dishonestly — truncate (half the tokens, claiming a stop) or replay (the previous answer) — while attesting the requested model; refused unless the chain's genesis sets audits.allow_cheat_miners")
}

// applyCheat wraps b in a cheating backend (backend.Cheat) when mode is
// set, after checking on chain that the genesis allows it. The cheat
// claims the built-in default model's file hash and quantisation.
func applyCheat(ctx context.Context, node module.Getter, b backend.Backend, mode string) (backend.Backend, error) {
	if mode == "" {
		return b, nil
	}
	m := backend.CheatMode(mode)
	if m != backend.CheatTruncate && m != backend.CheatReplay {
		return nil, usagef("--cheat must be truncate or replay, not %q", mode)
	}
	if err := cheatAllowed(ctx, node); err != nil {
		return nil, err
	}
	model, err := engine.LoadDefault()
	if err != nil {
		return nil, err
	}
	defer model.Close()
	hash, err := verify.ModelFileHash(nil, engine.DefaultModel)
	if err != nil {
		return nil, err
	}
	return &backend.Cheat{Inner: b, Mode: m, ClaimHash: hash, ClaimQuant: model.TensorType()}, nil
}

// cheatAllowed refuses unless the chain's audits parameters allow
// cheating miners.
func cheatAllowed(ctx context.Context, node module.Getter) error {
	p, err := audits.QueryParams(ctx, node)
	if err != nil {
		return fmt.Errorf("miner: reading whether the chain allows cheating miners: %w", err)
	}
	if !p.AllowCheatMiners {
		return ErrCheatNotAllowed
	}
	return nil
}

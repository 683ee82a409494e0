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
	f.StringVar(mode, "cheat", "", "TEST BUILDS ONLY: serve dishonestly — truncate (half the tokens, claiming a stop), replay (the previous answer) or model (a copy of tolstoy-1m with one layer's weights scaled, served under its name) — while attesting the requested model; refused unless the chain's genesis sets audits.allow_cheat_miners")
}

// applyCheat wraps b in a cheating backend (backend.Cheat) when mode is
// set, after checking on chain that the genesis allows it. The cheat
// claims the built-in default model's file hash and quantisation. In
// model mode it writes its substitute (backend.WriteSubstitute) into
// home's registry and serves it for the default model.
func applyCheat(ctx context.Context, home string, node module.Getter, b backend.Backend, mode string) (backend.Backend, error) {
	if mode == "" {
		return b, nil
	}
	m := backend.CheatMode(mode)
	if m != backend.CheatTruncate && m != backend.CheatReplay && m != backend.CheatModel {
		return nil, usagef("--cheat must be truncate, replay or model, not %q", mode)
	}
	if err := cheatAllowed(ctx, node); err != nil {
		return nil, err
	}
	var sub string
	if m == backend.CheatModel {
		var err error
		if sub, err = backend.WriteSubstitute(engine.NewRegistry(home), engine.DefaultModel); err != nil {
			return nil, err
		}
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
	return &backend.Cheat{Inner: b, Mode: m, Substitute: sub, ClaimHash: hash, ClaimQuant: model.TensorType()}, nil
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

//go:build !aitbc_cheat

package cli

import (
	"context"

	"github.com/spf13/pflag"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/miner/backend"
)

// registerCheatFlags adds nothing: a release binary has no --cheat flag
// (audits_cheat.go, built with -tags aitbc_cheat, has it).
func registerCheatFlags(*pflag.FlagSet, *string) {}

// applyCheat leaves the backend honest.
func applyCheat(_ context.Context, _ string, _ module.Getter, b backend.Backend, _ string) (backend.Backend, error) {
	return b, nil
}

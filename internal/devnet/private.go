package devnet

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/zk"
)

// ZKDir is where a devnet keeps the keys of private jobs: the proving key
// (the coordinator's) and the verifying key (also in the genesis).
func ZKDir(home string) string { return filepath.Join(home, "zk") }

// privateGenesis runs the single-party setup of private jobs for a new
// chain, writes the keys under ZKDir and puts the verifying key in the
// jobs genesis entry (the keys are cached per machine: CachedSetup). Whoever runs it knows the setup's toxic waste and
// could forge settlement proofs: fine for a devnet, not for a network,
// which needs a multi-party ceremony (docs/VERIFICATION.md). An existing
// chain keeps the keys it was made with.
func privateGenesis(home string, spec *system.ChainSpec) error {
	if system.ChainExists(ChainHome(home)) {
		return nil
	}
	// Every devnet on this machine shares one setup's keys (zk.CachedSetup
	// says why that is safe); without a cache folder, a setup of its own.
	setup := zk.Setup
	if cache, err := os.UserCacheDir(); err == nil {
		setup = func() (zk.Keys, error) { return zk.CachedSetup(filepath.Join(cache, "aitbc", "zk-devnet")) }
	}
	keys, err := setup()
	if err != nil {
		return fmt.Errorf("devnet: private jobs: %w", err)
	}
	if err := keys.WriteFiles(ZKDir(home)); err != nil {
		return fmt.Errorf("devnet: private jobs: %w", err)
	}
	entry := map[string]any{}
	if raw := spec.Modules[jobs.Name]; raw != nil {
		if err := json.Unmarshal(raw, &entry); err != nil {
			return fmt.Errorf("devnet: jobs genesis: %w", err)
		}
	}
	entry["private_vk"] = keys.Verifying // []byte: base64 in JSON
	raw, err := json.Marshal(entry)
	if err != nil {
		return err
	}
	if spec.Modules == nil {
		spec.Modules = map[string]json.RawMessage{}
	}
	spec.Modules[jobs.Name] = raw
	return nil
}

// prover loads the coordinator's proving key, if the devnet has one (a
// chain made before private jobs has none: they are refused there).
func prover(home string) (coordinator.Prover, error) {
	if _, err := os.Stat(filepath.Join(ZKDir(home), zk.ProvingKeyFile)); os.IsNotExist(err) {
		return nil, nil
	}
	p, err := zk.LoadProver(ZKDir(home))
	if err != nil {
		return nil, fmt.Errorf("devnet: private jobs: %w", err)
	}
	return p, nil
}

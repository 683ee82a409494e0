package cli

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/zk"
)

// newZKCmd is `aitbc zk`: the keys of private jobs (docs/VERIFICATION.md,
// "Private receipts"): a single-party setup for devnets, and the steps of
// a multi-party ceremony for networks.
func newZKCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "zk",
		Short: "Keys of private jobs: single-party setup, or a multi-party ceremony",
		Long: `Private jobs settle with a Groth16 proof (BN254) that the chain verifies with the
verifying key in its genesis (the jobs entry's "private_vk"); the coordinator
proves with the proving key. "aitbc devnet" runs a single-party setup when it
creates a chain. Whoever runs a single-party setup knows its toxic waste and
could forge proofs: a network must make its keys by a ceremony, which is safe
if any one contributor destroys its randomness.`,
		Example: `  aitbc zk setup --out ./zk
  aitbc zk ceremony init --dir ./transcript
  aitbc zk ceremony contribute --dir ./transcript`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newZKSetupCmd(g), newZKCeremonyCmd(g))
	return cmd
}

// zkProver loads <home>/zk's proving key for a coordinator, or returns
// nil when there is none.
func zkProver(home string) (*zk.Prover, error) {
	dir := filepath.Join(home, "zk")
	if _, err := os.Stat(filepath.Join(dir, zk.ProvingKeyFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return zk.LoadProver(dir)
}

// keysOut is what setup and seal print.
type keysOut struct {
	Dir             string `json:"dir"`
	ProvingKey      string `json:"proving_key"`
	VerifyingKey    string `json:"verifying_key"`
	VerifyingKeyB64 string `json:"private_vk"` // for the jobs genesis entry
}

func writeKeys(g *Globals, k zk.Keys, dir string) error {
	if err := k.WriteFiles(dir); err != nil {
		return err
	}
	out := keysOut{Dir: dir, ProvingKey: filepath.Join(dir, zk.ProvingKeyFile), VerifyingKey: filepath.Join(dir, zk.VerifyingKeyFile),
		VerifyingKeyB64: base64.StdEncoding.EncodeToString(k.Verifying)}
	return g.Print(out, func(w io.Writer) {
		fmt.Fprintf(w, "proving key %s (the coordinator's; keep it)\nverifying key %s\ngenesis: \"jobs\": {\"private_vk\": %q}\n", out.ProvingKey, out.VerifyingKey, out.VerifyingKeyB64)
	})
}

func newZKSetupCmd(g *Globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Single-party setup of private jobs' keys (devnets and tests only)",
		Long: `Runs a single-party Groth16 setup and writes private_settle.pk and
private_settle.vk into --out, and prints the verifying key for the genesis.
This machine knows the setup's toxic waste: use it for devnets only.`,
		Example: `  aitbc zk setup --out ~/.aitbc/zk     # where aitbc coordinator start looks for the proving key
  aitbc zk setup --out ./zk --output json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if out == "" {
				return usagef("--out is required")
			}
			k, err := zk.Setup()
			if err != nil {
				return err
			}
			return writeKeys(g, k, out)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "folder for the key files (required)")
	return cmd
}

func newZKCeremonyCmd(g *Globals) *cobra.Command {
	var dir, beacon, out string
	step := func(use, short, long, example string, run func() (zk.Step, error)) *cobra.Command {
		c := &cobra.Command{Use: use, Short: short, Long: long, Example: example, Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				if dir == "" {
					return usagef("--dir is required")
				}
				s, err := run()
				if err != nil {
					return err
				}
				return g.Print(s, func(w io.Writer) {
					fmt.Fprintf(w, "wrote %s (phase %d, #%d), sha256 %s\n", s.File, s.Phase, s.Index, s.SHA256)
				})
			}}
		c.Flags().StringVar(&dir, "dir", "", "the ceremony's transcript folder (required)")
		return c
	}
	cmd := &cobra.Command{
		Use:   "ceremony",
		Short: "Multi-party setup of private jobs' keys: init, contribute, phase2, seal",
		Long: `A Groth16 multi-party ceremony (gnark's mpcsetup) over a transcript folder that
the participants pass along: the coordinator of the ceremony runs init; each
contributor runs contribute on the latest folder and publishes the sha256 it
prints; after a public random beacon (e.g. a drand round announced in
advance) phase2 verifies phase 1 and starts phase 2; contributors contribute
again; seal verifies phase 2 with a second beacon and writes the keys. Anyone
can rerun phase2 and seal on the transcript to check the keys.`,
		Example: `  aitbc zk ceremony init --dir t
  aitbc zk ceremony contribute --dir t      # each contributor, in turn
  aitbc zk ceremony phase2 --dir t --beacon <drand round hex>
  aitbc zk ceremony contribute --dir t      # each contributor, in turn
  aitbc zk ceremony seal --dir t --beacon <drand round hex> --out ./zk`,
		Args: cobra.NoArgs,
	}
	beaconBytes := func() ([]byte, error) {
		if beacon == "" {
			return nil, usagef("--beacon is required: a public random value announced after the last contribution")
		}
		return []byte(beacon), nil
	}
	phase2 := step("phase2", "Verify phase 1, seal it with the beacon, start phase 2",
		"Verifies every phase 1 contribution, seals phase 1 with --beacon and writes commons.bin and phase2-000.bin.",
		"  aitbc zk ceremony phase2 --dir t --beacon 6a1f...\n  aitbc zk ceremony phase2 --dir t --beacon 6a1f... --output json",
		func() (zk.Step, error) {
			b, err := beaconBytes()
			if err != nil {
				return zk.Step{}, err
			}
			return zk.CeremonyPhase2(dir, b)
		})
	phase2.Flags().StringVar(&beacon, "beacon", "", "public random beacon value (required)")
	seal := &cobra.Command{
		Use:   "seal",
		Short: "Verify phase 2, seal it with the beacon, write the keys",
		Long:  "Verifies every phase 2 contribution, seals with --beacon and writes the proving and verifying keys into --out.",
		Example: `  aitbc zk ceremony seal --dir t --beacon 9c04... --out ./zk
  aitbc zk ceremony seal --dir t --beacon 9c04... --out ./zk --output json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if dir == "" || out == "" {
				return usagef("--dir and --out are required")
			}
			b, err := beaconBytes()
			if err != nil {
				return err
			}
			k, err := zk.CeremonySeal(dir, b)
			if err != nil {
				return err
			}
			return writeKeys(g, k, out)
		},
	}
	seal.Flags().StringVar(&dir, "dir", "", "the ceremony's transcript folder (required)")
	seal.Flags().StringVar(&beacon, "beacon", "", "public random beacon value (required)")
	seal.Flags().StringVar(&out, "out", "", "folder for the key files (required)")
	cmd.AddCommand(
		step("init", "Start a transcript: the empty phase 1", "Writes phase1-000.bin into --dir (created).",
			"  aitbc zk ceremony init --dir t\n  aitbc zk ceremony init --dir t --output json",
			func() (zk.Step, error) { return zk.CeremonyInit(dir) }),
		step("contribute", "Add this machine's randomness to the current phase",
			"Reads the latest file of the current phase in --dir, contributes fresh randomness (kept only in memory) and writes the next file; publish the sha256 it prints.",
			"  aitbc zk ceremony contribute --dir t\n  aitbc zk ceremony contribute --dir t --output json",
			func() (zk.Step, error) { return zk.Contribute(dir) }),
		phase2, seal)
	return cmd
}

package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/swarm"
)

// newBenchSwarmCmd is `aitbc bench swarm`: routed decoding on loopback.
func newBenchSwarmCmd(g *Globals) *cobra.Command {
	var model string
	var tokens int
	var rtt time.Duration
	var via string
	cmd := &cobra.Command{
		Use:   "swarm",
		Short: "Tokens per second and per-hop overhead of routed decoding through 1, 2 and 4 span servers on loopback",
		Long: `Starts span servers on loopback holding even shares of the model's layers
(1, 2 and 4 spans), decodes --tokens greedily through each route, and
compares with the same decoding in one process: the per-hop overhead is the
extra time per token divided by the hops (docs/PERFORMANCE.md).

--rtt puts every hop a round trip away, as in a real swarm. With --via
netem each span server gets a network namespace of its own, joined to this
one by a veth pair that delays packets by half the round trip each way
(tc netem; needs root, iproute2 and the kernel's sch_netem; the namespaces
are removed at the end). With --via relay each server is reached through a
userspace TCP relay on loopback that delays every chunk by half the round
trip each way (internal/netsim; works anywhere). --via auto (the default)
tries netem and falls back to the relays, and the output says which ran.`,
		Example: `  aitbc bench swarm
  aitbc bench swarm --tokens 200 --output json
  sudo aitbc bench swarm --rtt 50ms --tokens 40
  aitbc bench swarm --rtt 50ms --via relay --tokens 40`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tokens < 1 || tokens > 4096 {
				return usagef("--tokens must be 1 to 4096")
			}
			m, err := engine.Resolve(g.Home, model)
			if err != nil {
				return err
			}
			var counts []int
			for _, n := range []int{1, 2, 4} {
				if n <= m.Config().Layers {
					counts = append(counts, n)
				}
			}
			if rtt < 0 || rtt > 2*time.Second {
				return usagef("--rtt must be 0 to 2s")
			}
			if via != "auto" && via != "netem" && via != "relay" {
				return usagef("--via must be auto, netem or relay")
			}
			var listen swarm.ListenFunc
			injected, netemErr := "", ""
			if rtt > 0 && via != "relay" {
				lab, err := swarm.NewNetemLab(cmd.Context(), counts[len(counts)-1], rtt)
				switch {
				case err == nil:
					defer func() { _ = lab.Close() }()
					listen, injected = lab.Listen, "netem"
				case via == "netem":
					return err
				default:
					netemErr = strings.TrimSpace(err.Error())
				}
			}
			if rtt > 0 && listen == nil {
				lab, err := swarm.NewRelayLab(rtt)
				if err != nil {
					return err
				}
				listen, injected = lab.Listen, "relay"
			}
			base, res, err := swarm.BenchRoutes(cmd.Context(), model, m, counts, tokens, listen)
			if err != nil {
				return err
			}
			out := struct {
				Model             string              `json:"model"`
				RTTMs             float64             `json:"injected_rtt_ms"`
				InjectedBy        string              `json:"injected_by,omitempty"`
				NetemUnavailable  string              `json:"netem_unavailable,omitempty"`
				OneProcessTokensS float64             `json:"one_process_tokens_per_second"`
				Routes            []swarm.BenchResult `json:"routes"`
			}{model, float64(rtt) / float64(time.Millisecond), injected, netemErr, base, res}
			return g.Print(out, func(w io.Writer) {
				how := ""
				switch injected {
				case "netem":
					how = " (tc netem in network namespaces)"
				case "relay":
					how = " (userspace TCP relays on loopback)"
					if netemErr != "" {
						how = " (userspace TCP relays on loopback; netem unavailable: " + netemErr + ")"
					}
				}
				fmt.Fprintf(w, "%s, %d tokens, injected round trip %s%s; one process: %.0f tokens/s\n", model, tokens, rtt, how, base)
				fmt.Fprintf(w, "%6s %12s %12s\n", "SPANS", "TOKENS/S", "MS/HOP")
				for _, r := range res {
					fmt.Fprintf(w, "%6d %12.0f %12.3f\n", r.Spans, r.TokensPerSec, r.PerHopMs)
				}
			})
		},
	}
	cmd.Flags().StringVar(&model, "model", engine.DefaultModel, "model to split")
	cmd.Flags().IntVar(&tokens, "tokens", 100, "tokens to decode per route")
	cmd.Flags().DurationVar(&rtt, "rtt", 0, "round trip injected between this process and each span server, e.g. 50ms")
	cmd.Flags().StringVar(&via, "via", "auto", "how --rtt is injected: netem (network namespaces; needs root and sch_netem), relay (userspace TCP relays) or auto (netem, else relay)")
	return cmd
}

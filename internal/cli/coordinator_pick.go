package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/chain/modules/coordinators"
	"github.com/aitbc/aitbc/internal/coordinator"
)

// --coordinator takes one URL, several (comma-separated), "chain" (every
// coordinator announced on chain) or "chain:ADDRESS" (those one
// marketplace's key announced). Given more than one, a command uses the
// nearest healthy one (coordinator.Picker: GET /v1/health timed at once,
// fastest healthy first), moves on to the next when it is down, and keeps
// the ranking 30 s in <home>/coordinator-pick.json so that a burst of
// commands probes once. -v prints the ranking.

// Command annotations for the choice.
const (
	// coordListAnnotation: the command takes the whole list and chooses
	// itself (miner start: it holds one session and moves on when it ends).
	coordListAnnotation = "aitbc_coordinator_list"
	// coordSelfAnnotation: the command probes the coordinators itself
	// (coordinator list), or talks to none (coordinator start).
	coordSelfAnnotation = "aitbc_coordinator_self"
)

// pickTimeout bounds the whole choice: probes and reading the chain.
const pickTimeout = 5 * time.Second

func annotate(cmd *cobra.Command, key string) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[key] = "true"
}

// chainSpec reports whether spec asks for the coordinators announced on
// chain, and by which key ("" for all).
func chainSpec(spec string) (key string, ok bool) {
	if spec == "chain" {
		return "", true
	}
	return strings.CutPrefix(spec, "chain:")
}

// coordinatorCandidates reads the --coordinator spec.
func (g *Globals) coordinatorCandidates(ctx context.Context, spec string) ([]coordinator.Candidate, error) {
	if key, ok := chainSpec(spec); ok {
		return coordinator.Announced(ctx, g.node(), key)
	}
	return coordinator.Given(strings.Split(spec, ",")), nil
}

func (g *Globals) picker() *coordinator.Picker {
	return &coordinator.Picker{CacheFile: filepath.Join(g.Home, "coordinator-pick.json")}
}

// resolveCoordinator turns a --coordinator list into the URL the command
// uses (g.Coord) and the ones it moves on to (g.coordFallbacks). A single
// URL is left as it is. It never fails a command: one that does not talk
// to a coordinator must not fail because none answers, and one that does
// says itself that the coordinator is not reachable.
func (g *Globals) resolveCoordinator(cmd *cobra.Command) {
	spec := strings.TrimSpace(g.Coord)
	_, fromChain := chainSpec(spec)
	if !fromChain && !strings.Contains(spec, ",") || cmd.Annotations[coordSelfAnnotation] != "" {
		return
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), pickTimeout)
	defer cancel()
	cands, err := g.coordinatorCandidates(ctx, spec)
	if err != nil || len(cands) == 0 {
		if g.Verbose {
			fmt.Fprintf(g.Stderr(), "coordinator: %q: no candidates (%v)\n", spec, err)
		}
		if fromChain {
			g.Coord = "" // the command's own error says no coordinator was found
		}
		return
	}
	if cmd.Annotations[coordListAnnotation] != "" {
		g.Coord = strings.Join(coordinator.URLs(cands), ",")
		return
	}
	ranked, cached, err := g.picker().Pick(ctx, cands)
	if g.Verbose {
		printRanking(g.Stderr(), ranked, cached)
		if err != nil {
			fmt.Fprintf(g.Stderr(), "coordinator: %v\n", err)
		}
	}
	if len(ranked) == 0 {
		return
	}
	g.Coord, g.coordFallbacks = ranked[0].URL, nil
	for _, c := range ranked[1:] {
		if c.Healthy {
			g.coordFallbacks = append(g.coordFallbacks, c.URL)
		}
	}
}

// coordClient is a client of the chosen coordinator that moves on to the
// other healthy ones when it is down.
func (g *Globals) coordClient(key string) *coordinator.Client {
	c := coordinator.NewClient(g.Coord, key)
	c.Fallbacks = g.coordFallbacks
	return c
}

func printRanking(w io.Writer, ranked []coordinator.Candidate, cached bool) {
	from := "measured now"
	if cached {
		from = "measured in the last 30 s"
	}
	fmt.Fprintf(w, "coordinators, nearest healthy first (%s):\n", from)
	for i, c := range ranked {
		mark := " "
		if i == 0 && c.Healthy {
			mark = "*"
		}
		health := fmt.Sprintf("healthy  %7.1f ms", c.RTTMs)
		if !c.Healthy {
			health = "DOWN     " + c.Error
		}
		region := c.Region
		if region == "" {
			region = "-"
		}
		fmt.Fprintf(w, "%s %-40s %-12s %s\n", mark, c.URL, region, health)
	}
}

// announcement reads --public-url and --region: both or neither.
func announcement(publicURL, region string) (*coordinator.Announcement, error) {
	if publicURL == "" && region == "" {
		return nil, nil
	}
	if publicURL == "" || region == "" {
		return nil, usagef("--public-url and --region go together: the chain lists a coordinator's URL with its region")
	}
	a := &coordinator.Announcement{PublicURL: publicURL, Region: region}
	if err := a.Check(); err != nil {
		return nil, usagef("%v", err)
	}
	return a, nil
}

func newCoordinatorListCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Rank coordinators by health and round trip: those given with --coordinator, or those announced on chain",
		Long: `Probes each coordinator's GET /v1/health at once (the fastest of 3 tries,
1 s timeout each) and lists them nearest healthy first, with their region,
round trip and health. With --coordinator chain (the default when
--coordinator is not given) they are the coordinators announced on chain
(aitbc coordinator start --public-url --region); chain:ADDRESS keeps one
marketplace's. The first is the one other commands given the same
--coordinator use.`,
		Example: `  aitbc coordinator list
  aitbc coordinator list --coordinator http://c1:8000,http://c2:8000
  aitbc coordinator list --coordinator chain:aitbc1qxy... --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec := strings.TrimSpace(g.Coord)
			if spec == "" || !cmd.Flags().Changed("coordinator") && !g.fromEnv["coordinator"] {
				spec = "chain"
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), pickTimeout)
			defer cancel()
			cands, err := g.coordinatorCandidates(ctx, spec)
			if err != nil {
				return err
			}
			if len(cands) == 0 {
				return fmt.Errorf("no coordinator announced on chain (coordinator start --public-url --region announces one)")
			}
			// Always measured now: this is the command that shows them.
			ranked := (&coordinator.Picker{}).Rank(ctx, cands)
			return g.Print(ranked, func(w io.Writer) { printRanking(w, ranked, false) })
		},
	}
	annotate(cmd, coordSelfAnnotation)
	return cmd
}

func newCoordinatorRetireCmd(g *Globals) *cobra.Command {
	var wallet, password, publicURL string
	cmd := &cobra.Command{
		Use:   "retire",
		Short: "Withdraw a coordinator's announcement from the chain (a coordinator taken down for good)",
		Long: `Sends coordinators/retire for --public-url, signed by --wallet, the key that
announced it (coordinator start --public-url --region). Clients given
--coordinator chain no longer see it. A coordinator started again with
--public-url announces itself again.`,
		Example: `  aitbc coordinator retire --wallet coordinator --public-url https://eu1.aitbc.example:8000
  aitbc coordinator retire --wallet coordinator --public-url http://10.0.0.2:8000 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if wallet == "" || publicURL == "" {
				return usagef("--wallet and --public-url are required")
			}
			if err := coordinators.CheckURL(publicURL); err != nil {
				return usagef("--public-url: %v", err)
			}
			h, err := g.submit(cmd.Context(), wallet, password, coordinators.NewRetireMsg(publicURL))
			if err != nil {
				return err
			}
			return g.Print(map[string]any{"tx_hash": h, "url": publicURL}, func(w io.Writer) { fmt.Fprintln(w, h) })
		},
	}
	cmd.Flags().StringVar(&wallet, "wallet", "", "the wallet that announced the coordinator (required)")
	cmd.Flags().StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD)")
	cmd.Flags().StringVar(&publicURL, "public-url", "", "the announced URL to withdraw (required)")
	return cmd
}

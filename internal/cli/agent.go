package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
)

// parseLayers reads a span's layers "0-11" (inclusive) or "5" (one layer).
func parseLayers(s string) (first, last int, err error) {
	a, b, dash := strings.Cut(strings.TrimSpace(s), "-")
	if first, err = strconv.Atoi(a); err != nil {
		return 0, 0, fmt.Errorf("not a layer range like 0-11: %q", s)
	}
	last = first
	if dash {
		if last, err = strconv.Atoi(b); err != nil {
			return 0, 0, fmt.Errorf("not a layer range like 0-11: %q", s)
		}
	}
	return first, last, nil
}

func printAgent(w io.Writer, v agents.View) {
	state := "inactive"
	if v.Active {
		state = "active"
	}
	fmt.Fprintf(w, "address       %s\nname          %s\nmodel hash    %s\ncapabilities  %s\n", v.Address, v.Name, v.ModelHash, strings.Join(v.Capabilities, ","))
	if v.Span != nil {
		fmt.Fprintf(w, "span          %s layers %d-%d\n", v.Span.Model, v.Span.First, v.Span.Last)
	}
	fmt.Fprintf(w, "registered    height %d\nheartbeat     height %d (%s; window %d blocks, now %d)\n", v.Created, v.Heartbeat, state, v.ActiveWindow, v.QueriedHeight)
	if m := v.Metrics; m != nil {
		fmt.Fprintf(w, "metrics       epoch %d: %d reports, %d tokens, %d tasks, %d ms average latency, %d s uptime\n",
			m.Epoch, m.Reports, m.ProcessedTokens, m.TasksCompleted, m.AvgLatencyMs, m.UptimeSeconds)
	}
}

func newAgentCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Short: "Agents on chain: register a model or a span of its layers, send heartbeats, list and show (docs/AGENTS.md)",
		Example: `  aitbc agent register --wallet miner-0 --name node-a --model-hash $(sha256sum models/tolstoy-1m.bin | cut -c1-64) --capabilities inference,span --span-model tolstoy-1m --layers 0-1
  aitbc agent heartbeat --wallet miner-0
  aitbc agent list --model tolstoy-1m --active --output json
  aitbc agent show aitbc1...`}
	var wallet, password string
	withWallet := func(c *cobra.Command) {
		c.Flags().StringVar(&wallet, "wallet", "", "the agent's wallet: its address is the agent's id (required)")
		c.Flags().StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD)")
	}
	printTx := func(h string, extra map[string]any) error {
		extra["tx_hash"] = h
		return g.Print(extra, func(w io.Writer) { fmt.Fprintln(w, h) })
	}

	var name, modelHash, caps, spanModel, layers string
	register := &cobra.Command{
		Use:   "register",
		Short: "Register the wallet as an agent (or update its registration): name, model hash, capabilities, optional span",
		Example: `  aitbc agent register --wallet miner-0 --name node-a --model-hash 0123…ef --capabilities inference
  aitbc agent register --wallet miner-1 --name node-b --model-hash 0123…ef --capabilities inference,span --span-model tolstoy-1m --layers 2-3 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if wallet == "" {
				return usagef("--wallet is required")
			}
			var list []string
			for _, c := range strings.Split(caps, ",") {
				if c = strings.TrimSpace(c); c != "" {
					list = append(list, c)
				}
			}
			var span *agents.Span
			if spanModel != "" || layers != "" {
				if spanModel == "" || layers == "" {
					return usagef("--span-model and --layers go together")
				}
				first, last, err := parseLayers(layers)
				if err != nil {
					return usagef("--layers: %v", err)
				}
				span = &agents.Span{Model: spanModel, First: first, Last: last}
			}
			m := agents.MsgRegister{Name: name, ModelHash: strings.ToLower(modelHash), Caps: list, Span: span}
			if err := m.Check(); err != nil { // the chain checks the same; say it before paying a fee
				return usagef("%v", err)
			}
			h, err := g.submit(cmd.Context(), wallet, password, agents.NewRegisterMsg(m.Name, m.ModelHash, m.Caps, m.Span))
			if err != nil {
				return err
			}
			out := map[string]any{"name": m.Name, "model_hash": m.ModelHash, "capabilities": list}
			if span != nil {
				out["span"] = agents.SpanView{Model: span.Model, First: span.First, Last: span.Last}
			}
			return printTx(h, out)
		},
	}
	register.Flags().StringVar(&name, "name", "", "agent name, 1-64 characters (required)")
	register.Flags().StringVar(&modelHash, "model-hash", "", "SHA-256 of the model's weights, 64 hex characters (required)")
	register.Flags().StringVar(&caps, "capabilities", "inference", "comma-separated capabilities (1-16 of a-z, 0-9, - _ .)")
	register.Flags().StringVar(&spanModel, "span-model", "", "the model whose layers the agent serves (with --layers)")
	register.Flags().StringVar(&layers, "layers", "", "the span's layers, first-last inclusive: 0-11")
	withWallet(register)

	heartbeat := &cobra.Command{
		Use:     "heartbeat",
		Short:   "Say the wallet's agent is alive: it stays active for the module's window (active_window_blocks)",
		Example: "  aitbc agent heartbeat --wallet miner-0\n  aitbc agent heartbeat --wallet miner-0 --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if wallet == "" {
				return usagef("--wallet is required")
			}
			h, err := g.submit(cmd.Context(), wallet, password, agents.NewHeartbeatMsg())
			if err != nil {
				return err
			}
			return printTx(h, map[string]any{})
		},
	}
	withWallet(heartbeat)

	deregister := &cobra.Command{
		Use:     "deregister",
		Short:   "Remove the wallet's agent registration",
		Example: "  aitbc agent deregister --wallet miner-0 --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if wallet == "" {
				return usagef("--wallet is required")
			}
			h, err := g.submit(cmd.Context(), wallet, password, agents.NewDeregisterMsg())
			if err != nil {
				return err
			}
			return printTx(h, map[string]any{})
		},
	}
	withWallet(deregister)

	var f agents.Filter
	list := &cobra.Command{
		Use:     "list",
		Short:   "List registered agents, active or not, by model (span model or model hash) and capability",
		Example: "  aitbc agent list\n  aitbc agent list --model tolstoy-1m --capability span --active --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := agents.List(cmd.Context(), g.node(), f)
			if err != nil {
				return err
			}
			return g.Print(v, func(w io.Writer) {
				if len(v.Agents) == 0 {
					fmt.Fprintln(w, "no agents")
					return
				}
				for _, a := range v.Agents {
					state, span := "inactive", "-"
					if a.Active {
						state = "active"
					}
					if a.Span != nil {
						span = fmt.Sprintf("%s:%d-%d", a.Span.Model, a.Span.First, a.Span.Last)
					}
					fmt.Fprintf(w, "%s  %-8s  %-20s  %-24s  %s  heartbeat %d\n", a.Address, state, a.Name, span, strings.Join(a.Capabilities, ","), a.Heartbeat)
				}
				if v.More {
					fmt.Fprintln(w, "(more: narrow with --model, --capability or --active)")
				}
			})
		},
	}
	list.Flags().StringVar(&f.Model, "model", "", "only agents whose span model or model hash is this")
	list.Flags().StringVar(&f.Capability, "capability", "", "only agents with this capability")
	list.Flags().BoolVar(&f.ActiveOnly, "active", false, "only active agents (heartbeat within the window)")
	list.Flags().IntVar(&f.Limit, "limit", 0, "at most this many (1-500; default 500)")

	show := &cobra.Command{
		Use:     "show <address>",
		Short:   "Show an agent: model, capabilities, span, last heartbeat, active, the oracle's last committed metrics",
		Example: "  aitbc agent show aitbc1...\n  aitbc agent show aitbc1... --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := address.Parse(args[0])
			if err != nil {
				return usagef("address: %v", err)
			}
			v, err := agents.Query(cmd.Context(), g.node(), a)
			if err != nil {
				return err
			}
			return g.Print(v, func(w io.Writer) { printAgent(w, v) })
		},
	}
	cmd.AddCommand(register, heartbeat, deregister, list, show)
	return cmd
}

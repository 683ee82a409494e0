package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/coordinator"
)

func newResourceCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "resource",
		Short: "Reserve miner capacity (GPU slots) for an agent, and watch utilization",
		Long: `An allocation holds job slots on one connected miner for an agent of yours,
for a duration: other tenants' jobs cannot use them, yours can. On a CPU
miner a "GPU" is a job slot and --memory cannot be checked (the response says
so). Allocations live in the coordinator's memory and end with it.`,
	}
	var agent, model string
	var gpu int
	var memory uint64
	var duration time.Duration
	alloc := &cobra.Command{
		Use:     "allocate",
		Short:   "Reserve --gpu slots with --memory MB for --duration",
		Example: `  aitbc resource allocate --agent-id "gpu-worker-1" --gpu 1 --memory 8192 --duration 3600`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.coordinator()
			if err != nil {
				return err
			}
			a, err := c.Allocate(cmd.Context(), coordinator.AllocateRequest{AgentID: agent, GPU: gpu, MemoryMB: memory, DurationS: int64(duration / time.Second), Model: model})
			if err != nil {
				return err
			}
			return g.Print(a, func(w io.Writer) { printAlloc(w, a) })
		},
	}
	alloc.Flags().StringVar(&agent, "agent-id", "", "name of the agent the capacity is for (required)")
	alloc.Flags().IntVar(&gpu, "gpu", 1, "slots (GPUs) to hold")
	alloc.Flags().Uint64Var(&memory, "memory", 0, "GPU memory in MB the miner must have")
	secondsFlag(alloc.Flags(), &duration, "duration", time.Hour, "how long (seconds, or e.g. 30m)")
	alloc.Flags().StringVar(&model, "model", "", "only a miner that serves this model")

	var sagent string
	status := &cobra.Command{
		Use:   "status",
		Short: "Show your allocations (or one agent's)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.coordinator()
			if err != nil {
				return err
			}
			list, err := c.Allocations(cmd.Context(), sagent)
			if err != nil {
				return err
			}
			return g.Print(list, func(w io.Writer) {
				if len(list) == 0 {
					fmt.Fprintln(w, "no allocations")
				}
				for _, a := range list {
					printAlloc(w, a)
				}
			})
		},
	}
	status.Flags().StringVar(&sagent, "agent-id", "", "only this agent")

	var dagent string
	dealloc := &cobra.Command{
		Use:   "deallocate",
		Short: "Release an agent's allocation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dagent == "" {
				return usagef("--agent-id is required")
			}
			c, err := g.coordinator()
			if err != nil {
				return err
			}
			a, err := c.Deallocate(cmd.Context(), dagent)
			if err != nil {
				return err
			}
			return g.Print(a, func(w io.Writer) {
				fmt.Fprintf(w, "released %d slots of %s on miner %s\n", a.Slots, a.AgentID, a.Miner)
			})
		},
	}
	dealloc.Flags().StringVar(&dagent, "agent-id", "", "agent (required)")

	var typ string
	var period time.Duration
	util := &cobra.Command{
		Use:     "utilization",
		Short:   "Average and peak use of the miners' slots over a period",
		Example: `  aitbc resource utilization --type gpu --period 1h`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := coordinator.NewClient(g.Coord, "").Utilization(cmd.Context(), typ, period)
			if err != nil {
				return err
			}
			return g.Print(u, func(w io.Writer) {
				if u.Samples == 0 {
					fmt.Fprintf(w, "no %s samples in the last %s (the coordinator samples every 10 s)\n", u.Type, u.Period)
					return
				}
				fmt.Fprintf(w, "%s slots over %s (%d samples, %d miners now): average %.1f%% used, peak %.1f%%\n", u.Type, u.Period, u.Samples, u.Miners, u.AvgPercent, u.PeakPct)
				fmt.Fprintf(w, "  average %.1f slots, %.1f running jobs, %.1f reserved\n", u.Slots, u.Busy, u.Reserved)
			})
		},
	}
	util.Flags().StringVar(&typ, "type", "all", "gpu, cpu or all")
	util.Flags().DurationVar(&period, "period", time.Hour, "window, up to 24h")
	cmd.AddCommand(alloc, status, dealloc, util)
	return cmd
}

func printAlloc(w io.Writer, a coordinator.Allocation) {
	mem := fmt.Sprintf("%d MB", a.MemoryMB)
	if !a.MemoryChecked {
		mem += " (not checked: the miner reports no GPU memory)"
	}
	fmt.Fprintf(w, "%s: %d slots on miner %s (%s), memory %s, until %s\n", a.AgentID, a.Slots, a.Miner, a.GPU, mem, a.Expires.Local().Format(time.DateTime))
}

package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aitbc/aitbc/internal/bench"
	"github.com/aitbc/aitbc/internal/bench/saturate"
)

func newBenchCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure the system's throughput"}
	var o bench.TransferOptions
	var transfersProfile, blockProfile, mutexProfile string
	var sat saturateFlags
	transfers := &cobra.Command{
		Use: "transfers",
		Example: `  aitbc bench transfers
  aitbc bench transfers --accounts 500 --per-account 10 --block-time 300ms --output json
  aitbc bench transfers --rate 8000 --block-time 2s          # offer 8,000 tx/s open loop
  aitbc bench transfers --saturate --block-time 2s           # step the offered rate up until committed < offered`,
		Short: "Committed signed transfers per second on a fresh single-validator node",
		Long: `Creates a temporary single-validator chain with many funded accounts,
pre-signs transfers (consecutive nonces per account), submits them to the node's
mempool from several goroutines, and reports transactions in committed blocks
divided by the time from the first submission to the last commit, with the
block time and CPU seconds used, and beside it the ed25519 batch verification
rate measured in the same run (the limit of this work on this machine).

--rate paces the submitters to that many transfers per second (open loop).
--saturate finds the saturation point itself: a fresh chain per step,
--step-seconds of transfers offered at --rate-start, then --rate-factor times
more each step, until a step commits less than 90% of what it offered (not
counting the last block's wait) or refuses any; it
prints offered beside committed for every step.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !g.JSON() {
				o.Progress = g.Stderr()
			}
			if transfersProfile != "" {
				stop, err := startCPUProfile(transfersProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			if blockProfile != "" || mutexProfile != "" {
				stop, err := startContentionProfiles(blockProfile, mutexProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			if sat.on {
				sr, err := bench.TransfersSaturation(cmd.Context(), o, sat.options(), sat.stepSeconds)
				if errors.Is(err, saturate.ErrBadOptions) {
					return usageError{err}
				}
				if err != nil {
					return err
				}
				return g.Print(sr, func(w io.Writer) {
					printSaturation(w, sr.Result)
					fmt.Fprintf(w, "limit       %.0f ed25519 signatures/s batch-verified on %d cores (first step)\n", sr.VerifyRate, runtime.GOMAXPROCS(0))
					fmt.Fprintf(w, "method      %s\n", sr.Method)
				})
			}
			r, err := bench.Transfers(cmd.Context(), o)
			if err != nil {
				return err
			}
			return g.Print(r, func(w io.Writer) {
				fmt.Fprintf(w, "committed %d of %d transfers in %d blocks, %.2fs\n", r.Committed, r.Txs, r.Blocks, r.Elapsed.Seconds())
				fmt.Fprintf(w, "throughput  %.0f committed tx/s (mempool admission %.0f tx/s)\n", r.TPS, r.SubmitTPS)
				if r.VerifyRate > 0 {
					fmt.Fprintf(w, "limit       %.0f ed25519 signatures/s batch-verified on %d cores in this run: committed %.0f%%, admission %.0f%% of it\n",
						r.VerifyRate, r.CPUCores, 100*r.TPS/r.VerifyRate, 100*r.SubmitTPS/r.VerifyRate)
				}
				fmt.Fprintf(w, "cpu         %.1f s on %d cores (%.0f%% busy); largest block %d txs\n", r.CPUSeconds, r.CPUCores, 100*r.CPUSeconds/(r.Elapsed.Seconds()*float64(r.CPUCores)), r.MaxBlockTxs)
				fmt.Fprintf(w, "recheck     %d kept without running the checks, %d run again\n", r.Recheck.Kept, r.Recheck.Executed)
				fmt.Fprintf(w, "method      %s\n", r.Method)
			})
		},
	}
	f := transfers.Flags()
	f.IntVar(&o.Accounts, "accounts", 2000, "funded sender accounts")
	f.IntVar(&o.PerAcct, "per-account", 25, "transfers per account")
	f.DurationVar(&o.BlockTime, "block-time", time.Second, "block time")
	f.IntVar(&o.Submitters, "submitters", 64, "submitting goroutines")
	f.Float64Var(&o.Rate, "rate", 0, "offered transfers per second, paced open loop (0: as fast as the submitters go)")
	sat.register(f, 4000)
	f.StringVar(&transfersProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (for performance work)")
	_ = f.MarkHidden("cpuprofile")
	f.StringVar(&blockProfile, "blockprofile", "", "write a profile of where goroutines waited (channels, locks, selects) to this file (for performance work)")
	_ = f.MarkHidden("blockprofile")
	f.StringVar(&mutexProfile, "mutexprofile", "", "write a profile of contended mutexes to this file (for performance work)")
	_ = f.MarkHidden("mutexprofile")
	var jo bench.JobsOptions
	var so bench.SettleOptions
	var settleOnly bool
	var jobsProfile string
	var coordinators int
	var coordStore string
	jobsCmd := &cobra.Command{
		Use: "jobs",
		Example: `  aitbc bench jobs
  aitbc bench jobs --output json > jobs-bench.json
  aitbc bench jobs --coordinators 3                  # 1, 2 and 3 coordinators on a throwaway PostgreSQL
  aitbc bench jobs --coordinators 2 --store postgres://bench:secret@db:5432/aitbc --output json`,
		Short: "Coordinator figures: API latency under many clients, queue depth, first-token overhead, paid jobs per second",
		Long: `Starts a temporary devnet (real chain, coordinator, miners on the built-in
engine) and measures: the first-token overhead of going through the
marketplace versus calling the backend directly; paid jobs per second through
the whole flow until settled on chain; GET /v1/jobs/{id}/status latency with
--clients concurrent clients; and submission latency while --queue-depth jobs
wait with no miner connected. Then, on a fresh single validator, batched
settlement: --settle-jobs paid jobs created, assigned and settled in
jobs/batch transactions as the coordinator's chain writer sends them
(--settle-only runs just that part; --settle-jobs 0 skips it).

With --coordinators N it measures only how the coordinator scales: for 1, 2,
... N coordinators sharing one PostgreSQL store, each count on a fresh devnet
and a fresh database, paid jobs per second (--paid-jobs spread over the
coordinators) and status latency (--clients spread over them). The databases
are made beside the one --store names (its user needs CREATEDB) and dropped
afterwards; without --store a throwaway PostgreSQL server is started on this
machine (PostgreSQL's initdb and pg_ctl must be installed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !g.JSON() {
				jo.Progress = g.Stderr()
			}
			if coordinators < 0 || coordinators > bench.MaxBenchCoordinators {
				return usagef("--coordinators %d: want 1 to %d (0: the usual figures)", coordinators, bench.MaxBenchCoordinators)
			}
			if coordinators > 0 {
				co := bench.CoordinatorsOptions{Coordinators: coordinators, Store: coordStore,
					Clients: jo.Clients, Requests: jo.Requests, PaidJobs: jo.PaidJobs, Miners: jo.Miners, Progress: jo.Progress}
				r, err := bench.JobsCoordinators(cmd.Context(), co)
				if errors.Is(err, bench.ErrBadOptions) {
					return usageError{err}
				}
				if err != nil {
					return err
				}
				return g.Print(r, func(w io.Writer) {
					fmt.Fprintf(w, "%-12s  %-14s  %s\n", "coordinators", "paid jobs/s", "status latency")
					for _, row := range r.Rows {
						fmt.Fprintf(w, "%-12d  %-14.1f  %s at %.0f req/s\n", row.Coordinators, row.PaidJobsPerSecond, row.StatusLatency, row.StatusRPS)
					}
					fmt.Fprintf(w, "method        %s\n", r.Method)
				})
			}
			if coordStore != "" {
				return usagef("--store needs --coordinators")
			}
			if jobsProfile != "" {
				stop, err := startCPUProfile(jobsProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			var out struct {
				bench.JobsResult
				Settlement *bench.SettleResult `json:"settlement,omitempty"`
			}
			if so.Jobs > 0 {
				if !g.JSON() {
					so.Progress = g.Stderr()
				}
				sr, err := bench.Settlements(cmd.Context(), so)
				if err != nil {
					return err
				}
				out.Settlement = &sr
			}
			printSettle := func(w io.Writer) {
				if sr := out.Settlement; sr != nil {
					fmt.Fprintf(w, "batched settle  %d of %d paid jobs settled in %.2f s (%d blocks, %d txs): %.0f jobs/s\n", sr.Settled, sr.Jobs, sr.Elapsed.Seconds(), sr.Blocks, sr.Txs, sr.JobsPerSecond)
					fmt.Fprintf(w, "settle method   %s\n", sr.Method)
				}
			}
			if settleOnly {
				return g.Print(out.Settlement, printSettle)
			}
			r, err := bench.Jobs(cmd.Context(), jo)
			if err != nil {
				return err
			}
			out.JobsResult = r
			return g.Print(out, func(w io.Writer) {
				printSettle(w)
				fmt.Fprintf(w, "first token     direct %.2f ms, through the coordinator %.2f ms: overhead %.2f ms\n", msOf(r.FirstTokenDirect), msOf(r.FirstTokenMarket), msOf(r.Overhead))
				fmt.Fprintf(w, "paid flow       %d jobs settled in %.1f s: %.1f jobs/s\n", r.PaidJobs, r.PaidElapsed.Seconds(), r.PaidJobsPerSecond)
				fmt.Fprintf(w, "status latency  %s at %.0f req/s offered (%d clients, 1/s each)\n", r.StatusLatency, r.StatusRPS, jo.Clients)
				fmt.Fprintf(w, "saturation      %.0f req/s, %s\n", r.SaturationRPS, r.SaturationLatency)
				fmt.Fprintf(w, "queue depth     %d queued; submit first 1k %s\n                last 1k %s\n                status at depth %s\n", r.QueuedAtEnd, r.SubmitFirstK, r.SubmitLastK, r.StatusAtDepth)
				fmt.Fprintf(w, "method          %s\n", r.Method)
			})
		},
	}
	jf := jobsCmd.Flags()
	jf.IntVar(&jo.Clients, "clients", 1000, "concurrent API clients")
	jf.IntVar(&jo.Requests, "requests", 20, "status requests per client (one a second)")
	jf.IntVar(&jo.QueueDepth, "queue-depth", 10000, "jobs to queue with no miner connected")
	jf.IntVar(&jo.PaidJobs, "paid-jobs", 200, "jobs through the whole paid flow")
	jf.IntVar(&jo.Miners, "miners", 3, "miners for the paid flow")
	jf.IntVar(&so.Jobs, "settle-jobs", 20000, "paid jobs for the batched-settlement figure on one validator (0: skip it)")
	jf.IntVar(&so.Coordinators, "settle-coordinators", 4, "coordinators sending batches in the settlement figure")
	jf.IntVar(&so.Batch, "settle-batch", 150, "messages per jobs/batch in the settlement figure")
	jf.BoolVar(&settleOnly, "settle-only", false, "measure only batched settlement")
	jf.IntVar(&coordinators, "coordinators", 0, fmt.Sprintf("measure paid jobs/s and status latency for 1..N coordinators sharing a PostgreSQL store (1-%d; 0: the usual figures)", bench.MaxBenchCoordinators))
	jf.StringVar(&coordStore, "store", "", "with --coordinators: postgres:// URL beside which the bench makes its databases (default: a throwaway server)")
	jf.StringVar(&jobsProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (for performance work)")
	_ = jf.MarkHidden("cpuprofile")
	cmd.AddCommand(transfers, jobsCmd, newBenchMarketCmd(g), newWebBenchCmd(g))
	cmd.AddCommand(newBenchExchangeCmd(g)) // exchange_bench.go
	cmd.AddCommand(newBenchBridgeCmd(g))   // exchange_bridge.go
	cmd.AddCommand(newBenchSwarmCmd(g))    // swarm_bench.go
	cmd.AddCommand(newBenchChainCmd(g))    // bench_chain.go
	return cmd
}

// saturateFlags are the flags of a benchmark that finds its saturation
// point (bench transfers, testnet bench).
type saturateFlags struct {
	on          bool
	start       float64
	factor      float64
	steps       int
	stepSeconds float64
}

func (s *saturateFlags) register(f *pflag.FlagSet, start float64) {
	f.BoolVar(&s.on, "saturate", false, "step the offered rate up until committed < offered, and print each step")
	f.Float64Var(&s.start, "rate-start", start, "with --saturate: the first offered rate (tx/s)")
	f.Float64Var(&s.factor, "rate-factor", 1.5, "with --saturate: each step offers this many times the last")
	f.IntVar(&s.steps, "steps", 8, "with --saturate: at most this many steps")
	f.Float64Var(&s.stepSeconds, "step-seconds", 10, "with --saturate: seconds of load offered per step")
}

func (s *saturateFlags) options() saturate.Options {
	return saturate.Options{Start: s.start, Factor: s.factor, MaxSteps: s.steps}
}

func printSaturation(w io.Writer, r saturate.Result) {
	fmt.Fprintf(w, "%-12s  %-14s  %-11s  %-13s  %-8s  %s\n", "offered tx/s", "committed tx/s", "steady tx/s", "admitted tx/s", "kept up", "load avg")
	for _, s := range r.Steps {
		fmt.Fprintf(w, "%-12.0f  %-14.0f  %-11.0f  %-13.0f  %-8v  %.1f\n", s.Offered, s.Committed, s.Steady, s.Admitted, s.Kept, s.Load)
	}
	fmt.Fprintf(w, "sustained   %.0f tx/s offered and kept up with; peak %.0f committed tx/s\n", r.Sustained, r.Peak)
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// startContentionProfiles turns on Go's block and mutex profiles for a
// run and writes them (to the paths that are not empty) when stopped:
// they show where submitters wait for one another, which a CPU profile
// cannot (idle time is not in it).
func startContentionProfiles(blockPath, mutexPath string) (func(), error) {
	for _, p := range []string{blockPath, mutexPath} {
		if p == "" {
			continue
		}
		f, err := os.Create(p) // fail before the run, not after it
		if err != nil {
			return nil, err
		}
		f.Close()
	}
	if blockPath != "" {
		runtime.SetBlockProfileRate(10_000) // a sample per 10 µs blocked
	}
	if mutexPath != "" {
		runtime.SetMutexProfileFraction(5)
	}
	write := func(name, path string) {
		f, err := os.Create(path)
		if err != nil {
			return
		}
		defer f.Close()
		_ = pprof.Lookup(name).WriteTo(f, 0)
	}
	return func() {
		if blockPath != "" {
			write("block", blockPath)
			runtime.SetBlockProfileRate(0)
		}
		if mutexPath != "" {
			write("mutex", mutexPath)
			runtime.SetMutexProfileFraction(0)
		}
	}, nil
}

package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
)

// apiKeys lists the coordinator API keys this user has, best first:
// --api-key/AITBC_API_KEY, the devnet's, then keys saved by ai-submit.
func (g *Globals) apiKeys() []string {
	var keys []string
	if g.APIKey != "" {
		keys = append(keys, g.APIKey)
	}
	if b, err := os.ReadFile(devnet.APIKeyFile(g.Home)); err == nil {
		keys = append(keys, strings.TrimSpace(string(b)))
	}
	return append(keys, savedTenantKeys(g.Home)...)
}

func (g *Globals) coordinator() (*coordinator.Client, error) {
	keys := g.apiKeys()
	if len(keys) == 0 {
		return nil, fmt.Errorf("no coordinator API key: give --api-key or AITBC_API_KEY (a devnet writes one to %s)", devnet.APIKeyFile(g.Home))
	}
	return g.coordClient(keys[0]), nil
}

// jobClient finds the API key that owns job id: each key sees only its
// own tenant's jobs.
func (g *Globals) jobClient(ctx context.Context, id string) (*coordinator.Client, error) {
	keys := g.apiKeys()
	if len(keys) == 0 {
		return g.coordinator()
	}
	var lastErr error
	for _, k := range keys {
		c := g.coordClient(k)
		if _, err := c.Status(ctx, id); err == nil {
			return c, nil
		} else if !httpx.IsCode(err, jobs.ErrJobNotFound.Name) && !httpx.IsCode(err, "unauthorized") {
			return nil, err
		} else {
			lastErr = err
		}
	}
	return nil, lastErr
}

type jobFlags struct {
	model, prompt, maxPrice string
	maxTokens               int
	temperature, topP       float32
	seed                    uint64
	ttl                     time.Duration
	noWait                  bool
}

func (f *jobFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.model, "model", "tolstoy-1m", "model to run")
	fl.StringVar(&f.prompt, "prompt", "", "the prompt (required)")
	fl.IntVar(&f.maxTokens, "max-tokens", 128, "tokens to generate at most")
	fl.Float32Var(&f.temperature, "temperature", 0.8, "sampling temperature, 0 for greedy")
	fl.Float32Var(&f.topP, "top-p", 0, "nucleus sampling threshold (0: off)")
	fl.Uint64Var(&f.seed, "seed", 0, "sampling seed (0: the miner's default)")
	secondsFlag(fl, &f.ttl, "ttl", 900*time.Second, "time to live: refunded in full if not done by then (10s to 24h; a bare number is seconds)")
	fl.StringVar(&f.maxPrice, "max-price", "", "most you pay, fee included, in AITBC (default: enough for the dearest miner serving the model)")
	fl.BoolVar(&f.noWait, "no-wait", false, "print the job id and return without waiting")
}

func (f *jobFlags) request() (coordinator.JobRequest, error) {
	r := coordinator.JobRequest{Model: f.model, Prompt: f.prompt, MaxTokens: f.maxTokens, TopP: f.topP, Seed: f.seed, TTLSeconds: int64(f.ttl / time.Second)}
	if strings.TrimSpace(f.prompt) == "" {
		return r, usagef("--prompt is required")
	}
	t := f.temperature
	r.Temperature = &t
	if f.maxPrice != "" {
		p, err := coin.Parse(f.maxPrice)
		if err != nil {
			return r, usagef("--max-price: %v", err)
		}
		r.MaxPrice = p
	}
	return r, nil
}

func newSubmitCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "submit", Short: "Submit an AI job to the coordinator, paid from your deposit with it"}
	var f jobFlags
	inf := &cobra.Command{
		Use:   "inference",
		Short: "Run a prompt on a model served by the marketplace's miners",
		Long: `Submits an inference job, paid from your deposit with the coordinator (the
devnet funds one for genesis-ops), then streams the generated text as the miner
produces it and waits for settlement on chain. With --no-wait it only prints
the job id; follow it with 'aitbc status <id>'.`,
		Example: `  aitbc submit inference --prompt "Once upon a time" --model tolstoy-1m --ttl 900
  aitbc submit inference --prompt "It was" --temperature 0 --max-tokens 40 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request()
			if err != nil {
				return err
			}
			c, err := g.coordinator()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			job, err := c.Submit(ctx, req)
			if err != nil {
				return err
			}
			if !g.JSON() {
				fmt.Fprintf(g.Stdout(), "Job submitted. Job ID: %s\n", job.JobID)
			}
			if f.noWait {
				return g.Print(job, func(io.Writer) {})
			}
			return followJob(ctx, g, c, job.JobID, !g.JSON())
		},
	}
	f.bind(inf)
	cmd.AddCommand(inf)
	return cmd
}

// followJob streams a job's text (when stream is set) and waits until it
// is settled or ends otherwise, then prints its final view.
func followJob(ctx context.Context, g *Globals, c *coordinator.Client, id string, stream bool) error {
	var lastStatus string
	err := c.Stream(ctx, id, func(e coordinator.Event) {
		switch e.Type {
		case coordinator.EventToken:
			if stream {
				fmt.Fprint(g.Stdout(), e.Text)
			}
		case coordinator.EventStatus:
			if e.Status != lastStatus && !g.JSON() {
				if e.Status == "requeued" {
					fmt.Fprintf(g.Stderr(), "\n[requeued: %s]\n", e.Error)
				} else if e.Status == "running" {
					fmt.Fprintf(g.Stderr(), "[running on miner %s]\n", e.Miner)
				}
			}
			lastStatus = e.Status
		}
	})
	if err != nil {
		return err
	}
	if stream {
		fmt.Fprintln(g.Stdout())
	}
	// Completed means the receipt is verified; settlement follows within a
	// few blocks.
	var v coordinator.JobView
	for i := 0; ; i++ {
		if v, err = c.Results(ctx, id); err != nil {
			return err
		}
		if v.Status != "completed" || i > 300 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return g.Print(v, func(w io.Writer) {
		printJob(g.Stderr(), v)
		if v.Status == "failed" || v.Status == "expired" {
			fmt.Fprintf(g.Stderr(), "job %s: %s\n", v.Status, v.Error)
		}
	})
}

func printJob(w io.Writer, v coordinator.JobView) {
	fmt.Fprintf(w, "job %s: %s", v.JobID, v.Status)
	if v.Miner != "" {
		fmt.Fprintf(w, " (miner %s, attempt %d)", v.Miner, v.Attempt)
	}
	fmt.Fprintln(w)
	if v.Waiting != "" {
		fmt.Fprintf(w, "  waiting: %s\n", v.Waiting)
	}
	if v.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", v.Error)
	}
	if v.TokensOut > 0 {
		fmt.Fprintf(w, "  tokens: %d in, %d out (%s)\n", v.TokensIn, v.TokensOut, v.FinishReason)
	}
	if s := v.Settlement; s != nil {
		if s.SettleTx != "" {
			fmt.Fprintf(w, "  settlement: %s, miner paid %s AITBC, fee burned %s, refunded %s\n", s.SettleTx, s.Paid, s.Fee, s.Refund)
		} else if s.AssignTx != "" {
			fmt.Fprintf(w, "  assigned on chain: %s\n", s.AssignTx)
		}
	}
	if v.Receipt != nil {
		fmt.Fprintf(w, "  receipt: %s (price %s AITBC)\n", v.Receipt.Hash, v.Receipt.Price)
	}
}

func newStatusCmd(g *Globals) *cobra.Command {
	var limit int
	var id string
	cmd := &cobra.Command{
		Use:   "status [job-id]",
		Short: "Show a job (queued / running on miner M / completed / settled / expired and refunded), or your recent jobs",
		Example: `  aitbc status
  aitbc status 707c75d0a1b2c3d4e5f60718293a4b5c
  aitbc status --job-id 707c75d0a1b2c3d4e5f60718293a4b5c --output json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id, err := jobIDOf(args, id)
			if err != nil {
				return err
			}
			if id == "" {
				c, err := g.coordinator()
				if err != nil {
					return err
				}
				list, err := c.Jobs(ctx, max(limit, 1))
				if err != nil {
					return err
				}
				return g.Print(list, func(w io.Writer) {
					for _, v := range list {
						fmt.Fprintf(w, "%s  %-10s %-12s %s\n", v.JobID, v.Status, v.Model, v.Created.Local().Format(time.DateTime))
					}
				})
			}
			c, err := g.jobClient(ctx, id)
			if err != nil {
				return err
			}
			v, err := c.Status(ctx, id)
			if err != nil {
				return err
			}
			return g.Print(v, func(w io.Writer) { printJob(w, v) })
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many recent jobs to list without a job id")
	jobIDFlag(g, cmd, &id, "job id (or give it as the argument); none: your recent jobs")
	return cmd
}

func newResultsCmd(g *Globals, use string) *cobra.Command {
	var id, outDir string
	cmd := &cobra.Command{
		Use:   use,
		Short: "Show a job's result text, its signed receipt and the settlement",
		Example: `  aitbc results 707c75d0a1b2c3d4e5f60718293a4b5c
  aitbc ai-results --job-id 707c75d0a1b2c3d4e5f60718293a4b5c --output json > receipt.json
  aitbc ai-results --job-id 707c75d0a1b2c3d4e5f60718293a4b5c --output-dir results/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := jobIDOf(args, id)
			if err != nil {
				return err
			}
			if id == "" {
				return usagef("give the job id (as the argument or --job-id)")
			}
			c, err := g.jobClient(cmd.Context(), id)
			if err != nil {
				return err
			}
			v, err := c.Results(cmd.Context(), id)
			if err != nil {
				return err
			}
			if outDir != "" { // airesults.go: the result as a file, checked against the receipt
				return saveResult(cmd.Context(), g, c, v, outDir)
			}
			return g.Print(v, func(w io.Writer) {
				if v.Result != nil {
					fmt.Fprintln(w, *v.Result)
				}
				printJob(w, v)
			})
		},
	}
	jobIDFlag(g, cmd, &id, "job id (or give it as the argument)")
	cmd.Flags().StringVar(&outDir, "output-dir", "", "save the result as a file in this directory (a trained model, a report), checked against the receipt's result hash")
	return cmd
}

func newReceiptsCmd(g *Globals) *cobra.Command {
	var limit int
	var jobID string
	cmd := &cobra.Command{
		Use:   "receipts [job-id]",
		Short: "List your jobs' signed receipts, newest first",
		Example: `  aitbc receipts --limit 5
  aitbc receipts 707c75d0a1b2c3d4e5f60718293a4b5c --output json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			jobID, err := jobIDOf(args, jobID)
			if err != nil {
				return err
			}
			c, err := g.coordinator()
			if jobID != "" {
				c, err = g.jobClient(cmd.Context(), jobID)
			}
			if err != nil {
				return err
			}
			list, err := c.Receipts(cmd.Context(), max(limit, 1), jobID)
			if err != nil {
				return err
			}
			return g.Print(list, func(w io.Writer) {
				if len(list) == 0 {
					fmt.Fprintln(w, "no receipts")
				}
				for _, r := range list {
					fmt.Fprintf(w, "%s  job %s  miner %s  %d tokens  %s AITBC  %s\n", r.Hash, r.JobID, r.Miner, r.TokensOut, r.Price, r.End.Local().Format(time.DateTime))
				}
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 10, "how many")
	jobIDFlag(g, cmd, &jobID, "only this job's receipt (or give it as the argument)")
	return cmd
}

// jobIDFlag gives cmd a job id both as its one argument and as --job-id
// (the seeds write --job-id; people paste the id after the command), both
// completed from the caller's recent jobs.
func jobIDFlag(g *Globals, cmd *cobra.Command, id *string, usage string) {
	cmd.Flags().StringVar(id, "job-id", "", usage)
	cmd.Args = cobra.MaximumNArgs(1)
	cmd.ValidArgsFunction = func(c *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return g.completeJobIDs(c)
	}
	_ = cmd.RegisterFlagCompletionFunc("job-id", func(c *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return g.completeJobIDs(c)
	})
}

// jobIDOf is the job id given as the argument or as --job-id ("" when
// neither); both given must agree.
func jobIDOf(args []string, flag string) (string, error) {
	if len(args) == 0 {
		return flag, nil
	}
	if flag != "" && flag != args[0] {
		return "", usagef("two job ids: %s and --job-id %s", args[0], flag)
	}
	return args[0], nil
}

// completeJobIDs offers the caller's recent jobs (id, then status and
// model as the description) from the coordinator; nothing when it does not
// answer within two seconds.
func (g *Globals) completeJobIDs(c *cobra.Command) ([]string, cobra.ShellCompDirective) {
	_ = applyEnv(c.Root(), map[string]bool{}) // completion skips PersistentPreRunE
	cl, err := g.coordinator()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(c.Context(), 2*time.Second)
	defer cancel()
	jobs, err := cl.Jobs(ctx, 50)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	out := make([]string, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, j.JobID+"\t"+j.Status+" "+j.Model)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

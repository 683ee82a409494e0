package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/jobinput"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// tenantKeyFile is where ai-submit keeps a wallet's API key with a coordinator.
func tenantKeyFile(home string, coord address.Address, wallet string) string {
	return filepath.Join(home, "tenants", coord.String(), wallet+".key")
}

func savedTenantKeys(home string) []string {
	files, _ := filepath.Glob(filepath.Join(home, "tenants", "*", "*.key"))
	var keys []string
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			keys = append(keys, strings.TrimSpace(string(b)))
		}
	}
	return keys
}

// tenantFor returns a coordinator client authenticated as wallet: a saved
// key, or a new one obtained by signing the coordinator's registration
// message with the wallet (through the daemon when it is unlocked there).
func (g *Globals) tenantFor(ctx context.Context, w *walletConn, wallet, password string) (*coordinator.Client, coordinator.Health, error) {
	c := g.coordClient("")
	h, err := c.Health(ctx)
	if err != nil {
		return nil, h, err
	}
	coord, err := address.Parse(h.Coordinator)
	if err != nil {
		return nil, h, err
	}
	file := tenantKeyFile(g.Home, coord, wallet)
	if b, err := os.ReadFile(file); err == nil {
		c.APIKey = strings.TrimSpace(string(b))
		if _, err := c.Jobs(ctx, 1); err == nil {
			return c, h, nil
		}
	}
	info, err := w.Get(ctx, wallet)
	if err != nil {
		return nil, h, err
	}
	ts := time.Now().Unix()
	sig, err := w.SignMessage(ctx, wallet, password, coordinator.TenantDomain, coordinator.TenantPayload(coord, info.Address, ts, wallet))
	if err != nil {
		return nil, h, w.explain(g, wallet, err)
	}
	key, err := c.Register(ctx, coordinator.RegisterRequest{Name: wallet, Address: info.Address, PubKey: sig.PubKey, Timestamp: ts, Signature: sig.Signature})
	if err != nil {
		return nil, h, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, h, err
	}
	if err := os.WriteFile(file, []byte(key), 0o600); err != nil {
		return nil, h, err
	}
	c.APIKey = key
	return c, h, nil
}

func newAISubmitCmd(g *Globals) *cobra.Command {
	var wallet, typ, prompt, model, payment, password, serviceID, inputData, resolution string
	var maxTokens int
	var temperature float32
	var ttl time.Duration
	var wait, split, private bool
	var kf kindFlags
	ignored := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "ai-submit",
		Short: "Submit an AI job paid from a wallet: the payment is locked in escrow on chain",
		Long: `Locks --payment in escrow on chain from --wallet (a jobs/create transaction
naming the coordinator), waits for the block, then hands the job to the
coordinator, which runs it on a miner and settles it: the miner is paid its
price for the tokens produced, a 10% fee is burned, the rest comes back. If no
miner finishes by the TTL the whole payment comes back.

The wallet signs with --password, AITBC_PASSWORD, or its key unlocked in the
wallet daemon (aitbc wallet unlock). The first job with a coordinator also
registers the wallet there (a signed message) and keeps the API key under
<home>/tenants/.

--input-data FILE stores the file with the coordinator by its SHA-256 and
puts its text after the prompt, headed by its name and hash, cut on a line
boundary to what fits the model's context (measured with the model's own
tokenizer when this machine has the model; else the 64 KiB prompt limit);
a cut is announced. The receipt's prompt hash covers the file's hash and
the text the model saw (docs/JOBS.md).

--type data-processing and --type training run the built-in data pipeline
and classifier trainer on a miner. The file and parameters are checked here
first (a table that reads, the columns named, a label column that exists);
the job's prompt is its spec (file hash and size, parameters, work units),
so the receipt commits to them, and the result (report, model file) is what
the receipt's result hash covers. The job costs its work units (one per
1,000 cells read, per 100 training rows × epochs, or per 64 tokens a
fine-tuning run trains on) at the miner's price
per 1,000, plus the fee.

--private keeps the job's usage off the public record: the escrow is a
jobs/create_private, the receipt on chain holds a commitment instead of
token counts and price, and the coordinator settles it with a zero-knowledge
proof that the payout is exactly what the hidden usage costs. The model,
the escrow and the amounts paid stay public (docs/VERIFICATION.md).`,
		Example: `  aitbc wallet unlock --name customer-1
  aitbc ai-submit --wallet customer-1 --type inference --prompt "Prince Andrew" --payment 120
  aitbc ai-submit --wallet customer-1 --prompt "It was" --payment 5 --split   # through span servers (devnet --span-miners 2)
  aitbc ai-submit --wallet customer-1 --prompt "Prince Andrew" --payment 120 --private --wait
  aitbc ai-submit --wallet customer-1 --type inference --prompt "Prince Andrew" --payment 120 \
      --gpu-allocated 1 --memory 16384 --gpu-model rtx4090   # only a miner with that GPU runs it
  aitbc ai-submit --wallet enterprise-1 --type inference --prompt "Analyze processed data for trends" \
      --payment 200 --input-data processed_data.csv
  aitbc ai-submit --wallet enterprise-1 --type data-processing --input-data processed_data.csv \
      --group-by region --agg sum:units --report markdown --payment 30
  aitbc ai-submit --wallet researcher-1 --type training --model custom-classifier \
      --dataset training_data.csv --label species --epochs 20 --payment 500 --wait
  aitbc ai-submit --wallet researcher-1 --type training --model tolstoy-1m \
      --dataset book.txt --steps 200 --learning-rate 3e-4 --payment 500 --wait   # fine-tune; ai-results saves <id>.gguf
  aitbc ai-results --job-id <id> --output-dir results/
  aitbc ai-status --job-id <id>
  aitbc ai-results --job-id <id>`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			switch {
			case wallet == "":
				return usagef("--wallet is required")
			case typ == "inference" && resolution != "":
				// The seeds generate images with --type inference --resolution.
				typ = jobkind.TypeImage
				if !g.JSON() {
					fmt.Fprintf(g.Stderr(), "note: --resolution makes this an image generation job (--type image)\n")
				}
			}
			switch {
			case typ != "inference" && typ != jobkind.TypeTraining && typ != jobkind.TypeDataProcessing && typ != jobkind.TypeImage:
				return usagef("unknown --type %q: inference, training, data-processing or image", typ)
			case typ == jobkind.TypeImage && strings.TrimSpace(prompt) == "":
				return usagef("--prompt is required: what the image shows")
			case typ == jobkind.TypeImage && (inputData != "" || kf.dataset != ""):
				return usagef("image jobs take no input file (image inputs are not supported yet)")
			case typ == jobkind.TypeTraining && kf.dataset == "":
				return usagef("--type training needs --dataset FILE (a CSV table with a label column, or the text to fine-tune --model %s on)", engine.DefaultModel)
			case typ == jobkind.TypeDataProcessing && kf.dataset == "" && inputData == "":
				return usagef("--type data-processing needs --input-data FILE (or --dataset FILE)")
			case typ == "inference" && kf.dataset != "":
				return usagef("--dataset is for training and data-processing jobs; inference reads --input-data")
			case typ == "inference" && strings.TrimSpace(prompt) == "":
				return usagef("--prompt is required")
			}
			if split { // swarm_submit.go
				if err := splitFlags(cmd, typ, serviceID, inputData, &temperature); err != nil {
					return err
				}
			}
			for name, v := range ignored {
				if *v != "" {
					fmt.Fprintf(g.Stderr(), "note: --%s has no effect on inference jobs yet\n", name)
				}
			}
			var textNeeds *sched.Resources // an inference job's hardware, stored with the job (a kind's is in its spec)
			if typ == "inference" {
				var err error
				if textNeeds, err = kf.needs(); err != nil {
					return err
				}
			}
			pay, err := coin.Parse(payment)
			if err != nil || pay == 0 {
				return usagef("--payment must be a positive amount of AITBC, not %q", payment)
			}
			w, err := g.wallets(ctx)
			if err != nil {
				return err
			}
			pw, err := g.signingPassword(ctx, w, wallet, password)
			if err != nil {
				return err
			}
			agreement := ""
			if serviceID != "" { // the job runs under the customer's agreement for that service (market_bind.go)
				info, err := w.Get(ctx, wallet)
				if err != nil {
					return err
				}
				if agreement, err = g.agreementFor(ctx, info.Address, serviceID); err != nil {
					return err
				}
			}
			c, h, err := g.tenantFor(ctx, w, wallet, pw)
			if err != nil {
				return err
			}
			var input *jobinput.Prompt
			var kind *kindJob
			if typ == jobkind.TypeImage { // size, prompt, model, work units and a miner checked before the escrow
				if !cmd.Flags().Changed("model") {
					model = ""
				}
				size := resolution
				if size == "" {
					size = "1024x1024"
				}
				if kind, err = prepareImageJob(ctx, g, c, model, prompt, size, &kf, pay); err != nil {
					return err
				}
				model, prompt, maxTokens = kind.Model, kind.Prompt, kind.Spec.Units
			} else if typ != "inference" { // file, parameters, work units and a miner checked before the escrow
				if !cmd.Flags().Changed("model") {
					model = ""
				}
				file := kf.dataset
				if file == "" {
					file = inputData
				}
				if kind, err = prepareKindJob(ctx, g, c, typ, model, file, &kf, pay); err != nil {
					return err
				}
				model, prompt, maxTokens = kind.Model, kind.Prompt, kind.Spec.Units
			} else if inputData != "" { // before the escrow: its hash commits to the prompt with the data
				p, err := inputPrompt(ctx, g, c, inputData, prompt, model, maxTokens)
				if err != nil {
					return err
				}
				input, prompt = &p, p.Text
				if p.Note != "" && !g.JSON() {
					fmt.Fprintf(g.Stderr(), "note: %s\n", p.Note)
				}
			}
			if textNeeds != nil { // before the escrow: some miner serving the model must have the hardware
				if err := checkTextNeeds(ctx, c, model, textNeeds); err != nil {
					return err
				}
			}
			coord, _ := address.Parse(h.Coordinator)
			id := make([]byte, jobs.IDLen)
			_, _ = rand.Read(id)
			ph := minerproto.PromptHash(prompt, nil)
			msg := jobs.NewCreateMsg(jobs.Spec{ID: id, Model: model, PromptHash: ph[:], MaxTokens: uint64(maxTokens), MaxPrice: pay, TTLSeconds: int64(ttl / time.Second)}, coord)
			if private {
				msg = jobs.NewCreatePrivateMsg(jobs.Spec{ID: id, Model: model, PromptHash: ph[:], MaxTokens: uint64(maxTokens), MaxPrice: pay, TTLSeconds: int64(ttl / time.Second)}, coord)
			}
			sub, err := w.SignAndSubmit(ctx, wallet, pw, msg, 0)
			if err != nil {
				return w.explain(g, wallet, err)
			}
			if !g.JSON() {
				fmt.Fprintf(g.Stderr(), "escrow of %s AITBC: %s, waiting for the block...\n", pay, sub.TxHash)
			}
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			res, err := g.node().WaitTx(wctx, sub.TxHash, 200*time.Millisecond)
			if err != nil {
				return err
			}
			if res.Status != "committed" {
				return fmt.Errorf("escrow transaction %s failed: %s", sub.TxHash, res.Error)
			}
			if agreement != "" {
				if err := g.bindJob(ctx, w, wallet, pw, agreement, id); err != nil {
					return err
				}
			}
			t := temperature
			job, err := c.Submit(ctx, coordinator.JobRequest{ID: hex.EncodeToString(id), Model: model, Prompt: prompt, MaxTokens: maxTokens,
				Temperature: &t, TTLSeconds: int64(ttl / time.Second), ServiceID: serviceID, Split: split, Private: private, Needs: textNeeds})
			if err != nil {
				return fmt.Errorf("%w (the escrow is refunded when its TTL passes)", err)
			}
			if wait {
				return followJob(ctx, g, c, job.JobID, !g.JSON())
			}
			out := struct {
				coordinator.JobView
				Input *jobinput.Prompt `json:"input,omitempty"`
				Spec  *jobkind.Spec    `json:"spec,omitempty"`
			}{JobView: job, Input: input}
			if kind != nil {
				out.Spec = &kind.Spec
			}
			return g.Print(out, func(w io.Writer) {
				fmt.Fprintf(w, "AI job submitted. Job ID: %s\n", job.JobID)
				if input != nil {
					fmt.Fprintf(w, "  input data sha256 %s: %d of %d lines in the prompt\n", input.FileSHA256, input.KeptLines, input.FileLines)
				}
				if kind != nil {
					if kind.Spec.Image != nil {
						fmt.Fprintf(w, "  %s image by %s, %d work units; the PNG: aitbc ai-results --job-id %s --output-dir DIR\n",
							kind.Spec.Image.Size, kind.Spec.Image.Model, kind.Spec.Units, job.JobID)
					} else {
						fmt.Fprintf(w, "  %s job on %s (sha256 %s), %d work units; results: aitbc ai-results --job-id %s --output-dir DIR\n",
							typ, kind.Spec.Input.Name, kind.Spec.Input.SHA256, kind.Spec.Units, job.JobID)
					}
				}
				fmt.Fprintf(w, "  escrow %s AITBC locked by %s; follow with: aitbc ai-status --job-id %s\n", pay, sub.TxHash, job.JobID)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&wallet, "wallet", "", "wallet that pays (required)")
	f.StringVar(&typ, "type", "inference", "job type: inference, training, data-processing or image (docs/JOBS.md)")
	f.StringVar(&prompt, "prompt", "", "the prompt (required for inference)")
	f.StringVar(&model, "model", "tolstoy-1m", "model to run")
	f.StringVar(&payment, "payment", "", "AITBC locked in escrow: the most the job may cost, fee included (required)")
	f.StringVar(&password, "password", "", "wallet password (default: AITBC_PASSWORD, a prompt, or the daemon's unlocked key)")
	f.StringVar(&serviceID, "service-id", "", "marketplace service the job runs under: your agreement with it pays the provider when the job settles")
	f.IntVar(&maxTokens, "max-tokens", 128, "tokens to generate at most")
	f.Float32Var(&temperature, "temperature", 0.8, "sampling temperature, 0 for greedy")
	secondsFlag(f, &ttl, "ttl", 900*time.Second, "time to live: the escrow returns in full if the job is not done by then")
	waitBoolFlag(f, &wait, nil, "stream the text and wait for settlement")
	f.StringVar(&inputData, "input-data", "", "text file (CSV, JSON, ...) stored with the coordinator by its SHA-256 and put in the prompt, cut to the model's context")
	kf.register(f)
	f.BoolVar(&split, "split", false, "run through span servers found on chain, each serving some of the model's layers (greedy; docs/DISTRIBUTED.md)")
	f.BoolVar(&private, "private", false, "keep token counts and price off the public record: settled with a commitment and a zero-knowledge proof")
	f.StringVar(&resolution, "resolution", "", "image jobs: WIDTHxHEIGHT (default 1024x1024); with --type inference it makes the job an image job")
	return cmd
}

func newAIStatusCmd(g *Globals) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "ai-status [job-id]",
		Short: "Show an AI job's status (queued / running on miner M / completed / settled / expired and refunded); a running training job's epoch",
		Example: `  aitbc ai-status --job-id 707c75d0a1b2c3d4e5f60718293a4b5c
  aitbc ai-status 707c75d0a1b2c3d4e5f60718293a4b5c --output json`,
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
			v, err := c.Status(cmd.Context(), id)
			if err != nil {
				return err
			}
			out := struct {
				coordinator.JobView
				// Progress is a running training or data-processing job's
				// last progress line (its epoch, loss and accuracy).
				Progress string `json:"progress,omitempty"`
			}{JobView: v}
			if showsProgress(v) {
				if out.Progress, err = jobProgress(cmd.Context(), c, id); err != nil {
					return err
				}
			}
			return g.Print(out, func(w io.Writer) {
				printJob(w, v)
				if out.Progress != "" {
					fmt.Fprintf(w, "  progress: %s\n", out.Progress)
				}
			})
		},
	}
	jobIDFlag(g, cmd, &id, "job id (or give it as the argument)")
	return cmd
}

func newDepositCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deposit",
		Short: "Prepay a coordinator: jobs submitted with your API key are paid from the deposit",
	}
	var wallet, amount, password string
	move := func(use, short string, withdraw bool) *cobra.Command {
		c := &cobra.Command{
			Use:     use,
			Short:   short,
			Example: fmt.Sprintf("  aitbc deposit %s --wallet customer-1 --amount 50\n  aitbc deposit %s --wallet customer-1 --amount 50 --output json", use, use),
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx := cmd.Context()
				amt, err := coin.Parse(amount)
				if err != nil || amt == 0 {
					return usagef("--amount must be a positive amount of AITBC, not %q", amount)
				}
				if wallet == "" {
					return usagef("--wallet is required")
				}
				h, err := coordinator.NewClient(g.Coord, "").Health(ctx)
				if err != nil {
					return err
				}
				coord, _ := address.Parse(h.Coordinator)
				w, err := g.wallets(ctx)
				if err != nil {
					return err
				}
				pw, err := g.signingPassword(ctx, w, wallet, password)
				if err != nil {
					return err
				}
				msg := jobs.NewDepositMsg(coord, amt)
				if withdraw {
					msg = jobs.NewWithdrawMsg(coord, amt)
				}
				sub, err := w.SignAndSubmit(ctx, wallet, pw, msg, 0)
				if err != nil {
					return w.explain(g, wallet, err)
				}
				if !withdraw {
					return g.Print(sub, func(w io.Writer) { fmt.Fprintln(w, sub.TxHash) })
				}
				// A withdrawal is announced now and paid after the release
				// delay: the coordinator may be running jobs on this money.
				p, err := jobs.QueryParams(ctx, g.node())
				if err != nil {
					return err
				}
				out := struct {
					TxHash       string `json:"tx_hash"`
					ReleaseDelay int64  `json:"release_delay_s"`
				}{sub.TxHash, p.ReleaseDelay}
				return g.Print(out, func(w io.Writer) {
					fmt.Fprintf(w, "%s\nwithdrawal of %s AITBC announced; it is paid back %s after the block (the release delay): aitbc deposit show --wallet %s\n",
						sub.TxHash, amt, p.ReleaseDelayDuration(), wallet)
				})
			},
		}
		c.Flags().StringVar(&wallet, "wallet", "", "wallet (required)")
		c.Flags().StringVar(&amount, "amount", "", "AITBC (required)")
		c.Flags().StringVar(&password, "password", "", "wallet password")
		return c
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "Show a wallet's deposit with the coordinator",
		Example: `  aitbc deposit show --wallet customer-1
  aitbc deposit show --wallet customer-1 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if wallet == "" {
				return usagef("--wallet is required")
			}
			h, err := coordinator.NewClient(g.Coord, "").Health(ctx)
			if err != nil {
				return err
			}
			coord, _ := address.Parse(h.Coordinator)
			a, err := g.walletAddress(ctx, wallet)
			if err != nil {
				return err
			}
			d, err := jobs.QueryDeposit(ctx, g.node(), a, coord)
			if err != nil {
				return err
			}
			return g.Print(d, func(w io.Writer) {
				fmt.Fprintf(w, "%s: %s AITBC deposited with coordinator %s\n", wallet, d.Amount, coord)
				if d.WithdrawAt != nil {
					fmt.Fprintf(w, "  %s AITBC announced for withdrawal, paid back at %s\n", d.Withdrawing, d.WithdrawAt.Local().Format(time.DateTime))
				}
			})
		},
	}
	show.Flags().StringVar(&wallet, "wallet", "", "wallet (required)")
	cmd.AddCommand(move("add", "Move AITBC from a wallet into its deposit with the coordinator", false),
		move("withdraw", "Announce that AITBC of the deposit go back to the wallet (paid after the release delay)", true), show)
	return cmd
}

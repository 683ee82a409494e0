package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/verify"
)

// ReceiptCheck is what `receipt verify` established.
type ReceiptCheck struct {
	Hash      string `json:"hash"`
	JobID     string `json:"job_id"`
	Miner     string `json:"miner"`
	Signature bool   `json:"signature_valid"`
	FieldsOK  bool   `json:"json_matches_signed_bytes"`
	ResultOK  *bool  `json:"result_matches_hash,omitempty"`
	Anchored  *bool  `json:"anchored_on_chain,omitempty"`
	Height    int64  `json:"settled_height,omitempty"`
	KeySource string `json:"key_source"`
	// Recompute is the outcome of --recompute: the attestation's
	// commitments compared with one prefill of prompt and output.
	Recompute *verify.Report `json:"recompute,omitempty"`
}

// ErrReceiptBad is returned when a receipt fails any check.
var ErrReceiptBad = errors.New("receipt verification failed")

func newReceiptCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "receipt", Short: "Work with signed job receipts"}
	var file, pubkey string
	var offline, recompute bool
	var attFile, model, promptFile, messagesFile string
	var threads int
	verifyCmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify a receipt: signature, hashes, and that its settlement is anchored on chain",
		Long: `Reads a receipt saved as JSON: the output of 'aitbc ai-results --output json'
(a job with its result and receipt) or a single receipt from 'aitbc receipts
--output json'. It checks the miner's ed25519 signature over the receipt's
canonical bytes, that the JSON fields say what the signed bytes say, and, when
the file carries the result text, that its SHA-256 is the receipt's result
hash. The miner's key comes from the chain's miner registry, or from --pubkey
to work offline; unless --offline, it also checks that the receipt's hash is
anchored on chain by the job's settlement.

With --recompute it also checks that the miner ran the model it names: the
attestation (--attestation, the miner's hidden-state commitments, whose hash
the receipt signs) is recomputed by one batched prefill of the prompt and the
output through the model (--model, default the receipt's, from this home's
registry) and compared within tolerances (docs/VERIFICATION.md). Give the
prompt text with --prompt-file to bind the attested prompt tokens to it, or a
chat job's messages with --messages-file (a JSON array of {"role","content"},
as submitted): the prompt the miner's engine ran is rebuilt from them with the
model's chat template (or, for a model without one, the flattened
conversation), and they must hash to the receipt's prompt hash.

A split job's file (one run through span servers) carries the chain of its
servers' stage receipts instead: each stage's signature (the receipt holds
the server's key), the route covering every layer in order with each
stage's input hash chain equal to the previous stage's output chain, the
token bounds, and the result hash are checked offline; unless --offline,
also that the settlement is anchored on chain (docs/DISTRIBUTED.md).`,
		Example: `  aitbc ai-results --job-id 707c75d0... --output json > receipt.json
  aitbc receipt verify --file receipt.json
  aitbc receipt verify --file receipt.json --offline --pubkey 3b6a27bc...
  aitbc receipt verify --file split-job.json --offline   # a split job: its span servers' stage receipts
  aitbc receipt verify --file receipt.json --offline --pubkey 3b6a27bc... \
      --recompute --attestation job.att --prompt-file prompt.txt
  aitbc receipt verify --file receipt.json --offline --pubkey 3b6a27bc... \
      --recompute --attestation job.att --messages-file messages.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usagef("--file is required")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			var job coordinator.JobView
			var rv *coordinator.ReceiptView
			if err := json.Unmarshal(data, &job); err == nil && len(job.StageSettlement) > 0 {
				// A split job: its span servers' chain of stage receipts (swarm_receipt.go).
				var anchors receiptAnchors
				if !offline {
					anchors = func(ctx context.Context, h string) (jobs.ReceiptAnchor, error) {
						return jobs.QueryReceipt(ctx, g.node(), h)
					}
				}
				chk, fail := verifyStages(cmd.Context(), anchors, job)
				if err := g.Print(chk, func(w io.Writer) { printStageCheck(w, chk) }); err != nil {
					return err
				}
				if fail != "" {
					return fmt.Errorf("%w: %s", ErrReceiptBad, fail)
				}
				return nil
			}
			if err := json.Unmarshal(data, &job); err == nil && job.Receipt != nil {
				rv = job.Receipt
			} else {
				var single coordinator.ReceiptView
				if err := json.Unmarshal(data, &single); err != nil || len(single.CBOR) == 0 {
					return fmt.Errorf("%s holds neither a job with a receipt nor a receipt (want the JSON of ai-results or receipts)", file)
				}
				rv = &single
			}
			r, err := jobs.DecodeReceipt(rv.CBOR)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrReceiptBad, err)
			}
			mAddr, _ := address.FromBytes(r.Miner)
			chk := ReceiptCheck{Hash: r.HashHex(), JobID: hex.EncodeToString(r.JobID), Miner: mAddr.String()}
			var pub []byte
			if pubkey != "" {
				if pub, err = hex.DecodeString(pubkey); err != nil {
					return usagef("--pubkey must be hex")
				}
				chk.KeySource = "--pubkey"
			} else if offline {
				return usagef("--offline needs --pubkey (the miner's ed25519 public key, hex)")
			} else {
				mi, err := miners.Query(cmd.Context(), g.node(), mAddr)
				if err != nil {
					return fmt.Errorf("miner %s's key from the chain: %w (give --pubkey to verify offline)", mAddr, err)
				}
				pub, _ = hex.DecodeString(mi.PubKey)
				chk.KeySource = "chain registry"
			}
			var fails []string
			if err := r.Verify(ed25519.PublicKey(pub)); err != nil {
				fails = append(fails, err.Error())
			} else {
				chk.Signature = true
			}
			want, _ := coordinator.NewReceiptView(rv.CBOR)
			chk.FieldsOK = want != nil && want.Hash == rv.Hash && want.JobID == rv.JobID && want.Miner == rv.Miner && want.Customer == rv.Customer &&
				want.Model == rv.Model && want.ResultHash == rv.ResultHash && want.PromptHash == rv.PromptHash && want.Price == rv.Price &&
				want.TokensOut == rv.TokensOut && want.TokensIn == rv.TokensIn
			if !chk.FieldsOK {
				fails = append(fails, "the JSON fields differ from the signed bytes")
			}
			if job.Result != nil {
				h := sha256.Sum256([]byte(*job.Result))
				ok := string(h[:]) == string(r.ResultHash)
				chk.ResultOK = &ok
				if !ok {
					fails = append(fails, "the result text does not hash to the receipt's result hash")
				}
			}
			if !offline {
				a, err := jobs.QueryReceipt(cmd.Context(), g.node(), chk.Hash)
				if err != nil {
					return err
				}
				chk.Anchored, chk.Height = &a.Anchored, a.Height
				if !a.Anchored {
					fails = append(fails, "the receipt's hash is not anchored on chain (not settled yet, or not this receipt)")
				}
			}
			if recompute {
				if attFile == "" {
					return usagef("--recompute needs --attestation (the miner's attestation file)")
				}
				att, err := os.ReadFile(attFile)
				if err != nil {
					return err
				}
				claim := verify.ReceiptClaim{AttestHash: r.AttestHash, PromptHash: r.PromptHash, Result: job.Result, MaxTokens: job.MaxTokens,
					Sampling: jobSampling(job.Sampling), Counts: &verify.TokenCounts{In: r.TokensIn, Out: r.TokensOut}}
				if promptFile != "" && messagesFile != "" {
					return usagef("--prompt-file and --messages-file exclude each other: a job has a prompt or messages")
				}
				if promptFile != "" {
					pb, err := os.ReadFile(promptFile)
					if err != nil {
						return err
					}
					p := string(pb)
					claim.Prompt = &p
				}
				if messagesFile != "" {
					msgs, err := readMessagesFile(messagesFile)
					if err != nil {
						return err
					}
					claim.Messages = msgs
				}
				name := model
				if name == "" {
					name = r.Model
				}
				rep, err := verify.VerifyReceipt(cmd.Context(), g.Home, name, claim, att, threads, verify.DefaultTolerance)
				chk.Recompute = &rep
				if err != nil {
					fails = append(fails, err.Error())
				}
			}
			perr := g.Print(chk, func(w io.Writer) {
				fmt.Fprintf(w, "receipt %s (job %s, miner %s)\n", chk.Hash, chk.JobID, chk.Miner)
				fmt.Fprintf(w, "  signature      %s (key from %s)\n", okBad(chk.Signature), chk.KeySource)
				fmt.Fprintf(w, "  fields         %s\n", okBad(chk.FieldsOK))
				if chk.ResultOK != nil {
					fmt.Fprintf(w, "  result hash    %s\n", okBad(*chk.ResultOK))
				}
				if chk.Anchored != nil {
					fmt.Fprintf(w, "  on chain       %s", okBad(*chk.Anchored))
					if *chk.Anchored {
						fmt.Fprintf(w, " (settled at height %d)", chk.Height)
					}
					fmt.Fprintln(w)
				}
				if rc := chk.Recompute; rc != nil {
					fmt.Fprintf(w, "  recompute      %s (%d tokens, %d chunks, %d sampler draws replayed, %s)\n", okBad(rc.Pass), rc.Tokens, len(rc.Chunks), rc.Replayed, rc.Duration.Round(time.Millisecond))
					for _, f := range rc.Failures {
						fmt.Fprintf(w, "    %s\n", f)
					}
					if rc.StopCheck == verify.StopByProbability {
						// A version 1 attestation: still verified, but its
						// stop cannot be replayed (the verifier service
						// fails it; docs/VERIFICATION.md).
						fmt.Fprintln(w, "    the stop was checked by probability only: a version 1 attestation cannot show its stop was drawn")
					}
				}
			})
			if perr != nil {
				return perr
			}
			if len(fails) > 0 {
				return fmt.Errorf("%w: %s", ErrReceiptBad, fails[0])
			}
			return nil
		},
	}
	verifyCmd.Flags().StringVar(&file, "file", "", "receipt JSON file")
	verifyCmd.Flags().StringVar(&pubkey, "pubkey", "", "the miner's ed25519 public key (hex), instead of the chain's registry")
	verifyCmd.Flags().BoolVar(&offline, "offline", false, "do not contact the chain (needs --pubkey)")
	verifyCmd.Flags().BoolVar(&recompute, "recompute", false, "recompute the miner's attestation with the model (one prefill)")
	verifyCmd.Flags().StringVar(&attFile, "attestation", "", "the miner's attestation file (CBOR), for --recompute")
	verifyCmd.Flags().StringVar(&model, "model", "", "model to recompute with (default: the receipt's model)")
	verifyCmd.Flags().StringVar(&promptFile, "prompt-file", "", "the job's prompt text, for --recompute")
	verifyCmd.Flags().StringVar(&messagesFile, "messages-file", "", "a chat job's messages (JSON array of {role, content}, as submitted), for --recompute")
	verifyCmd.Flags().IntVar(&threads, "threads", 0, "threads for --recompute (0: all cores)")
	cmd.AddCommand(verifyCmd)
	return cmd
}

// jobSampling is the job's sampling request from ai-results' JSON, which
// an engine attestation must claim (nil: an older coordinator's JSON,
// not checked).
func jobSampling(v *coordinator.SamplingView) *verify.JobSampling {
	if v == nil {
		return nil
	}
	return &verify.JobSampling{Temperature: v.Temperature, TopP: v.TopP, Seed: v.Seed, Stop: v.Stop}
}

// maxMessagesFile bounds a --messages-file (a job's messages are bounded
// far below it by the coordinator's request limit).
const maxMessagesFile = 16 << 20

// readMessagesFile reads a chat job's messages: a JSON array of
// {"role","content"}, or an object with a "messages" array (a request body).
func readMessagesFile(path string) ([]minerproto.ChatMessage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMessagesFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMessagesFile {
		return nil, usagef("--messages-file: over %d bytes", maxMessagesFile)
	}
	var msgs []minerproto.ChatMessage
	if err := json.Unmarshal(b, &msgs); err != nil {
		var body struct {
			Messages []minerproto.ChatMessage `json:"messages"`
		}
		if err2 := json.Unmarshal(b, &body); err2 != nil || body.Messages == nil {
			return nil, usagef("--messages-file: not a JSON array of messages: %v", err)
		}
		msgs = body.Messages
	}
	if len(msgs) == 0 {
		return nil, usagef("--messages-file: no messages")
	}
	return msgs, nil
}

func okBad(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAILED"
}

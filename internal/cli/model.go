package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// newModelCmd is `aitbc model`: the built-in inference engine's models.
func newModelCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "List, import, run and benchmark models of the built-in inference engine; train and use classifiers",
		Long: "The built-in engine runs LLaMA-architecture models in pure Go: llama2.c checkpoints and\n" +
			"GGUF files (F32, F16, Q8_0). tolstoy-1m is embedded in the binary; imported models live\n" +
			"under <home>/models/<name>/.",
	}
	cmd.AddCommand(newModelListCmd(g), newModelRunCmd(g), newModelImportCmd(g), newModelExportCmd(g), newModelBenchCmd(g),
		newModelTrainCmd(g), newModelPredictCmd(g), // modeltrain.go: classifiers on tabular data
		newModelFinetuneCmd(g)) // modeltrain.go: fine-tuning a language model on a text
	return cmd
}

func newModelListCmd(g *Globals) *cobra.Command {
	var modelsDir string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the models known to this machine",
		Example: `  aitbc model list
  aitbc model list --models-dir ~/.ollama/models     # also Ollama's models, by their Ollama names
  aitbc model list --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg := modelRegistry(g, modelsDir)
			list, err := reg.List()
			if err != nil {
				return err
			}
			// Ollama's models the engine cannot serve are named, with why,
			// on stderr: a user looking for one should not have to guess.
			var refused []engine.OllamaEntry
			if s := reg.Ollama(); s != nil {
				entries, err := s.List()
				if err != nil {
					return err
				}
				for _, e := range entries {
					if e.Err != nil {
						refused = append(refused, e)
					}
				}
			}
			err = g.Print(list, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tFORMAT\tTYPE\tPARAMS\tSIZE\tCONTEXT\tSOURCE")
				for _, m := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", m.Name, m.Format, m.TensorType,
						humanCount(m.Params), humanBytes(m.Size), m.Config.SeqLen, m.Source)
				}
				tw.Flush()
			})
			for _, e := range refused {
				fmt.Fprintf(g.Stderr(), "not served: %s: %v\n", e.Name, e.Err)
			}
			return err
		},
	}
	modelsDirFlag(cmd, &modelsDir)
	return cmd
}

// maxMessagesBytes bounds --messages (or its file).
const maxMessagesBytes = 1 << 20

// parseMessages reads --messages: a JSON array of {"role","content"}
// objects, or "@FILE" naming a file that holds one.
func parseMessages(s string) ([]engine.ChatMessage, error) {
	if s == "" {
		return nil, nil
	}
	b := []byte(s)
	if name, ok := strings.CutPrefix(s, "@"); ok {
		f, err := os.Open(name)
		if err != nil {
			return nil, usagef("--messages: %v", err)
		}
		defer f.Close()
		if b, err = io.ReadAll(io.LimitReader(f, maxMessagesBytes+1)); err != nil {
			return nil, usagef("--messages: %v", err)
		}
	}
	if len(b) > maxMessagesBytes {
		return nil, usagef("--messages: over %d bytes", maxMessagesBytes)
	}
	var raw []runMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, usagef(`--messages: want a JSON array of {"role": ..., "content": ...}: %v`, err)
	}
	if len(raw) == 0 {
		return nil, usagef("--messages: no messages")
	}
	out := make([]engine.ChatMessage, len(raw))
	for i, m := range raw {
		if m.Role == "" {
			return nil, usagef("--messages: message %d has no role", i)
		}
		out[i] = engine.ChatMessage{Role: m.Role, Content: m.Content}
	}
	return out, nil
}

func runMessages(msgs []engine.ChatMessage) []runMessage {
	var out []runMessage
	for _, m := range msgs {
		out = append(out, runMessage(m))
	}
	return out
}

// modelsDirFlag adds --models-dir, Ollama's model store, to a model command.
func modelsDirFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "models-dir", "", "Ollama's model store (e.g. ~/.ollama/models): its GGUF models are found by their Ollama names, llama3.2:latest")
}

// modelRegistry is the engine's registry of g.Home, with Ollama's store at
// modelsDir when one is given.
func modelRegistry(g *Globals, modelsDir string) *engine.Registry {
	return engine.NewRegistry(g.Home).WithOllama(expandHome(modelsDir))
}

// expandHome replaces a leading "~/" with the user's home folder, for
// paths given as --flag=~/... or in a config file, which no shell expands.
func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, rest)
		}
	}
	return p
}

// runOutput is the JSON result of `aitbc model run`.
type runOutput struct {
	Model        string            `json:"model"`
	Prompt       string            `json:"prompt"`
	Messages     []runMessage      `json:"messages,omitempty"`
	Text         string            `json:"text"`
	PromptTokens []int             `json:"prompt_tokens"`
	Tokens       []int             `json:"tokens"`
	Stop         engine.StopReason `json:"stop"`
	Temperature  float32           `json:"temperature"`
	TopP         float32           `json:"top_p"`
	Seed         uint64            `json:"seed"`
	Threads      int               `json:"threads"`
	Timings      runTimings        `json:"timings"`
}

// runMessage is a chat message as --messages and the JSON output spell it.
type runMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type runTimings struct {
	LoadMS          float64 `json:"load_ms"`
	PromptMS        float64 `json:"prompt_ms"`
	GenerateMS      float64 `json:"generate_ms"`
	TotalMS         float64 `json:"total_ms"`
	TokensPerSecond float64 `json:"tokens_per_second"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func newModelRunCmd(g *Globals) *cobra.Command {
	var (
		model       string
		prompt      string
		maxTokens   int
		temperature float32
		topP        float32
		seed        uint64
		threads     int
		modelsDir   string
		messages    string
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Generate text, streaming it as it is produced",
		Example: `  aitbc model run --prompt "Prince Andrew"
  aitbc model run --model tolstoy-1m --prompt "Natasha" --max-tokens 64 --temperature 0 --output json
  aitbc model run --models-dir ~/.ollama/models --model llama3.2:latest --prompt "Why is the sky blue?"
  aitbc model run --models-dir ~/.ollama/models --model llama3.2 --messages '[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]'
  aitbc model run --model qwen.gguf --messages @chat.json --temperature 0 --output json`,
		Long: "Generate text from a prompt. In text mode the prompt and the generated text are written\n" +
			"to stdout as tokens are produced and statistics to stderr; with --output json one object\n" +
			"is printed at the end. --temperature 0 is greedy (deterministic); otherwise --seed fixes\n" +
			"the output (0 picks a seed from the clock and reports it). --messages is a conversation instead\n" +
			"of a prompt, rendered with the model's chat template (GGUF tokenizer.chat_template, as\n" +
			"llama.cpp renders it); a model without one, or with a template the engine does not render,\n" +
			"refuses it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !(topP > 0 && topP <= 1) {
				return fmt.Errorf("%w: --top-p %v must be more than 0 and at most 1", engine.ErrTopP, topP)
			}
			msgs, err := parseMessages(messages)
			if err != nil {
				return err
			}
			if len(msgs) > 0 && prompt != "" {
				return usagef("give --prompt or --messages, not both")
			}
			if seed == 0 {
				seed = uint64(time.Now().UnixNano()) | 1
			}
			loadStart := time.Now()
			m, err := modelRegistry(g, modelsDir).Open(model)
			if err != nil {
				return err
			}
			defer m.Close()
			load := time.Since(loadStart)
			if !cmd.Flags().Changed("max-tokens") {
				maxTokens = 256
				n := len(m.Tokenizer().Encode(prompt, true))
				if len(msgs) > 0 {
					ids, err := m.EncodeChat(msgs)
					if err != nil {
						return err
					}
					n = len(ids)
				}
				maxTokens = max(min(maxTokens, m.Config().SeqLen-n), 1)
			}
			req := engine.GenerateRequest{Prompt: prompt, Messages: msgs, MaxTokens: maxTokens, Temperature: temperature, TopP: topP, Seed: seed, Threads: threads}
			var onToken func(engine.Token) error
			out := g.Stdout()
			printed := false // the prompt is echoed once the request is known to be valid
			if !g.JSON() {
				onToken = func(t engine.Token) error {
					if !printed {
						fmt.Fprint(out, prompt)
						printed = true
					}
					_, err := io.WriteString(out, t.Text)
					return err
				}
			}
			res, err := m.Generate(cmd.Context(), req, onToken)
			if !g.JSON() && (printed || err == nil) {
				if !printed {
					fmt.Fprint(out, prompt)
				}
				fmt.Fprintln(out)
			}
			if err != nil {
				return err
			}
			if threads == 0 {
				threads = runtime.GOMAXPROCS(0)
			}
			o := runOutput{
				Model: m.Name(), Prompt: prompt, Messages: runMessages(msgs), Text: res.Text, PromptTokens: res.PromptTokens, Tokens: res.Tokens,
				Stop: res.Stop, Temperature: temperature, TopP: topP, Seed: seed, Threads: threads,
				Timings: runTimings{LoadMS: ms(load), PromptMS: ms(res.Timings.Prompt), GenerateMS: ms(res.Timings.Generate),
					TotalMS: ms(res.Timings.Total), TokensPerSecond: res.Timings.TokensPerSecond},
			}
			if g.JSON() {
				return g.Print(o, nil)
			}
			fmt.Fprintf(g.Stderr(), "[%s: %d prompt + %d generated tokens, stop %s, %.0f tok/s, seed %d, %d threads]\n",
				o.Model, len(o.PromptTokens), len(o.Tokens), o.Stop, o.Timings.TokensPerSecond, seed, threads)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", engine.DefaultModel, "model name (see `aitbc model list`) or path of a model file")
	f.StringVar(&prompt, "prompt", "", "prompt text")
	f.StringVar(&messages, "messages", "", `chat messages instead of a prompt: a JSON array of {"role","content"}, or @FILE holding one`)
	f.IntVar(&maxTokens, "max-tokens", 256, "tokens to generate at most (default 256, capped by the context)")
	f.Float32Var(&temperature, "temperature", 0.8, "sampling temperature, 0 (greedy) to 2")
	f.Float32Var(&topP, "top-p", 0.9, "nucleus sampling threshold, in (0, 1]; 1 turns it off")
	f.Uint64Var(&seed, "seed", 0, "random seed (0: from the clock)")
	f.IntVar(&threads, "threads", 0, "threads per matrix product (0: all CPUs)")
	modelsDirFlag(cmd, &modelsDir)
	return cmd
}

func newModelImportCmd(g *Globals) *cobra.Command {
	var opts engine.ImportOptions
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Validate a llama2.c checkpoint or GGUF file and copy it into the model registry",
		Example: `  aitbc model import ./stories15M.bin --tokenizer ./tokenizer.bin
  aitbc model import ./tinyllama-q8_0.gguf --name tinyllama --force`,
		Long: "Import a model into <home>/models/<name>/. A llama2.c checkpoint needs --tokenizer (or a\n" +
			"tokenizer.bin next to it); a GGUF file (e.g. one Ollama pulled) carries its tokenizer.\n" +
			"The file is fully loaded before it is copied, so a corrupt file is refused.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("model import takes one FILE, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			mi, err := engine.NewRegistry(g.Home).Import(args[0], opts)
			if err != nil {
				return err
			}
			return g.Print(mi, func(w io.Writer) {
				fmt.Fprintf(w, "imported %s (%s %s, %s parameters, %s, context %d) into %s\n",
					mi.Name, mi.Format, mi.TensorType, humanCount(mi.Params), humanBytes(mi.Size), mi.Config.SeqLen, mi.Path)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Tokenizer, "tokenizer", "", "tokenizer.bin of a llama2.c checkpoint")
	f.StringVar(&opts.Name, "name", "", "registry name (default: from the file name)")
	f.BoolVar(&opts.Force, "force", false, "replace an imported model of the same name")
	return cmd
}

func newModelExportCmd(g *Globals) *cobra.Command {
	var model, typ, modelsDir string
	cmd := &cobra.Command{
		Use:   "export FILE.gguf",
		Short: "Write a model as a GGUF file (F32, F16, BF16, Q4_0-Q8_0, Q2_K-Q6_K, or the Q4_K_M/Q5_K_M mixes)",
		Example: `  aitbc model export tolstoy-1m.gguf
  aitbc model export tolstoy-f16.gguf --model tolstoy-1m --type f16 --output json
  aitbc model export tolstoy-q4km.gguf --type q4_k_m   # llama.cpp's Q4_K_M mix`,
		Long: "Write a model as a GGUF file of the llama architecture, with its tokenizer, for example\n" +
			"to make a Q8_0 copy of a model (about a quarter of the F32 size) and import it.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("model export takes one output FILE, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			want := strings.ToUpper(strings.TrimSpace(typ))
			tt, plain := exportTypes[want]
			mix := slices.Contains(engine.Mixes, want)
			if !plain && !mix {
				return usagef("--type must be one of %s, not %q", exportTypeNames(), typ)
			}
			m, err := modelRegistry(g, modelsDir).Open(model)
			if err != nil {
				return err
			}
			defer m.Close()
			f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			if mix {
				err = m.WriteGGUFMix(f, want)
			} else {
				err = m.WriteGGUF(f, tt)
			}
			if err != nil {
				f.Close()
				os.Remove(args[0])
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			st, err := os.Stat(args[0])
			if err != nil {
				return err
			}
			res := map[string]any{"model": m.Name(), "file": args[0], "type": want, "size_bytes": st.Size()}
			return g.Print(res, func(w io.Writer) {
				fmt.Fprintf(w, "wrote %s as %s (%s, %s)\n", m.Name(), args[0], want, humanBytes(st.Size()))
			})
		},
	}
	cmd.Flags().StringVar(&model, "model", engine.DefaultModel, "model name or path")
	cmd.Flags().StringVar(&typ, "type", "q8_0", "tensor type of the matrices, or a llama.cpp mix: "+exportTypeNames())
	modelsDirFlag(cmd, &modelsDir)
	return cmd
}

// exportTypes are the tensor types `model export --type` writes (by their
// GGML names; case does not matter); engine.Mixes are accepted too.
var exportTypes = map[string]gguf.TensorType{
	"F32": gguf.F32, "F16": gguf.F16, "BF16": gguf.BF16, "Q8_0": gguf.Q8_0,
	"Q4_0": gguf.Q4_0, "Q4_1": gguf.Q4_1, "Q5_0": gguf.Q5_0, "Q5_1": gguf.Q5_1,
	"Q2_K": gguf.Q2_K, "Q3_K": gguf.Q3_K, "Q4_K": gguf.Q4_K, "Q5_K": gguf.Q5_K, "Q6_K": gguf.Q6_K,
}

func exportTypeNames() string {
	names := slices.Sorted(maps.Keys(exportTypes))
	return strings.ToLower(strings.Join(append(names, engine.Mixes...), ", "))
}

// benchOutput is the JSON result of `aitbc model bench`.
type benchOutput struct {
	Model   string               `json:"model"`
	Format  string               `json:"format"`
	Params  int64                `json:"params"`
	Method  string               `json:"method"`
	CPU     string               `json:"cpus"`
	Results []engine.BenchResult `json:"results"`
}

func newModelBenchCmd(g *Globals) *cobra.Command {
	var (
		model     string
		opts      engine.BenchOptions
		threads   int
		modelsDir string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure generation and prompt speed with one thread and with all of them",
		Example: `  aitbc model bench
  aitbc model bench --model tolstoy-1m --reps 3 --threads 2 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := modelRegistry(g, modelsDir).Open(model)
			if err != nil {
				return err
			}
			defer m.Close()
			if threads <= 0 {
				threads = runtime.GOMAXPROCS(0)
			}
			counts := []int{1}
			if threads > 1 {
				counts = append(counts, threads)
			}
			o := benchOutput{Model: m.Name(), Format: string(m.Format()) + " " + m.TensorType(), Params: m.Config().Params(),
				CPU: fmt.Sprintf("%d CPUs, GOMAXPROCS %d, %s/%s", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)}
			for _, n := range counts {
				opts.Threads = n
				r, err := m.Bench(cmd.Context(), opts)
				if err != nil {
					return err
				}
				o.Results = append(o.Results, r)
			}
			r0 := o.Results[0]
			o.Method = fmt.Sprintf("greedy decoding from BOS for %d positions (full forward pass and argmax at each, no early stop); "+
				"1 warm-up and %d timed repetitions per thread count; tok/s = positions / wall-clock time of a repetition, "+
				"median and best of the repetitions; prompt tok/s = the same positions processed as one prompt in batches (no logits), median", r0.Tokens, r0.Reps)
			return g.Print(o, func(w io.Writer) {
				c := m.Config()
				fmt.Fprintf(w, "model   %s (%s, %s parameters, dim %d, %d layers, context %d)\n",
					o.Model, o.Format, humanCount(o.Params), c.Dim, c.Layers, c.SeqLen)
				fmt.Fprintf(w, "machine %s\n", o.CPU)
				fmt.Fprintf(w, "method  %s\n\n", o.Method)
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "THREADS\tTOK/S (MEDIAN)\tBEST\tPROMPT TOK/S\tWALL\tSPEED-UP")
				for _, r := range o.Results {
					fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f\t%s\t%.2fx\n", r.Threads, r.TokensPerSecond, r.Best, r.PromptTokensPerSecond,
						r.Wall.Round(time.Millisecond), r.TokensPerSecond/r0.TokensPerSecond)
				}
				tw.Flush()
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", engine.DefaultModel, "model name or path")
	f.IntVar(&opts.Tokens, "tokens", 0, "positions per repetition (0: min(256, context))")
	f.IntVar(&opts.Reps, "reps", 5, "timed repetitions per thread count")
	f.IntVar(&threads, "threads", 0, "thread count of the multi-threaded run (0: all CPUs)")
	modelsDirFlag(cmd, &modelsDir)
	return cmd
}

// humanCount writes 984192 as 984.2K.
func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// humanBytes writes 3969564 as 3.8 MiB.
func humanBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", f), ".0") + " " + units[i]
}

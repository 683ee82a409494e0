package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/config"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/miner/backend"
	"github.com/aitbc/aitbc/internal/miner/hw"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/walletd"
)

// minerKey opens a wallet's key for a daemon that signs receipts itself;
// the wallet service it returns submits through node.
func (g *Globals) minerKey(ctx context.Context, wallet, password string, node *rpc.Client) (*keystore.Key, *walletd.Service, string, error) {
	ks, err := keystore.ForHome(g.Home)
	if err != nil {
		return nil, nil, "", err
	}
	if _, err := ks.Get(wallet); err != nil {
		return nil, nil, "", fmt.Errorf("%w (the miner's wallet must be in %s: aitbc create --wallet %s)", err, ks.Path(), wallet)
	}
	if password == "" && g.canPrompt() {
		if password, err = g.secret(ctx, "", secretSource{flag: "password", prompt: fmt.Sprintf("Password for wallet %s: ", wallet)}); err != nil {
			return nil, nil, "", err
		}
	}
	if password == "" {
		return nil, nil, "", usagef("the miner signs with wallet %s: give --password or AITBC_PASSWORD", wallet)
	}
	key, err := ks.Unlock(wallet, password)
	if err != nil {
		return nil, nil, "", err
	}
	svc, err := walletd.NewService(walletd.ServiceConfig{Store: ks, Node: node})
	if err != nil {
		return nil, nil, "", err
	}
	return key, svc, password, nil
}

func newMinerCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "miner", Short: "Provide compute: run the miner daemon, register, inspect hardware"}
	var wallet, password, backendName, endpoint, apiKey, price, stake, models, metricsListen string
	var oracleURL string
	var cheat string
	var provider string
	var slots int
	var heartbeat time.Duration
	var jobKinds bool
	var visionModels string
	var imagesEndpoint, imagesKey string
	var modelsDir string
	var spanModel, spanLayers, spanListen, spanURL string
	start := &cobra.Command{
		Use:   "start",
		Short: "Register (stake, models, price) if needed and serve a coordinator's jobs",
		Long: `Runs the miner daemon: it registers the wallet on chain as a miner (locking
--stake) or updates its models and price, sends heartbeats, connects to the
coordinator, runs jobs through the backend (the built-in engine, an Ollama
server, or any OpenAI-compatible server such as vLLM or llama.cpp's
llama-server) and signs a receipt for each job it finishes.

--coordinator may list several coordinators, comma-separated (several
coordinators sharing one PostgreSQL store): when a session ends, because its
coordinator died or dropped it, the miner connects to the next at once. Each
round of the list starts with the coordinators that answer, nearest first.`,
		Example: `  aitbc miner start --coordinator http://127.0.0.1:8000 --wallet gpu-provider --backend builtin --password 123
  aitbc miner start --coordinator http://10.0.0.1:8000,http://10.0.0.2:8000 --wallet gpu-provider --output json
  aitbc miner start --wallet gpu-provider --backend ollama --endpoint http://127.0.0.1:11434 --models llama3.2:latest
  aitbc miner start --wallet gpu-provider --backend openai --endpoint http://127.0.0.1:8080 --price 0.5
  aitbc miner start --wallet ai-service-provider --backend builtin --job-kinds --password 123
  aitbc miner start --wallet gpu-provider --backend builtin --models-dir ~/.ollama/models --models llama3.2:latest
  aitbc miner start --wallet my-gpu-box --provider aitbc1... --password 123   # runs that provider's marketplace jobs once it runs market add-miner
  aitbc miner start --wallet span-a --model tolstoy-1m --layers 0-1 --span-listen 127.0.0.1:8031 --password 123   # also serves layers 0-1 to routed jobs (docs/DISTRIBUTED.md)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if wallet == "" {
				return usagef("--wallet is required")
			}
			p, err := coin.Parse(price)
			if err != nil {
				return usagef("--price: %v", err)
			}
			st, err := coin.Parse(stake)
			if err != nil {
				return usagef("--stake: %v", err)
			}
			var prov *address.Address
			if provider != "" {
				a, err := address.Parse(provider)
				if err != nil {
					return usagef("--provider: %v", err)
				}
				prov = &a
			}
			if modelsDir != "" && backendName != "builtin" {
				return usagef("--models-dir is for --backend builtin (an Ollama server reads its own store)")
			}
			var b backend.Backend
			httpc := &http.Client{}
			switch backendName {
			case "builtin":
				b = backend.NewBuiltin(g.Home, backend.BuiltinOptions{ModelsDir: expandHome(modelsDir)})
			case "ollama":
				b = backend.NewOllama(endpoint, httpc)
			case "openai":
				if endpoint == "" {
					return usagef("--backend openai needs --endpoint (the server's base URL, e.g. http://127.0.0.1:8080)")
				}
				o := backend.NewOpenAI(endpoint, apiKey, httpc)
				if visionModels != "" {
					o = o.WithVision(strings.Split(visionModels, ","))
				}
				b = o
			default:
				return usagef("--backend must be builtin, ollama or openai, not %q", backendName)
			}
			log, err := g.newLogger("info")
			if err != nil {
				return err
			}
			// Bound before the wallet is unlocked: a taken port fails fast.
			col := minerCollector(oracleURL) // --oracle: jobs and span work in one report
			spans, err := startSpans(g, spanModel, spanLayers, spanListen, spanURL, spanObserver(col))
			if err != nil {
				return err
			}
			obs, err := startMinerObservability(ctx, metricsListen)
			if err != nil {
				return errors.Join(err, spans.close())
			}
			chain := g.serviceNode(log)
			if b, err = applyCheat(ctx, g.Home, chain, b, cheat); err != nil { // audits_cheat.go: test builds only
				return errors.Join(err, obs.close(), spans.close())
			}
			key, svc, pw, err := g.minerKey(ctx, wallet, password, chain)
			if err != nil {
				return errors.Join(err, obs.close(), spans.close())
			}
			// --oracle: signed metric reports of the jobs run (oracle.go).
			withReports, stopReports, err := minerReporter(ctx, oracleURL, col, key, chain, log)
			if err != nil {
				return errors.Join(err, obs.close(), spans.close())
			}
			defer stopReports()
			spans.run(ctx, walletd.WalletSender{S: svc, Name: wallet, Password: pw}, heartbeat, log)
			info := hw.Detect(ctx)
			gpu, mem := "cpu", uint64(0)
			if len(info.GPUs) > 0 {
				gpu, mem = info.GPUs[0].Name, info.GPUs[0].MemoryTotalMB
			}
			var ms []string
			if models != "" {
				ms = strings.Split(models, ",")
			}
			var images miner.ImageGenerator
			if imagesEndpoint != "" { // image jobs (docs/JOBS.md, "Images")
				images = backend.NewImages(imagesEndpoint, imagesKey, httpc)
			}
			// The miner registers (or updates its registration) before the
			// banner: a chain that cannot be reached, or a stake that cannot
			// be paid, is a startup failure.
			err = system.Run(ctx, system.Config{Log: log, Miners: []system.MinerConfig{{
				Miner: miner.Config{
					Coordinator: g.Coord, Key: key, Chain: chain,
					Sender: walletd.WalletSender{S: svc, Name: wallet, Password: pw}, Runner: withReports(obs.instrument(miner.BackendRunner{B: b})),
					Models: ms, PricePer1k: p, Stake: st, Slots: slots, GPU: gpu, GPUMemoryMB: mem,
					Hardware: oneLineHW(info), HeartbeatEvery: heartbeat, Logger: log, Version: Version, JobKinds: jobKinds,
					Provider: prov,
					Images:   images,
					Vision:   visionLister(b),
				},
				Key: key, Register: true,
			}}}, func(s *system.System) error {
				fmt.Fprintf(g.Stderr(), "miner %s, %s backend, coordinator %s\n%s\n%s%s", s.Miners[0].Address(), b.Name(), g.Coord, info.Summary(), obs.attach(s.Miners[0].Miner), spans.banner())
				return nil
			})
			return errors.Join(err, obs.close(), spans.close())
		},
	}
	f := start.Flags()
	f.StringVar(&wallet, "wallet", "", "wallet that registers, stakes, signs receipts and is paid (required)")
	f.StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD)")
	f.StringVar(&backendName, "backend", "builtin", "builtin, ollama or openai")
	f.StringVar(&endpoint, "endpoint", "", "backend URL (ollama default http://127.0.0.1:11434)")
	f.StringVar(&apiKey, "backend-api-key", "", "API key of an OpenAI-compatible backend")
	f.StringVar(&visionModels, "vision-models", "", "comma-separated models of an OpenAI-compatible backend that read images (such a server does not say which do; an Ollama backend's are read from its /api/show): jobs whose chat messages carry images go only to miners declaring the model")
	f.StringVar(&price, "price", "1", "price in AITBC per 1,000 output tokens")
	f.StringVar(&stake, "stake", "100", "AITBC to stake at registration")
	f.StringVar(&models, "models", "", "comma-separated models to offer (default: all the backend serves)")
	f.IntVar(&slots, "slots", 1, "concurrent jobs")
	f.DurationVar(&heartbeat, "heartbeat", time.Minute, "interval of on-chain heartbeats")
	f.StringVar(&oracleURL, "oracle", "", "metrics oracle's URL (e.g. http://127.0.0.1:8010): report processed tokens, latency, uptime and tasks every 30 s, signed with the miner's key (docs/AGENTS.md)")
	f.StringVar(&metricsListen, "metrics-listen", "", "serve GET /metrics (Prometheus) and GET /health on this address, e.g. 127.0.0.1:8018 (default: off)")
	f.BoolVar(&jobKinds, "job-kinds", false, "also run data-processing and training jobs, fetching their input files from the coordinator (docs/JOBS.md)")
	f.StringVar(&modelsDir, "models-dir", "", "Ollama's model store, e.g. ~/.ollama/models: the built-in engine also serves its GGUF models by their Ollama names (llama3.2:latest)")
	f.StringVar(&provider, "provider", "", "marketplace provider address this miner works for: it names it on chain (miners/set_provider); the provider's market add-miner completes the consent (docs/MARKETPLACE.md)")
	f.StringVar(&imagesEndpoint, "images-endpoint", "", "OpenAI-compatible images server (POST /v1/images/generations, e.g. LocalAI) for image jobs; its models are offered as image:<model> (docs/JOBS.md)")
	f.StringVar(&imagesKey, "images-api-key", "", "API key of the images server")
	registerCheatFlags(f, &cheat) // --cheat, in binaries built with -tags aitbc_cheat only
	f.StringVar(&spanModel, "model", "", "model whose --layers this miner serves as a span server (default tolstoy-1m)")
	f.StringVar(&spanLayers, "layers", "", "also serve these layers of --model to routed jobs, inclusive ranges: 0-1 or 0-0,2-3 (default: off; docs/DISTRIBUTED.md)")
	f.StringVar(&spanListen, "span-listen", "127.0.0.1:8031", "address of the span API when --layers is set")
	f.StringVar(&spanURL, "span-url", "", "public base URL of the span API registered on chain, by which coordinators route to it (default http://<span-listen>)")
	withConfig(start, config.Miner)
	annotate(start, coordListAnnotation) // --coordinator chain: every announced URL; the miner ranks them itself

	hwCmd := &cobra.Command{
		Use:   "hardware",
		Short: "Show the hardware the miner would report (CPU, memory, GPUs via nvidia-smi)",
		Example: `  aitbc miner hardware
  aitbc miner hardware --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := hw.Detect(cmd.Context())
			return g.Print(info, func(w io.Writer) {
				fmt.Fprintln(w, info.Summary())
				for _, gp := range info.GPUs {
					fmt.Fprintf(w, "  gpu %d: %s, %d MB, driver %s\n", gp.Index, gp.Name, gp.MemoryTotalMB, gp.Driver)
				}
				for _, warn := range info.Warnings {
					fmt.Fprintf(w, "  warning: %s\n", warn)
				}
			})
		},
	}

	var statusAddr addressFlag
	status := &cobra.Command{
		Use:   "status",
		Short: "Show a miner's on-chain registration (stake, models, price, settled jobs)",
		Example: `  aitbc miner status --address aitbc1qxy...
  aitbc miner status --address aitbc1qxy... --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, _, err := statusAddr.resolve(cmd.Context(), g)
			if err != nil {
				return err
			}
			mi, err := miners.Query(cmd.Context(), g.node(), a)
			if err != nil {
				return err
			}
			return g.Print(mi, func(w io.Writer) { printMiner(w, mi) })
		},
	}
	statusAddr.bind(status)

	list := &cobra.Command{
		Use:   "list",
		Short: "List the miners registered on chain",
		Example: `  aitbc miner list
  aitbc miner list --node http://10.0.0.2:8006 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := miners.QueryAll(cmd.Context(), g.node())
			if err != nil {
				return err
			}
			return g.Print(l, func(w io.Writer) {
				if len(l.Miners) == 0 {
					fmt.Fprintln(w, "no miners registered")
				}
				for _, mi := range l.Miners {
					printMiner(w, mi)
				}
			})
		},
	}

	var dwallet, dpassword string
	dereg := &cobra.Command{
		Use:   "deregister",
		Short: "Stop offering compute: the stake returns after the unbonding period",
		Example: `  aitbc miner deregister --wallet gpu-provider
  AITBC_PASSWORD=... aitbc miner deregister --wallet gpu-provider --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if dwallet == "" {
				return usagef("--wallet is required")
			}
			w, err := g.wallets(ctx)
			if err != nil {
				return err
			}
			pw, err := g.signingPassword(ctx, w, dwallet, dpassword)
			if err != nil {
				return err
			}
			sub, err := w.SignAndSubmit(ctx, dwallet, pw, miners.NewDeregisterMsg(), 0)
			if err != nil {
				return w.explain(g, dwallet, err)
			}
			return g.Print(sub, func(w io.Writer) {
				fmt.Fprintf(w, "%s\nunbonding: the stake returns %d blocks after this transaction commits\n", sub.TxHash, miners.DefaultParams().UnbondingBlocks)
			})
		},
	}
	dereg.Flags().StringVar(&dwallet, "wallet", "", "the miner's wallet (required)")
	dereg.Flags().StringVar(&dpassword, "password", "", "wallet password")
	cmd.AddCommand(start, hwCmd, status, list, dereg)
	return cmd
}

func printMiner(w io.Writer, m miners.View) {
	fmt.Fprintf(w, "%s  %s  stake %s AITBC  %s AITBC/1k tokens  %s  models %s  jobs settled %d  last heartbeat %s\n",
		m.Address, m.Status, m.Stake, m.PricePer1k, m.GPU, strings.Join(m.Models, ","), m.JobsSettled, m.LastHeartbeat.Local().Format(time.DateTime))
}

// oneLineHW summarises hardware in one line for the coordinator's views.
func oneLineHW(i hw.Info) string {
	s := fmt.Sprintf("%s, %d CPUs, %d MB", i.CPUModel, i.CPUs, i.MemoryTotalMB)
	for _, g := range i.GPUs {
		s += fmt.Sprintf(", %s %d MB", g.Name, g.MemoryTotalMB)
	}
	if len(i.GPUs) == 0 {
		s += ", no GPU"
	}
	return s
}

// visionLister is b's list of models that read images, when it has one.
func visionLister(b backend.Backend) backend.VisionLister {
	if v, ok := b.(backend.VisionLister); ok {
		return v
	}
	return nil
}

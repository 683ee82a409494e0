package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/swarm"
)

// newSwarmCmd is `aitbc swarm`: the span servers of distributed inference
// (docs/DISTRIBUTED.md).
func newSwarmCmd(g *Globals) *cobra.Command {
	var peers string
	cmd := &cobra.Command{
		Use:   "swarm",
		Short: "Show which spans of which models the span servers serve, with their round trip and speed",
		Long: `Asks each span server for GET /v1/spans and shows the layers it serves, its
round trip from here, its open sessions and its measured speed in
layer-tokens per second: the weights of the routing graph
(docs/DISTRIBUTED.md). The servers are the active span agents registered on
chain with an endpoint (--node), or --peers (comma-separated base URLs).`,
		Example: `  aitbc swarm
  aitbc swarm --peers http://127.0.0.1:8031,http://127.0.0.1:8032
  aitbc swarm --peers http://127.0.0.1:8031 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			urls, err := spanURLs(cmd.Context(), g, peers)
			if err != nil {
				return err
			}
			probes := swarm.ProbeAll(cmd.Context(), &http.Client{}, urls)
			return g.Print(probes, func(w io.Writer) { printProbes(w, probes) })
		},
	}
	cmd.Flags().StringVar(&peers, "peers", "", "span servers' base URLs, comma-separated (default: the endpoints of the span agents on chain)")
	cmd.AddCommand(newSwarmServeCmd(g), newSwarmGenerateCmd(g))
	return cmd
}

// spanURLs is --peers, or the endpoints of the active span agents on
// chain.
func spanURLs(ctx context.Context, g *Globals, peers string) ([]string, error) {
	if strings.TrimSpace(peers) != "" {
		return peerURLs(peers)
	}
	l, err := agents.List(ctx, g.node(), agents.Filter{Capability: "span", ActiveOnly: true})
	if err != nil {
		return nil, fmt.Errorf("span agents on chain (or give --peers): %w", err)
	}
	var out []string
	for _, a := range l.Agents {
		if a.Endpoint != "" && !slices.Contains(out, a.Endpoint) {
			out = append(out, a.Endpoint)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no active span agent on chain has an endpoint (give --peers)")
	}
	return out, nil
}

func peerURLs(s string) ([]string, error) {
	var out []string
	for u := range strings.SplitSeq(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		return nil, usagef("--peers is required: the span servers' base URLs, comma-separated")
	}
	if len(out) > 256 {
		return nil, usagef("--peers: %d URLs, at most 256", len(out))
	}
	return out, nil
}

func printProbes(w io.Writer, probes []swarm.Probe) {
	fmt.Fprintf(w, "%-28s %-14s %-7s %9s %8s %14s\n", "SERVER", "MODEL", "LAYERS", "RTT", "SESSIONS", "LAYER-TOK/S")
	for _, p := range probes {
		if p.Error != "" {
			fmt.Fprintf(w, "%-28s unreachable: %s\n", p.URL, p.Error)
			continue
		}
		for _, sp := range p.Info.Spans {
			fmt.Fprintf(w, "%-28s %-14s %-7s %9s %8d %14.0f\n", p.URL, sp.Model, fmt.Sprintf("%d-%d", sp.First, sp.Last-1),
				p.RTT.Round(10*time.Microsecond), p.Info.Sessions, p.Info.LayerTokensPerSecond)
		}
	}
}

// newSwarmServeCmd is `aitbc swarm serve`: a span server without the
// miner's chain registration (the miner's --layers runs the same server).
func newSwarmServeCmd(g *Globals) *cobra.Command {
	var model, layers, listen string
	var cfg swarm.ServerConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve layers of a model to distributed-inference drivers (a span server)",
		Example: `  aitbc swarm serve --model tolstoy-1m --layers 0-1 --listen 127.0.0.1:8031
  aitbc swarm serve --model tolstoy-1m --layers 0-1,2-3 --listen 127.0.0.1:8031 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.newLogger("info")
			if err != nil {
				return err
			}
			srv, err := newSpanServer(g, model, layers, cfg)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			info := struct {
				Listen string           `json:"listen"`
				Spans  []swarm.SpanInfo `json:"spans"`
			}{"http://" + ln.Addr().String(), srv.Info().Spans}
			if err := g.Print(info, func(w io.Writer) {
				for _, sp := range info.Spans {
					fmt.Fprintf(w, "serving layers %d-%d of %s (%d layers) on %s\n", sp.First, sp.Last-1, sp.Model, sp.Layers, info.Listen)
				}
			}); err != nil {
				_ = ln.Close()
				return err
			}
			log.Info("span server started", "listen", info.Listen)
			return swarm.Serve(cmd.Context(), ln, srv)
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", engine.DefaultModel, "model whose layers are served (built in, imported or a file)")
	f.StringVar(&layers, "layers", "", "layers served, inclusive, comma-separated ranges: 0-1 or 0-0,2-3 (default: all)")
	f.StringVar(&listen, "listen", "127.0.0.1:8031", "address of the span API")
	f.IntVar(&cfg.MaxSessions, "max-sessions", 64, "inference sessions held at once")
	f.Int64Var(&cfg.MaxCacheBytes, "max-cache-bytes", 1<<30, "bytes of KV cache all sessions may hold together")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", 5*time.Minute, "drop a session unused for this long")
	return cmd
}

// newSpanServer loads model and makes a span server for layers ("": all).
func newSpanServer(g *Globals, model, layers string, cfg swarm.ServerConfig) (*swarm.Server, error) {
	m, err := engine.Resolve(g.Home, model)
	if err != nil {
		return nil, err
	}
	if model == "" {
		model = engine.DefaultModel
	}
	ranges := [][2]int{{0, m.Config().Layers}}
	if layers != "" {
		if ranges, err = swarm.ParseLayers(layers); err != nil {
			return nil, usagef("--layers: %v", err)
		}
	}
	spans, err := swarm.SpansOf(model, m, ranges)
	if err != nil {
		return nil, usagef("--layers: %v", err)
	}
	return swarm.NewServer(spans, cfg, nil)
}

// newSwarmGenerateCmd is `aitbc swarm generate`: drive one greedy
// generation through a route of span servers.
func newSwarmGenerateCmd(g *Globals) *cobra.Command {
	var peers, model, prompt, mode string
	var maxTokens int
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Generate text greedily through a route of span servers (min-latency or throughput routing, failover)",
		Long: `Finds a chain of span servers covering all the model's layers among --peers
(or, without it, the active span agents on chain, as a coordinator does),
sends the prompt through it and streams the greedy continuation. When a
server dies mid-generation, the route is rebuilt around it (the server is
banned for 15 s, doubling on each repeated failure) and the new servers'
caches are rebuilt by replaying the session's past inputs; the stream goes
on without a gap or a repeated token. The tokenizer is read from the model
here; the weights used are the span servers'.`,
		Example: `  aitbc swarm generate --prompt "Once upon a time"
  aitbc swarm generate --peers http://127.0.0.1:8031,http://127.0.0.1:8032 --prompt "Once upon a time"
  aitbc swarm generate --peers http://127.0.0.1:8031,http://127.0.0.1:8032 --mode max_throughput --max-tokens 50 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if mode != string(swarm.MinLatency) && mode != string(swarm.MaxThroughput) {
				return usagef("--mode must be min_latency or max_throughput, not %q", mode)
			}
			if maxTokens < 1 || maxTokens > 4096 {
				return usagef("--max-tokens must be 1 to 4096")
			}
			log, err := g.newLogger("warn")
			if err != nil {
				return err
			}
			var dir swarm.Directory = swarm.ChainPeers{Node: g.node(), HTTP: &http.Client{}, Log: log}
			if strings.TrimSpace(peers) != "" {
				urls, err := peerURLs(peers)
				if err != nil {
					return err
				}
				dir = swarm.URLPeers{HTTP: &http.Client{}, URLs: urls, Log: log}
			}
			res, err := swarmGenerate(cmd.Context(), g, dir, model, prompt, maxTokens, swarm.Mode(mode), func(text string) {
				if !g.JSON() {
					fmt.Fprint(g.stdout, text)
				}
			})
			if err != nil {
				return err
			}
			return g.Print(res, func(w io.Writer) {
				fmt.Fprintln(w)
				for _, h := range res.Route {
					fmt.Fprintf(w, "  layers %d-%d on %s\n", h.First, h.Last, h.Server)
				}
				if res.Repairs > 0 {
					fmt.Fprintf(w, "  route repaired %d times\n", res.Repairs)
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&peers, "peers", "", "span servers' base URLs, comma-separated (default: the span agents on chain, by their endpoints)")
	f.StringVar(&model, "model", engine.DefaultModel, "model to run (its tokenizer is loaded here)")
	f.StringVar(&prompt, "prompt", "", "text to continue")
	f.IntVar(&maxTokens, "max-tokens", 64, "tokens to generate at most")
	f.StringVar(&mode, "mode", string(swarm.MinLatency), "routing: min_latency or max_throughput")
	return cmd
}

// swarmResult is `aitbc swarm generate`'s answer.
type swarmResult struct {
	Text    string     `json:"text"`
	Tokens  []int      `json:"tokens"`
	Route   []swarmHop `json:"route"`
	Repairs int        `json:"repairs"`
}

type swarmHop struct {
	Server string `json:"server"`
	First  int    `json:"first_layer"` // inclusive, as --layers
	Last   int    `json:"last_layer"`
}

func swarmGenerate(ctx context.Context, g *Globals, dir swarm.Directory, model, prompt string, maxTokens int, mode swarm.Mode, onText func(string)) (swarmResult, error) {
	m, err := engine.Resolve(g.Home, model)
	if err != nil {
		return swarmResult{}, err
	}
	if model == "" {
		model = engine.DefaultModel
	}
	tok := m.Tokenizer()
	ids := m.EncodePrompt(prompt)
	p := &swarm.Pipeline{HTTP: &http.Client{}, Dir: dir, Mode: mode}
	prev := ids[len(ids)-1]
	var b strings.Builder
	res, err := p.Generate(ctx, swarm.GenerateRequest{Model: model, Layers: m.Config().Layers, Prompt: ids, MaxTokens: maxTokens, Stop: m.StopTokens()},
		func(id, _ int) error {
			piece := tok.Piece(prev, id)
			prev = id
			b.WriteString(piece)
			onText(piece)
			return nil
		})
	out := swarmResult{Text: b.String(), Tokens: res.Tokens, Repairs: res.Repairs}
	for _, h := range res.Route {
		out.Route = append(out.Route, swarmHop{Server: h.Peer.ID, First: h.First, Last: h.Last - 1})
	}
	return out, err
}

package devnet_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/miner/hw"
)

// exposition is one scrape of a /metrics endpoint.
type exposition struct {
	service string
	body    []byte
	types   map[string]string // family name -> type, from the # TYPE lines
}

func scrape(t *testing.T, service, url string, header ...string) exposition {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", service, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: GET %s: %d %v\n%s", service, url, resp.StatusCode, err, body)
	}
	ex := exposition{service: service, body: body, types: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			ex.types[f[2]] = f[3]
		}
	}
	return ex
}

// value is the sum of the samples of series name whose label text
// contains every one of labels (`model="tolstoy-1m"`).
func (ex exposition) value(name string, labels ...string) float64 {
	var sum float64
	for _, line := range strings.Split(string(ex.body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if i := strings.LastIndexByte(line, ' '); ok && i > 0 {
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			sum += v
		}
	}
	return sum
}

// documented returns the metric names docs/METRICS.md lists (the first
// cell of a table row).
func documented(t *testing.T) map[string]bool {
	t.Helper()
	doc, err := os.ReadFile("../../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	re := regexp.MustCompile("(?m)^\\| `([a-z_:][a-z0-9_:*]*)` \\|")
	for _, m := range re.FindAllStringSubmatch(string(doc), -1) {
		out[m[1]] = true
	}
	return out
}

// runtimeFamily reports whether a family is the Go collector's or the
// process collector's, which docs/METRICS.md lists as go_* and process_*.
func runtimeFamily(name string) bool {
	return strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_")
}

// dashboardQueries returns every PromQL expression of the Grafana
// dashboard.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/grafana/aitbc.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana/aitbc.json: %v", err)
	}
	var out []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	if len(out) < 20 {
		t.Fatalf("the dashboard has %d queries", len(out))
	}
	return out
}

var metricRE = regexp.MustCompile(`\b(?:aitbc|cometbft)_[a-z0-9_]+\b`)

// TestEveryMetricsEndpointIsValidAndDocumented starts a devnet whose miner
// serves its metrics endpoint, runs one job to settlement, and scrapes the
// node, the coordinator, the miner, the wallet daemon and the web pages:
// each exposition passes `promtool check metrics`, counts the job, and
// names only metrics docs/METRICS.md lists; every metric the list names
// is exposed (or is a node's, which internal/node checks against what it
// registers, or a GPU's without nvidia-smi); every metric the Grafana
// dashboard queries is listed, and its queries parse.
func TestEveryMetricsEndpointIsValidAndDocumented(t *testing.T) {
	obs := miner.NewObservability(hw.Options{})
	e := start(t, devnet.Config{Miners: 1, WebListen: "127.0.0.1:0",
		WrapRunner: func(_ int, r miner.Runner) miner.Runner { return obs.Metrics.Instrument(r) }})
	obs.Attach(e.d.Miners[0])
	minerSrv := httptest.NewServer(obs.Handler())
	defer minerSrv.Close()

	job := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "It was", "max_tokens": 20, "temperature": 0})
	v := e.waitStatus(e.d.APIKey, job.JobID, time.Minute, "settled")
	// Each service has served a request by now but the wallet daemon and
	// the web pages: ask them once.
	for _, u := range []string{e.d.WalletURL() + "/api/v1/health", e.d.WebURL() + "/explorer"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("X-API-Key", e.d.Wallets.APIKey())
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	// The settlement's block is committed; the node's counter follows it.
	if err := e.d.Node.WaitHeight(context.Background(), e.d.Node.Height()+1); err != nil {
		t.Fatal(err)
	}

	exps := []exposition{
		scrape(t, "node", e.d.RPCURL()+"/metrics"),
		scrape(t, "coordinator", e.d.CoordinatorURL()+"/metrics"),
		scrape(t, "miner", minerSrv.URL+"/metrics"),
		scrape(t, "wallet daemon", e.d.WalletURL()+"/metrics", "X-API-Key", e.d.Wallets.APIKey()), // it guards every route
		scrape(t, "web", e.d.WebURL()+"/metrics"),
	}
	node, coord, mine := exps[0], exps[1], exps[2]

	// What a user checks first: the job is counted everywhere it went.
	if got := node.value("aitbc_chain_txs_total", `type="jobs/settle"`, `result="ok"`); got < 1 {
		t.Errorf("node: settled jobs on chain %v, want at least 1", got)
	}
	if got := node.value("cometbft_consensus_height"); got < 2 {
		t.Errorf("node: cometbft_consensus_height %v", got)
	}
	if g, m, b, c := node.value("aitbc_chain_supply_coins", `kind="genesis"`), node.value("aitbc_chain_supply_coins", `kind="minted"`),
		node.value("aitbc_chain_supply_coins", `kind="burned"`), node.value("aitbc_chain_supply_coins", `kind="circulating"`); g <= 0 || b <= 0 || c != m-b {
		t.Errorf("node: supply genesis %v minted %v burned %v circulating %v", g, m, b, c)
	}
	if got := coord.value("aitbc_coordinator_tokens_total", `model="tolstoy-1m"`, `direction="out"`); got != float64(v.TokensOut) {
		t.Errorf("coordinator: tokens out %v, the job made %d", got, v.TokensOut)
	}
	if got := coord.value("aitbc_coordinator_job_duration_seconds_count", `status="settled"`); got != 1 {
		t.Errorf("coordinator: settled job durations %v, want 1", got)
	}
	if got := coord.value("aitbc_coordinator_queue_wait_seconds_count", `attempt="first"`); got != 1 {
		t.Errorf("coordinator: queue waits %v, want 1", got)
	}
	if got := coord.value("aitbc_coordinator_tenant_requests_total"); got < 2 {
		t.Errorf("coordinator: tenant requests %v (a submission and status polls)", got)
	}
	if got := mine.value("aitbc_miner_tokens_generated_total"); got != float64(v.TokensOut) {
		t.Errorf("miner: tokens generated %v, the job made %d", got, v.TokensOut)
	}
	if got := mine.value("aitbc_miner_backend_duration_seconds_count", `result="ok"`); got != 1 {
		t.Errorf("miner: backend latencies %v, want 1", got)
	}

	doc := documented(t)
	exposed := map[string]bool{}
	for _, ex := range exps {
		var missing []string
		for name := range ex.types {
			exposed[name] = true
			if !runtimeFamily(name) && !doc[name] {
				missing = append(missing, name)
			}
		}
		sort.Strings(missing)
		for _, n := range missing {
			t.Errorf("%s exposes %s, which docs/METRICS.md does not list", ex.service, n)
		}
	}
	_, nvidia := exec.LookPath("nvidia-smi")
	for name := range doc {
		switch {
		case exposed[name], strings.HasSuffix(name, "*"):
		case strings.HasPrefix(name, "cometbft_"), strings.HasPrefix(name, "aitbc_chain_"):
			// A node's metrics; internal/node checks them against what it registers.
		case strings.HasPrefix(name, "aitbc_bridge_"):
			// The bridge daemon's (devnet --btc only); internal/bridge checks them.
		case strings.HasPrefix(name, "aitbc_miner_gpu_") && nvidia != nil:
			// Absent without nvidia-smi, by design.
		default:
			t.Errorf("docs/METRICS.md lists %s, which no endpoint exposes", name)
		}
	}
	queries := dashboardQueries(t)
	for _, q := range queries {
		for _, name := range metricRE.FindAllString(q, -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && doc[b] {
					base = b
				}
			}
			if !doc[base] {
				t.Errorf("the dashboard queries %s, which docs/METRICS.md does not list: %s", name, q)
			}
		}
	}

	t.Run("promtool", func(t *testing.T) {
		promtool, err := exec.LookPath("promtool")
		if err != nil {
			if os.Getenv("AITBC_REQUIRE_PROMTOOL") != "" {
				t.Fatal("promtool not found and AITBC_REQUIRE_PROMTOOL is set: install the prometheus package (.ci/run does)")
			}
			t.Skip("promtool not installed (set AITBC_REQUIRE_PROMTOOL=1 to require it)")
		}
		for _, ex := range exps {
			cmd := exec.Command(promtool, "check", "metrics")
			cmd.Stdin = bytes.NewReader(ex.body)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool check metrics on the %s's /metrics: %v\n%s", ex.service, err, out)
			}
		}
		// The dashboard's queries parse: as recording rules, promtool
		// checks their PromQL.
		var rules strings.Builder
		rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
		for i, q := range queries {
			b, _ := json.Marshal(q) // a JSON string is a YAML string
			rules.WriteString("      - record: aitbc:dashboard:q" + strconv.Itoa(i) + "\n        expr: " + string(b) + "\n")
		}
		path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
		if err := os.WriteFile(path, []byte(rules.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
			t.Errorf("the dashboard's queries do not parse: %v\n%s", err, out)
		}
	})
}

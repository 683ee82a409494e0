package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/testnet"
)

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	p, err := testnet.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

// startDevnet runs a devnet on loopback ports with one built-in miner.
func startDevnet(t *testing.T) *devnet.Devnet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{
		Home: t.TempDir(), BlockTime: 150 * time.Millisecond, Miners: 1,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "127.0.0.1:0", WebListen: "127.0.0.1:0",
		CometRPCListen: "off", P2PListen: "tcp://" + freeAddr(t),
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// startNginx serves deploy/nginx/aitbc.conf with a real nginx, its
// upstreams and paths replaced: the coordinator, node and web pages are the
// devnet's, the exchange port is a free one nothing listens on (that
// service does not exist yet). It returns nginx's base URL.
func startNginx(t *testing.T, nginx string, d *devnet.Devnet) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "nginx", "aitbc.conf"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	listen := freeAddr(t)
	conf := string(b)
	for old, repl := range map[string]string{
		"127.0.0.1:8000":  d.CoordinatorAddr.String(),
		"127.0.0.1:8006":  d.RPCAddr.String(),
		"127.0.0.1:8001":  freeAddr(t),
		"127.0.0.1:8016":  d.WebAddr.String(),
		"listen 80;":      "listen " + listen + ";",
		"listen [::]:80;": "",
		"/var/log/nginx/": dir + "/",
	} {
		if !strings.Contains(conf, old) {
			t.Fatalf("deploy/nginx/aitbc.conf no longer contains %q: update this test", old)
		}
		conf = strings.ReplaceAll(conf, old, repl)
	}
	site := filepath.Join(dir, "aitbc.conf")
	if err := os.WriteFile(site, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers would otherwise run as nobody, shut out of the temp dir
	}
	main := fmt.Sprintf(`%s
daemon off;
master_process on;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[2]s/access.log;
    client_body_temp_path %[2]s/client;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[3]s;
}
`, user, dir, site)
	mainPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(mainPath, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", mainPath}
	if out, err := exec.Command(nginx, append(args, "-t")...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(nginx, args...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt) // SIGINT: fast shutdown of master and workers
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error log:\n%s", log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			c.Close()
			return "http://" + listen
		}
		select {
		case err := <-exited:
			t.Fatalf("nginx exited: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not listening on %s: %v", listen, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fetch(t *testing.T, method, url, key, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// TestNginxInFrontOfDevnet serves the shipped nginx configuration with a
// real nginx in front of a devnet and walks the seeds' public paths
// through it: health twice, the node's head, a job submitted and streamed
// over WebSocket through /api/, the Ollama API, and what is not there yet.
func TestNginxInFrontOfDevnet(t *testing.T) {
	nginx := tool(t, "nginx", "nginx", true)
	if testing.Short() {
		t.Skip("starts a devnet and nginx")
	}
	d := startDevnet(t)
	base := startNginx(t, nginx, d)

	// /health and /api/v1/health: the coordinator's /v1/health.
	var direct map[string]any
	code, _, body := fetch(t, "GET", d.CoordinatorURL()+"/v1/health", "", "")
	if code != 200 || json.Unmarshal(body, &direct) != nil {
		t.Fatalf("coordinator health: %d %s", code, body)
	}
	for _, path := range []string{"/health", "/api/v1/health", "/api/health"} {
		code, h, body := fetch(t, "GET", base+path, "", "")
		var got map[string]any
		if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") || json.Unmarshal(body, &got) != nil {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		if got["status"] != direct["status"] || got["status"] == nil {
			t.Fatalf("GET %s: %s, the coordinator says %v", path, body, direct)
		}
	}

	// /rpc/head: the node's head.
	code, _, body = fetch(t, "GET", base+"/rpc/head", "", "")
	var head struct {
		Height int64 `json:"height"`
	}
	if code != 200 || json.Unmarshal(body, &head) != nil || head.Height < 1 {
		t.Fatalf("GET /rpc/head: %d %s", code, body)
	}

	// A job submitted through /api/ and streamed over WebSocket through
	// /api/jobs/{id}/stream: nginx must pass the Upgrade on.
	c := coordinator.NewClient(base+"/api", d.APIKey) // the client appends /v1/...
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	job, err := c.Submit(ctx, coordinator.JobRequest{Model: "tolstoy-1m", Prompt: "Pierre", MaxTokens: 24})
	if err != nil {
		t.Fatalf("submit through nginx: %v", err)
	}
	var text strings.Builder
	var tokens int
	var done *coordinator.Event
	err = c.Stream(ctx, job.JobID, func(e coordinator.Event) {
		switch e.Type {
		case coordinator.EventToken:
			tokens++
			text.WriteString(e.Text)
		case coordinator.EventStatus:
			if e.Status == coordinator.StatusRequeued {
				text.Reset()
			}
		case coordinator.EventDone:
			done = &e
		}
	})
	if err != nil {
		t.Fatalf("stream through nginx: %v", err)
	}
	if done == nil || done.Error != "" || tokens == 0 {
		t.Fatalf("stream: %d tokens, done %+v", tokens, done)
	}
	// The streamed text is the job's result, read back through nginx.
	code, _, body = fetch(t, "GET", base+"/api/jobs/"+job.JobID+"/results", d.APIKey, "")
	var res struct {
		Result *string `json:"result"`
	}
	if code != 200 || json.Unmarshal(body, &res) != nil || res.Result == nil || *res.Result != text.String() {
		t.Fatalf("results through nginx: %d %s; streamed %q", code, body, text.String())
	}

	// A job's stream without the key is refused by the coordinator, not
	// by nginx: its JSON error comes through.
	code, _, body = fetch(t, "GET", base+"/api/jobs/"+job.JobID, "", "")
	if code != http.StatusUnauthorized || !bytes.Contains(body, []byte(`"code"`)) {
		t.Fatalf("job without key: %d %s", code, body)
	}

	// The Ollama-compatible API under /ollama/.
	code, _, body = fetch(t, "GET", base+"/ollama/api/tags", "", "")
	if code != 200 || !bytes.Contains(body, []byte("tolstoy-1m")) {
		t.Fatalf("GET /ollama/api/tags: %d %s", code, body)
	}

	// /api/explorer/blocks reaches the web pages' JSON: the newest blocks.
	code, h, body := fetch(t, "GET", base+"/api/explorer/blocks", "", "")
	var blocks struct {
		Blocks []struct {
			Height int64 `json:"height"`
		} `json:"blocks"`
	}
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") || json.Unmarshal(body, &blocks) != nil || len(blocks.Blocks) == 0 || blocks.Blocks[0].Height < 1 {
		t.Fatalf("GET /api/explorer/blocks: %d %s %s", code, h.Get("Content-Type"), body)
	}

	// The pages themselves: the explorer, the marketplace, the front page.
	for _, path := range []string{"/explorer/", "/marketplace/", "/"} {
		code, h, body := fetch(t, "GET", base+path, "", "")
		if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte("AITBC")) {
			t.Fatalf("GET %s: %d %s %.200s", path, code, h.Get("Content-Type"), body)
		}
	}

	// /exchange/ is routed to a service this release does not have: 502.
	if code, _, body := fetch(t, "GET", base+"/exchange/", "", ""); code != http.StatusBadGateway {
		t.Fatalf("GET /exchange/: %d %s, want 502 (nothing listens there)", code, body)
	}

	// Metrics stay internal.
	if code, _, _ := fetch(t, "GET", base+"/metrics", "", ""); code != 404 {
		t.Fatalf("GET /metrics: %d, want 404", code)
	}
}

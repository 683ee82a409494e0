package coordfailover

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/blob"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/testutil/pgtest"
)

// twoPorts is a free loopback port p with p+1 free too: `aitbc devnet
// --coordinators 2` listens on the ports after --coordinator-listen.
func twoPorts(t *testing.T) (string, string) {
	for range 20 {
		a := port(t)
		host, ps, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(ps)
		b := net.JoinHostPort(host, strconv.Itoa(p+1))
		if l, err := net.Listen("tcp", b); err == nil {
			l.Close()
			return a, b
		}
	}
	t.Fatal("no two free ports in a row")
	return "", ""
}

// TestJobFileUploadedToOneCoordinatorRunsThroughTheOther: `aitbc devnet
// --coordinators 2 --store postgres://` with no shared directory. A
// tenant's file goes up partly through coordinator 1 and is finished
// through coordinator 2 (the upload resumes where coordinator 1 stopped),
// comes back whole through coordinator 2, and is the --input-data of a
// data-processing job submitted through coordinator 2: the miner reads it
// and the report is right.
func TestJobFileUploadedToOneCoordinatorRunsThroughTheOther(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet with two coordinators and PostgreSQL as processes")
	}
	dsn := pgtest.DSN(t)
	home := t.TempDir()
	w := &world{t: t, home: home, procs: map[string]*exec.Cmd{}}
	rpcAddr, walletAddr := port(t), port(t)
	c1Addr, c2Addr := twoPorts(t)
	c1, c2 := "http://"+c1Addr, "http://"+c2Addr
	w.env = append(os.Environ(), "AITBC_HOME="+home, "AITBC_NODE=http://"+rpcAddr, "AITBC_WALLET_URL=http://"+walletAddr,
		"AITBC_COORDINATOR="+c2, "AITBC_OUTPUT=text")
	node := rpc.NewClient("http://" + rpcAddr)
	w.start("devnet", "devnet", "--block-time", "300ms", "--check-invariants", "--coordinators", "2", "--miners", "2", "--store", dsn, "--web-listen", "off", "--exchange-listen", "off", "--oracle-listen", "off",
		"--coordinator-listen", c1Addr, "--rpc-listen", rpcAddr, "--wallet-listen", walletAddr, "--p2p-listen", "tcp://"+port(t),
		"--comet-rpc-listen", "off", "--log-level", "info")
	waitFor(t, "devnet node", time.Minute, func() bool { _, err := node.Health(context.Background()); return err == nil })
	for _, u := range []string{c1, c2} {
		waitFor(t, "coordinator "+u, time.Minute, func() bool { return miners(u) >= 0 })
	}
	// Miner 2 starts on coordinator 2 (each miner lists both, rotated).
	waitFor(t, "a miner on each coordinator", time.Minute, func() bool { return miners(c1) >= 1 && miners(c2) >= 1 })

	// genesis-ops' API key, saved where ai-submit looks for it.
	genesis := strings.Fields(strings.TrimSpace(grep(w.cli("list"), "genesis-ops:")))[1]
	key := apiKey(t, w, dsn, genesis)
	h, err := coordinator.NewClient(c1, "").Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(home, "tenants", h.Coordinator, "genesis-ops.key")
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}

	// A CSV of more than one 256 KiB database chunk.
	var sb strings.Builder
	sb.WriteString("region,units,note\n")
	note := strings.Repeat("n", 90)
	for i := range 3000 {
		fmt.Fprintf(&sb, "%s,%d,%s\n", []string{"north", "south", "east"}[i%3], i%17, note)
	}
	data := []byte(sb.String())
	path := filepath.Join(t.TempDir(), "processed_data.csv")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	hash := blob.HashBytes(data)

	// The first 100 KB through coordinator 1 ...
	first := 100_000
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPut, c1+"/v1/files/"+hash, bytes.NewReader(data[:first]))
	req.Header.Set("X-API-Key", key)
	req.Header.Set(coordinator.HeaderUploadOffset, "0")
	req.Header.Set(coordinator.HeaderUploadLength, strconv.Itoa(len(data)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get(coordinator.HeaderUploadOffset) != strconv.Itoa(first) {
		t.Fatalf("first piece through coordinator 1: %d, offset %q", resp.StatusCode, resp.Header.Get(coordinator.HeaderUploadOffset))
	}
	// ... the rest through coordinator 2, which knows where it stands.
	cl2 := coordinator.NewClient(c2, key)
	var p blob.Progress
	if err := getJSON(c2+"/v1/files/"+hash+"/status", key, &p); err != nil || p.Received != int64(first) || p.Done {
		t.Fatalf("status through coordinator 2: %+v %v", p, err)
	}
	info, err := cl2.UploadFile(context.Background(), path, 0)
	if err != nil || info.Hash != hash || info.Size != int64(len(data)) {
		t.Fatalf("upload finished through coordinator 2: %+v %v", info, err)
	}
	// Both coordinators give it back whole (DownloadFile checks the hash).
	for _, c := range []string{c1, c2} {
		var got bytes.Buffer
		if n, err := coordinator.NewClient(c, key).DownloadFile(context.Background(), hash, &got); err != nil || n != int64(len(data)) || !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("download through %s: %d bytes, %v", c, n, err)
		}
	}

	// The file is the input of a data-processing job through coordinator 2
	// (ai-submit finds it stored there and sends nothing).
	out := w.cli("ai-submit", "--coordinator", c2, "--wallet", "genesis-ops", "--password", "123", "--type", "data-processing",
		"--input-data", path, "--group-by", "region", "--agg", "sum:units", "--report", "csv", "--payment", "500")
	id := strings.TrimPrefix(grep(out, "AI job submitted. Job ID: "), "AI job submitted. Job ID: ")
	if id == "" {
		t.Fatalf("ai-submit printed %q", out)
	}
	var last coordinator.JobView
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("job %s as coordinator 2 last showed it: %+v", id, last)
		}
	})
	waitFor(t, "the job settled", 2*time.Minute, func() bool {
		v, err := cl2.Status(context.Background(), id)
		last = v
		if err == nil && (v.Status == "failed" || v.Status == "expired") {
			t.Fatalf("job %s: %+v", id, v)
		}
		return err == nil && v.Status == "settled"
	})
	dir := t.TempDir()
	w.cli("ai-results", "--coordinator", c2, "--job-id", id, "--output-dir", dir)
	report, err := os.ReadFile(filepath.Join(dir, id+".report.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// 1000 rows a region; units i%17 summed over the region's rows.
	sums := map[string]int{}
	for i := range 3000 {
		sums[[]string{"north", "south", "east"}[i%3]] += i % 17
	}
	want := fmt.Sprintf("region,count,sum(units)\neast,1000,%d\nnorth,1000,%d\nsouth,1000,%d", sums["east"], sums["north"], sums["south"])
	if !strings.Contains(string(report), want) {
		t.Fatalf("report:\n%s\nwant:\n%s", report, want)
	}
}

// apiKey adds a tenant for address to the shared store and returns its key.
func apiKey(t *testing.T, w *world, dsn, address string) string {
	t.Helper()
	var tenant struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(w.cli("coordinator", "tenant", "add", "--name", "genesis-ops", "--address", address, "--store", dsn, "--output", "json")), &tenant); err != nil || tenant.APIKey == "" {
		t.Fatalf("tenant add: %v", err)
	}
	return tenant.APIKey
}

func getJSON(url, key string, out any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

package cli_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/rpc"
)

// TestWebStartServesPagesOverRemoteServices runs `aitbc web start` against
// a devnet's node, coordinator and wallet daemon over HTTP: the pages show
// the chain, a wallet the daemon holds signs in, and stopping the command
// frees its port.
func TestWebStartServesPagesOverRemoteServices(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	clearEnv(t)
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{
		Home: home, BlockTime: 150 * time.Millisecond, Miners: -1,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "127.0.0.1:0",
		CometRPCListen: "off", P2PListen: "tcp://" + port(t),
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	if d.WebURL() != "" {
		t.Fatalf("a devnet without WebListen serves pages on %s", d.WebURL())
	}

	listen := port(t)
	runCtx, stop := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		root := cli.NewRoot("aitbc", strings.NewReader(""), io.Discard, &stderr)
		root.SetArgs([]string{"--home", home, "--node", d.RPCURL(), "--coordinator", d.CoordinatorURL(), "--wallet-url", d.WalletURL(),
			"web", "start", "--listen", listen, "--log-level", "warn"})
		done <- root.ExecuteContext(runCtx)
	}()
	base := "http://" + listen
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := c.Get(base + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				body = string(b)
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("web start never answered: %v; stderr %s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(body, d.Node.ChainID()) {
		t.Errorf("home page does not name chain %s", d.Node.ChainID())
	}

	// Sign in through the wallet daemon's HTTP API.
	resp, err := c.Get(base + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	token := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(string(b))
	if token == nil {
		t.Fatalf("no sign-in form: %s", b)
	}
	resp, err = c.PostForm(base+"/signin", url.Values{"csrf": {token[1]}, "wallet": {devnet.GenesisWallet}, "password": {"123"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in through the daemon: %d", resp.StatusCode)
	}
	resp, err = c.Get(base + "/marketplace/mine")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), d.Genesis.String()) {
		t.Errorf("signed-in page does not show %s", d.Genesis)
	}

	// Become a Provider over HTTP: signed through the wallet daemon's API,
	// listed by the node's market module.
	resp, err = c.Get(base + "/marketplace/provide")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	token = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(string(b))
	if token == nil {
		t.Fatalf("no Become a Provider form: %s", b)
	}
	resp, err = c.PostForm(base+"/marketplace/provide", url.Values{"csrf": {token[1]}, "name": {"web start GPU"}, "type": {"gpu-rental"},
		"pricing_model": {"per_hour"}, "rate": {"2"}, "password": {"123"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/marketplace/service/") {
		t.Fatalf("Become a Provider: %d %q %s", resp.StatusCode, loc, b)
	}
	sv, err := market.QueryService(context.Background(), rpc.NewClient(d.RPCURL()), strings.TrimPrefix(loc, "/marketplace/service/"))
	if err != nil || sv.Name != "web start GPU" || sv.ListedBy != d.Genesis || sv.Unit != "hour" {
		t.Errorf("the listing on chain: %+v %v", sv, err)
	}
	resp, err = c.Get(base + "/marketplace?type=gpu-rental")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `href="`+loc+`"`) {
		t.Errorf("the marketplace does not list %s", loc)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("web start ended with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("web start did not stop")
	}
	requireFree(t, listen)
}

func TestWebStartOnABusyPortFails(t *testing.T) {
	clearEnv(t)
	busy := busyPort(t)
	code, stderr := runExit(t, "--home", t.TempDir(), "--node", "http://"+port(t), "web", "start", "--listen", busy)
	requireStartupFailure(t, code, stderr, "address already in use")
}

package cli_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/system"
)

// TestNodeStartWithAFaucetKey: `aitbc node start --faucet-key FILE` on a
// plain node home (not a devnet) answers POST /api/v1/faucet by paying on
// chain; on a chain whose genesis disables the faucet the same request is
// refused with faucet_disabled; a missing key file stops the start.
func TestNodeStartWithAFaucetKey(t *testing.T) {
	if testing.Short() {
		t.Skip("starts chains")
	}
	clearEnv(t)
	keyFile := filepath.Join(t.TempDir(), "faucet_key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(bytes.Repeat([]byte{7}, ed25519.SeedSize))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	to := address.Module("a tester") // any address; nobody need hold its key
	run := func(t *testing.T, modules map[string]json.RawMessage) (status int, code string, c *rpc.Client, txHash string) {
		t.Helper()
		home := t.TempDir()
		if _, err := system.InitChain(home, system.ChainSpec{ChainID: "aitbc-fk", Modules: modules}); err != nil {
			t.Fatal(err)
		}
		rest, p2p, comet := port(t), port(t), port(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			done <- cli.Execute(ctx, "aitbc", with(nodeArgs(home, rest, p2p, comet), "--faucet-key", keyFile, "--block-time", "150ms", "--pex=false"))
		}()
		// Stop the node before its home is removed (cleanups run last
		// first); without peer exchange it keeps no address book to save.
		t.Cleanup(func() { cancel(); <-done })
		c = rpc.NewClient("http://" + rest)
		deadline := time.Now().Add(30 * time.Second)
		for {
			if h, err := c.Health(context.Background()); err == nil && h.Height > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the node did not start")
			}
			time.Sleep(100 * time.Millisecond)
		}
		resp, err := http.Post("http://"+rest+"/api/v1/faucet", "application/json", strings.NewReader(`{"address":"`+to.String()+`","amount":"300"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out struct {
			TxHash string `json:"tx_hash"`
			Error  struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out.Error.Code, c, out.TxHash
	}

	t.Run("enabled", func(t *testing.T) {
		st, code, c, h := run(t, nil)
		if st != http.StatusAccepted || h == "" {
			t.Fatalf("POST /api/v1/faucet: %d %s", st, code)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if v, err := c.WaitTx(ctx, h, 50*time.Millisecond); err != nil || v.Status != "committed" {
			t.Fatalf("drip: %+v %v", v, err)
		}
		if a, err := c.Account(ctx, to); err != nil || a.Balance != 300*coin.Unit {
			t.Fatalf("the tester has %+v %v, want 300 AITBC", a, err)
		}
	})
	t.Run("disabled by genesis", func(t *testing.T) {
		st, code, _, _ := run(t, map[string]json.RawMessage{"faucet": json.RawMessage(`{"enabled":false}`)})
		if st != http.StatusBadRequest || code != "faucet_disabled" {
			t.Fatalf("POST /api/v1/faucet on a chain without a faucet: %d %s, want 400 faucet_disabled", st, code)
		}
	})
	t.Run("missing key file", func(t *testing.T) {
		home := t.TempDir()
		if _, err := system.InitChain(home, system.ChainSpec{ChainID: "aitbc-fk"}); err != nil {
			t.Fatal(err)
		}
		code, stderr := runExit(t, with(nodeArgs(home, port(t), port(t), port(t)), "--faucet-key", keyFile+".nope")...)
		requireStartupFailure(t, code, stderr, "openssl rand -hex 32")
	})
}

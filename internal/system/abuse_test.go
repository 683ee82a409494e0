package system_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/walletd"
)

// abuseMemoryBound is what the abuse suite lets the process's heap grow
// by while the services are attacked (docs/SECURITY.md).
const abuseMemoryBound = 256 << 20

// TestAbuseSuite attacks the node's REST API, the wallet daemon and the
// coordinator of one process, as issue 14's attacker did, with bounded
// counts on loopback: slow headers, slow bodies, idle keep-alives and
// more connections than the per-client cap from one address, and 1 MiB
// hellos from unauthenticated miners. Throughout, each service answers
// its health check (from another loopback address) within a second, and
// the heap grows by less than abuseMemoryBound. AITBC_ABUSE=long runs it
// ten times larger and longer.
func TestAbuseSuite(t *testing.T) {
	scale, dur := 1, 7*time.Second
	if os.Getenv("AITBC_ABUSE") == "long" {
		scale, dur = 10, 30*time.Second
	}
	other := net.IPv4(127, 0, 0, 2)
	if c, err := (&net.Dialer{LocalAddr: &net.UDPAddr{IP: other}}).Dial("udp", "127.0.0.1:9"); err != nil {
		t.Skipf("no second loopback address for the health checks: %v", err)
	} else {
		c.Close()
	}

	dir := t.TempDir()
	kdf := keystore.WithKDF(keystore.InsecureTestKDF())
	ks, err := keystore.ForHome(dir, kdf)
	if err != nil {
		t.Fatal(err)
	}
	coord, err := ks.EnsureWallet("coord", "pw")
	if err != nil {
		t.Fatal(err)
	}
	home := chainHome(t, system.GenesisAccount{Name: "coord", Address: coord, Balance: 1000 * coin.Unit})
	ctx := ctxT(t)
	s := system.New(nil)
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.StartNode(ctx, newAddrs(t).config(home)); err != nil {
		t.Fatal(err)
	}
	w, err := s.StartWallet(ctx, system.WalletConfig{Config: walletd.Config{Home: dir, Listen: freeAddr(t), APIKey: "abuse-test-key", Keystore: []keystore.Option{kdf}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Node.WaitHeight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	c, err := s.StartCoordinator(ctx, system.CoordinatorConfig{
		Listen: freeAddr(t), Store: filepath.Join(dir, "coordinator", "coordinator.db"),
		Wallet: walletd.WalletSender{S: w.Service(), Name: "coord", Password: "pw"},
	})
	if err != nil {
		t.Fatal(err)
	}
	targets := []struct{ name, addr, health, write string }{
		{"node REST", s.Node.APIAddr().String(), "/api/v1/health", "/api/v1/transaction/submit"},
		{"wallet daemon", w.Addr().String(), "/api/v1/health", "/api/v1/wallets"},
		{"coordinator", c.Addr().String(), "/v1/health", "/v1/tenants"},
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	attack, stop := context.WithTimeout(ctx, dur)
	defer stop()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	dial := func(addr string) net.Conn {
		cn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil // refused or reset over a cap: what the caps are for
		}
		mu.Lock()
		conns = append(conns, cn)
		mu.Unlock()
		return cn
	}
	for _, tg := range targets {
		// More slow-header connections than one address may hold.
		for i := 0; i < 300*scale; i++ {
			if cn := dial(tg.addr); cn != nil {
				_, _ = io.WriteString(cn, "GET "+tg.health+" HTTP/1.1\r\nHost: x\r\nX-Slow: ")
			}
		}
		// Slow bodies: a 1 MiB body announced, a byte a second sent.
		for i := 0; i < 20*scale; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cn := dial(tg.addr)
				if cn == nil {
					return
				}
				_, _ = io.WriteString(cn, "POST "+tg.write+" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{")
				for attack.Err() == nil {
					if _, err := io.WriteString(cn, " "); err != nil {
						return
					}
					select {
					case <-attack.Done():
					case <-time.After(time.Second):
					}
				}
			}()
		}
		// Oversized bodies, answered 413 without being read.
		for i := 0; i < 5*scale; i++ {
			req, _ := http.NewRequestWithContext(attack, http.MethodPost, "http://"+tg.addr+tg.write, strings.NewReader(strings.Repeat("x", 4<<20)))
			req.ContentLength = 4 << 20
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("%s: 4 MiB body answered %d, want 413 (or 503 over the connection cap)", tg.name, resp.StatusCode)
				}
			}
		}
	}
	// Unauthenticated miners sending 1 MiB hellos.
	ws := "ws://" + c.Addr().String() + "/v1/miners/connect"
	hello := make([]byte, 1<<20)
	for i := 0; i < 40*scale; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wc, _, err := websocket.Dial(attack, ws, nil)
			if err != nil {
				return
			}
			defer wc.CloseNow()
			_, _, _ = wc.Read(attack) // the challenge
			_ = wc.Write(attack, websocket.MessageText, hello)
			_, _, _ = wc.Read(attack)
		}()
	}

	// Health checks from another address, every 200 ms, until the attack ends.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: other}, Timeout: time.Second}
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	checks := 0
	for attack.Err() == nil {
		for _, tg := range targets {
			start := time.Now()
			req, _ := http.NewRequest(http.MethodGet, "http://"+tg.addr+tg.health, nil)
			req.Header.Set("X-API-Key", "abuse-test-key")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("%s: health check under attack: %v", tg.name, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || time.Since(start) > time.Second {
				t.Fatalf("%s: health %d after %v", tg.name, resp.StatusCode, time.Since(start))
			}
			checks++
		}
		time.Sleep(200 * time.Millisecond)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d attacking connections, %d health checks, heap %+d MiB", len(conns), checks, grew>>20)
	if grew > abuseMemoryBound {
		t.Errorf("heap grew by %d MiB under attack, bound %d MiB", grew>>20, abuseMemoryBound>>20)
	}
	// The slow-header connections were cut by the servers (5 s header
	// timeout): a read ends at once instead of waiting.
	cut := 0
	for _, cn := range conns[:min(len(conns), 50)] {
		_ = cn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := io.ReadAll(cn); err == nil || !isTimeout(err) {
			cut++
		}
	}
	if cut < min(len(conns), 50) {
		t.Errorf("%d of %d slow connections still open after %v", min(len(conns), 50)-cut, min(len(conns), 50), dur)
	}
	stop()
	for _, cn := range conns {
		cn.Close()
	}
	wg.Wait()
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

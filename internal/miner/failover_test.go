package miner

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// admittingCoordinator admits a miner (challenge, hello, welcome) and reports
// each admission on admitted; with hold it keeps the session until the
// test ends, else it drops it at once, as a dying coordinator does.
func admittingCoordinator(t *testing.T, hold bool, admitted chan<- string) *httptest.Server {
	t.Helper()
	coordKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	coordAddr := address.FromPubKey(coordKey.Public().(ed25519.PublicKey))
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		nonce := bytes.Repeat([]byte{1}, 32)
		_ = wsjson.Write(ctx, c, minerproto.Envelope{Type: minerproto.TypeChallenge, Nonce: hex.EncodeToString(nonce), Coordinator: coordAddr.String(), ChainID: "c"})
		var hello minerproto.Envelope
		if err := wsjson.Read(ctx, c, &hello); err != nil {
			return
		}
		if _, err := minerproto.VerifyHello(hello.Hello, nonce, coordAddr); err != nil {
			t.Errorf("hello: %v", err)
			return
		}
		_ = wsjson.Write(ctx, c, minerproto.Envelope{Type: minerproto.TypeWelcome})
		admitted <- srv.URL
		if hold {
			<-ctx.Done()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestMinerMovesToTheNextCoordinator: given several coordinators, a miner
// whose coordinator is down, or drops it, serves the next one on its list.
func TestMinerMovesToTheNextCoordinator(t *testing.T) {
	admitted := make(chan string, 64)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // nothing listens there now
	dropping := admittingCoordinator(t, false, admitted)
	live := admittingCoordinator(t, true, admitted)

	minerKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))
	m, err := New(Config{Coordinator: deadURL + ", " + dropping.URL + "," + live.URL, Key: minerproto.KeySigner(minerKey),
		Chain: noChain{}, Sender: noSender{}, Runner: endlessRunner{stopped: make(chan error, 1)}, PricePer1k: coin.Unit})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.serve(ctx, []string{"m"}); close(done) }()
	defer func() { cancel(); <-done }()

	want := []string{dropping.URL, live.URL}
	for _, w := range want {
		select {
		case got := <-admitted:
			if got != w {
				t.Fatalf("admitted by %s, want %s", got, w)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("the miner never reached %s", w)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for st := m.Status(); !st.Connected || st.Coordinator != live.URL; st = m.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v, want connected to %s", st, live.URL)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// It stays with the coordinator that keeps it.
	select {
	case got := <-admitted:
		t.Fatalf("the miner left a live coordinator for %s", got)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestCoordinatorsListIsSplit(t *testing.T) {
	got := Coordinators(" http://a:8000, ,http://b:8000 ")
	if len(got) != 2 || got[0] != "http://a:8000" || got[1] != "http://b:8000" {
		t.Fatalf("%q", got)
	}
	if _, err := New(Config{Coordinator: " , ", Key: minerproto.KeySigner(ed25519.NewKeyFromSeed(make([]byte, 32))), Chain: noChain{}, Sender: noSender{}, Runner: endlessRunner{}}); err == nil {
		t.Fatal("a miner without a coordinator URL was accepted")
	}
}

package miner

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/minerproto"
)

type visionList []string

func (v visionList) VisionModels(context.Context) ([]string, error) { return v, nil }

// TestHelloDeclaresVisionModels: the miner's hello carries the models its
// backend says read images, so that the coordinator can route chats with
// images to it.
func TestHelloDeclaresVisionModels(t *testing.T) {
	coordKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	coordAddr := address.FromPubKey(coordKey.Public().(ed25519.PublicKey))
	minerKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	hellos := make(chan *minerproto.Hello, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		nonce := bytes.Repeat([]byte{1}, 32)
		_ = wsjson.Write(r.Context(), c, minerproto.Envelope{Type: minerproto.TypeChallenge, Nonce: hex.EncodeToString(nonce), Coordinator: coordAddr.String(), ChainID: "c"})
		var hello minerproto.Envelope
		if err := wsjson.Read(r.Context(), c, &hello); err == nil {
			hellos <- hello.Hello
		}
	}))
	defer srv.Close()
	m, err := New(Config{Coordinator: srv.URL, Key: minerproto.KeySigner(minerKey), Chain: noChain{}, Sender: noSender{},
		Runner: endlessRunner{stopped: make(chan error, 1)}, PricePer1k: coin.Unit, Slots: 1, Vision: visionList{"llava"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = m.session(ctx, []string{"m", "llava"}, srv.URL) }()
	select {
	case h := <-hellos:
		if !reflect.DeepEqual(h.Vision, []string{"llava"}) {
			t.Fatalf("hello declares vision for %v", h.Vision)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no hello")
	}
}

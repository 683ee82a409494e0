package miner

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// endlessRunner emits tokens until its context ends, and reports that end.
type endlessRunner struct{ stopped chan error }

func (endlessRunner) Name() string                             { return "endless" }
func (endlessRunner) Models(context.Context) ([]string, error) { return []string{"m"}, nil }
func (r endlessRunner) Run(ctx context.Context, _ *minerproto.Job, onToken func(string) error) (Output, error) {
	for {
		if err := onToken("tok "); err != nil {
			r.stopped <- err
			return Output{}, err
		}
		select {
		case <-ctx.Done():
			r.stopped <- ctx.Err()
			return Output{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

type noChain struct{}

func (noChain) GetJSON(context.Context, string, any) error {
	return errors.New("no chain in this test")
}

type noSender struct{}

func (noSender) Send(context.Context, tx.Msg) (string, error) {
	return "", errors.New("no chain in this test")
}

// TestCoordinatorCancelStopsTheJob: a cancel from the coordinator (the
// chain canceled or expired the job) stops the backend's work at once,
// frees the slot, and sends neither a result nor a failure for it.
func TestCoordinatorCancelStopsTheJob(t *testing.T) {
	coordKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	coordAddr := address.FromPubKey(coordKey.Public().(ed25519.PublicKey))
	minerKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))
	runner := endlessRunner{stopped: make(chan error, 1)}
	after := make(chan minerproto.Envelope, 1024) // what the miner sent after the cancel
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		ph := minerproto.PromptHash("hi", nil)
		job := &minerproto.Job{ID: hex.EncodeToString(make([]byte, 16)), Attempt: 1, Model: "m", Prompt: "hi", PromptHash: hex.EncodeToString(ph[:]),
			MaxTokens: 1000, Customer: coordAddr.String(), PricePer1k: "1", ChainID: "c"}
		_ = wsjson.Write(ctx, c, minerproto.Envelope{Type: minerproto.TypeJob, Job: job})
		canceled := false
		for {
			var e minerproto.Envelope
			if err := wsjson.Read(ctx, c, &e); err != nil {
				return
			}
			if canceled {
				after <- e
				continue
			}
			if e.Type == minerproto.TypeToken && e.Seq == 3 {
				canceled = true
				_ = wsjson.Write(ctx, c, minerproto.Envelope{Type: minerproto.TypeCancel, JobID: job.ID, Attempt: 1, Reason: "canceled on chain"})
			}
		}
	}))
	defer srv.Close()

	m, err := New(Config{Coordinator: srv.URL, Key: minerproto.KeySigner(minerKey), Chain: noChain{}, Sender: noSender{},
		Runner: runner, PricePer1k: coin.Unit, Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.session(ctx, []string{"m"}, srv.URL) }()
	select {
	case err := <-runner.stopped:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the job stopped with %v, want its context canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the job kept running after the coordinator canceled it")
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.Status().Running != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the canceled job still holds its slot")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Anything the miner sends now for that job must not be a result or
	// a failure (tokens in flight before the cancel may still arrive).
	time.Sleep(100 * time.Millisecond)
	for drained := false; !drained; {
		select {
		case e := <-after:
			if e.Type == minerproto.TypeResult || e.Type == minerproto.TypeFailed {
				t.Fatalf("miner sent %s for a canceled job", e.Type)
			}
		default:
			drained = true
		}
	}
	cancel()
	<-done
}

package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/aitbc/aitbc/internal/coordinator"
)

// streamServer speaks the coordinator's job stream: the text so far as a
// first token event, then nothing until the client leaves (a running job
// between epochs).
func streamServer(t *testing.T, events ...coordinator.Event) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/jobs/j1/stream" || r.Header.Get("X-API-Key") != "k" {
			http.NotFound(w, r)
			return
		}
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		for _, e := range events {
			if err := wsjson.Write(r.Context(), conn, e); err != nil {
				return
			}
		}
		_, _, _ = conn.Read(r.Context()) // until the client goes
	}))
}

// TestAIStatusShowsARunningTrainingJobsEpoch: ai-status reads the job's
// text so far from its stream and shows the last whole progress line,
// without waiting for the job to end.
func TestAIStatusShowsARunningTrainingJobsEpoch(t *testing.T) {
	srv := streamServer(t,
		coordinator.Event{Type: coordinator.EventStatus, Status: "running", Miner: "aitbc1x"},
		coordinator.Event{Type: coordinator.EventToken, Seq: 2, Text: "epoch 1/20 train_loss=0.6931 holdout_loss=0.6900 accuracy=0.5500\nepoch 2/20 train_loss=0.5100 holdout_loss=0.5300 accuracy=0.8000\nepoch 3/2"})
	defer srv.Close()
	got, err := jobProgress(context.Background(), coordinator.NewClient(srv.URL, "k"), "j1")
	if err != nil || got != "epoch 2/20 train_loss=0.5100 holdout_loss=0.5300 accuracy=0.8000" {
		t.Fatalf("progress %q: %v", got, err)
	}
	// No epoch finished yet: no progress, and no error.
	quiet := streamServer(t, coordinator.Event{Type: coordinator.EventStatus, Status: "running"})
	defer quiet.Close()
	if got, err := jobProgress(context.Background(), coordinator.NewClient(quiet.URL, "k"), "j1"); err != nil || got != "" {
		t.Fatalf("before the first epoch: %q %v", got, err)
	}
	// A job the key cannot see.
	if _, err := jobProgress(context.Background(), coordinator.NewClient(srv.URL, "other"), "j1"); err == nil {
		t.Fatal("no error for a stream the coordinator refused")
	}
}

package report

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/httpx"
)

type key struct{ ed25519.PrivateKey }

func (k key) PublicKey() ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }
func (k key) Sign(m []byte) []byte         { return ed25519.Sign(k.PrivateKey, m) }

// TestRefusedReportKeepsItsCounts: a report the oracle refuses puts its
// counts back, and the next accepted report carries them; the payload the
// oracle receives verifies.
func TestRefusedReportKeepsItsCounts(t *testing.T) {
	k := key{ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))}
	var got []Payload
	refuse := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req Request
		if err := httpx.DecodeJSON(r, &req); err != nil {
			t.Error(err)
		}
		p, pub, err := Verify("c", req)
		if err != nil || address.FromPubKey(pub).String() != p.Agent {
			t.Errorf("verify: %v", err)
		}
		if refuse {
			httpx.WriteError(w, 429, "rate_limited", "too many reports")
			return
		}
		got = append(got, p)
		httpx.WriteJSON(w, 200, Ack{Status: "success", ID: 1})
	}))
	defer srv.Close()
	now := time.Unix(1_800_000_000, 0)
	col := NewMetricsCollector(func() time.Time { return now })
	rep := &OracleReporter{URL: srv.URL, ChainID: "c", Key: k, Collector: col}
	col.Task(100, 10*time.Millisecond)
	if _, err := rep.Send(context.Background()); !httpx.IsCode(err, "rate_limited") {
		t.Fatalf("first report: %v", err)
	}
	refuse = false
	col.Task(50, 40*time.Millisecond)
	now = now.Add(30 * time.Second)
	if _, err := rep.Send(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ProcessedTokens != 150 || got[0].TasksCompleted != 2 || got[0].AvgLatencyMs != 25 || got[0].UptimeSeconds != 30 {
		t.Fatalf("accepted: %+v", got)
	}
}

// TestVerifyStructure: the six fields exactly, and the signature over the
// domain, the chain and the payload's bytes.
func TestVerifyStructure(t *testing.T) {
	k := key{ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))}
	r, err := Sign(k, "c", Payload{Agent: "a", Timestamp: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Verify("c", r); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Verify("d", r); !errors.Is(err, ErrSignature) {
		t.Fatalf("another chain: %v", err)
	}
	var m map[string]any
	_ = json.Unmarshal(r.Payload, &m)
	delete(m, "uptime_seconds")
	r.Payload, _ = json.Marshal(m)
	if _, _, err := Verify("c", r); !errors.Is(err, ErrMalformed) {
		t.Fatalf("missing field: %v", err)
	}
}

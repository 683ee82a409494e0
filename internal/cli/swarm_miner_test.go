package cli

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/swarm"
)

type msgLog struct {
	mu   sync.Mutex
	msgs []tx.Msg
}

func (l *msgLog) Send(_ context.Context, m tx.Msg) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, m)
	return "h", nil
}

func (l *msgLog) types() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t []string
	for _, m := range l.msgs {
		t = append(t, m.Type)
	}
	return t
}

// TestMinerLayersServeAndAnnounce checks the miner's --layers wiring: the
// span API answers on --span-listen and the span is registered on chain.
func TestMinerLayersServeAndAnnounce(t *testing.T) {
	g := &Globals{Home: t.TempDir()}
	if _, err := startSpans(g, "", "9-9", "127.0.0.1:0", "", nil); err == nil {
		t.Fatal("layers past the model must be refused")
	}
	ms, err := startSpans(g, "", "2-3", "127.0.0.1:0", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	log := &msgLog{}
	ms.run(context.Background(), log, time.Hour, nil)
	var info swarm.Info
	if err := httpx.Do(context.Background(), nil, http.MethodGet, "http://"+ms.ln.Addr().String()+swarm.PathInfo, nil, nil, &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Spans) != 1 || info.Spans[0].First != 2 || info.Spans[0].Last != 4 || info.Spans[0].Model != "tolstoy-1m" {
		t.Fatalf("served %+v", info.Spans)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(log.types()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := ms.close(); err != nil {
		t.Fatal(err)
	}
	if got := log.types(); len(got) != 1 || got[0] != agents.TypeRegister {
		t.Fatalf("sent %v, want one agents/register", got)
	}
}

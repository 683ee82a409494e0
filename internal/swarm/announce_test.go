package swarm

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

type recordingSender struct {
	mu   sync.Mutex
	msgs []tx.Msg
	fail error
}

func (r *recordingSender) Send(_ context.Context, m tx.Msg) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return "", r.fail
	}
	r.msgs = append(r.msgs, m)
	return "hash", nil
}

func TestAnnounceRegistersTheSpan(t *testing.T) {
	m := tolstoy(t)
	hash, err := ModelHash(m)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := ModelHash(m); again != hash || agents.CheckModelHash(hash) != nil {
		t.Fatalf("model hash %q (again %q) is not a stable SHA-256 hex", hash, again)
	}
	s := &recordingSender{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // register, then stop before the first heartbeat
	if err := Announce(ctx, s, []ServedSpan{{Name: model, Model: m, First: 2, Last: 4}, {Name: model, Model: m, First: 0, Last: 1}}, "http://127.0.0.1:8031", hash, time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	if len(s.msgs) != 1 || s.msgs[0].Type != agents.TypeRegister {
		t.Fatalf("sent %+v, want one agents/register", s.msgs)
	}
	var reg agents.MsgRegister
	if err := tx.Unmarshal(s.msgs[0].Body, &reg); err != nil {
		t.Fatal(err)
	}
	if err := reg.Check(); err != nil {
		t.Fatalf("the registration would be refused: %v", err)
	}
	if reg.Span == nil || reg.Span.Model != model || reg.Span.First != 2 || reg.Span.Last != 3 || reg.Name != "tolstoy-1m-2-3" {
		t.Fatalf("registered %+v span %+v, want tolstoy-1m layers 2-3", reg, reg.Span)
	}
	if reg.Endpoint != "http://127.0.0.1:8031" || len(reg.More) != 1 || reg.More[0].First != 0 || reg.More[0].Last != 0 {
		t.Fatalf("registered endpoint %q and more spans %+v, want the URL and layer 0", reg.Endpoint, reg.More)
	}

	s.fail = errors.New("node down")
	if err := Announce(context.Background(), s, []ServedSpan{{Name: model, Model: m, First: 0, Last: 2}}, "http://127.0.0.1:8031", hash, time.Hour, nil); err == nil {
		t.Fatal("a failed registration must be an error")
	}
}

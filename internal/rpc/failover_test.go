package rpc_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/rpc"
)

type namedBackend struct {
	fakeBackend
	id string
}

func (b namedBackend) Health() rpc.Health { return rpc.Health{Status: "ok", NodeID: b.id} }

func serve(t *testing.T, id string) *httptest.Server {
	srv := httptest.NewServer(rpc.NewServer(namedBackend{id: id}, mapMissing, prometheus.NewRegistry(), nil))
	t.Cleanup(srv.Close)
	return srv
}

// TestClientFailsOverToTheNextNode: a client given several nodes uses the
// first, moves to the next when it goes away and stays there; a node that
// answers with an error is not skipped.
func TestClientFailsOverToTheNextNode(t *testing.T) {
	ctx := context.Background()
	a, b := serve(t, "a"), serve(t, "b")
	c := rpc.NewClient(a.URL + ", " + b.URL + "/")
	var switched []string
	c.OnFailover(func(from, to string, err error) { switched = append(switched, from+"->"+to) })
	if h, err := c.Health(ctx); err != nil || h.NodeID != "a" {
		t.Fatalf("first node: %+v %v", h, err)
	}
	// An answer with an error code comes from the node in use.
	if _, err := c.Submit(ctx, []byte{1}); !httpx.IsCode(err, "insufficient_funds") {
		t.Fatalf("error answer: %v", err)
	}
	if c.Endpoint() != a.URL {
		t.Fatalf("moved to %s on an error answer", c.Endpoint())
	}

	a.Close()
	if h, err := c.Health(ctx); err != nil || h.NodeID != "b" {
		t.Fatalf("after the first node went away: %+v %v", h, err)
	}
	if c.Endpoint() != b.URL || len(switched) != 1 || switched[0] != a.URL+"->"+b.URL {
		t.Fatalf("endpoint %s, switches %v", c.Endpoint(), switched)
	}
	// It stays on b: no second switch.
	if _, err := c.Health(ctx); err != nil || len(switched) != 1 {
		t.Fatalf("second request: %v, switches %v", err, switched)
	}

	b.Close()
	_, err := c.Health(ctx)
	if !errors.Is(err, rpc.ErrNoNode) {
		t.Fatalf("with every node gone: %v, want ErrNoNode", err)
	}
}

func TestClientWithOneNodeSaysHowToReachIt(t *testing.T) {
	a := serve(t, "a")
	a.Close()
	_, err := rpc.NewClient(a.URL).Health(context.Background())
	if err == nil || errors.Is(err, rpc.ErrNoNode) {
		t.Fatalf("got %v", err)
	}
}

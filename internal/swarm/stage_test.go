package swarm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/httpx"
)

type testKey ed25519.PrivateKey

func (k testKey) PublicKey() ed25519.PublicKey {
	return ed25519.PrivateKey(k).Public().(ed25519.PublicKey)
}
func (k testKey) Sign(m []byte) []byte { return ed25519.Sign(ed25519.PrivateKey(k), m) }

func signer(seed byte) testKey {
	return testKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)))
}

func addrOf(k testKey) string { return address.FromPubKey(k.PublicKey()).String() }

// A job's generation through signing span servers, with the 2-3 server
// killed after the 7th token: the output equals the whole model's, the
// final route's stage receipts chain (the settlement's offline check
// passes), the dropped server's receipt counts what it did, and the
// payments by layers × tokens sum to the price.
func TestStageReceiptsChainThroughFailover(t *testing.T) {
	const n = 30
	ref := reference(t, "The old man", n)
	keys := []testKey{signer(1), signer(2), signer(3)}
	spans := [][2]int{{0, 2}, {2, 4}, {2, 4}}
	var peers StaticPeers
	var servers []*httptest.Server
	for i, sp := range spans {
		_, hs := spanServer(t, sp[0], sp[1], ServerConfig{Threads: 1, Signer: keys[i]})
		servers = append(servers, hs)
		peers = append(peers, Peer{ID: addrOf(keys[i]), URL: hs.URL, Model: model, First: sp[0], Last: sp[1], RTT: []time.Duration{ms(1), ms(1), ms(900)}[i], LayerRPS: 1000})
	}
	job := bytes.Repeat([]byte{7}, jobs.IDLen)
	req := request(ref, n)
	req.Job, req.ChainID = job, "aitbc-test"
	p := &Pipeline{Dir: peers, Bans: NewBans(0, 0)}
	var streamed []int
	res, err := p.Generate(context.Background(), req, func(id, _ int) error {
		if streamed = append(streamed, id); len(streamed) == 7 {
			servers[1].CloseClientConnections()
			servers[1].Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Tokens, ref.Tokens) {
		t.Fatalf("output %v, want %v", res.Tokens, ref.Tokens)
	}
	if res.RouteStages != 2 || len(res.Stages) != 3 {
		t.Fatalf("%d stages, %d in the route; want 3 and 2", len(res.Stages), res.RouteStages)
	}
	route, dropped := res.Stages[:2], res.Stages[2]
	positions := uint64(len(ref.PromptTokens) + len(ref.Tokens) - 1) // the last token is never fed back
	if route[0].ServerAddr().String() != addrOf(keys[0]) || route[1].ServerAddr().String() != addrOf(keys[2]) || dropped.ServerAddr().String() != addrOf(keys[1]) {
		t.Fatalf("stage servers %s %s %s", route[0].ServerAddr(), route[1].ServerAddr(), dropped.ServerAddr())
	}
	if route[0].Tokens != positions || route[1].Tokens != positions {
		t.Fatalf("route stages processed %d and %d positions, want %d", route[0].Tokens, route[1].Tokens, positions)
	}
	// The dropped server ran the prompt and the positions of tokens 1-6
	// (token 7's position hit it dead).
	if want := uint64(len(ref.PromptTokens) + 6); dropped.Tokens != want {
		t.Fatalf("the dropped server's receipt counts %d positions, want %d", dropped.Tokens, want)
	}
	if !bytes.Equal(route[1].InHash, route[0].OutHash) {
		t.Fatal("the replacement's input chain is not the first stage's output chain")
	}
	set := jobs.MsgSettleStages{JobID: job, ResultHash: make([]byte, 32), TokensIn: uint64(len(ref.PromptTokens)), TokensOut: uint64(len(res.Tokens)),
		Layers: 4, PricePer1k: coin.Unit, Route: uint32(res.RouteStages), Stages: res.Stages}
	if err := set.Check(jobs.StageJob{ID: job, ChainID: "aitbc-test", Model: model, MaxTokens: n}); err != nil {
		t.Fatalf("offline check of the stage chain: %v", err)
	}
	price := coin.Amount(1_000_003)
	var sum coin.Amount
	for _, pay := range set.StagePayments(price) {
		sum += pay.Amount
	}
	if sum != price {
		t.Fatalf("payments sum to %s, price %s", sum, price)
	}
	// Tampering with any stage breaks the check.
	set.Stages[0].Tokens++
	if err := set.Check(jobs.StageJob{ID: job, ChainID: "aitbc-test", Model: model, MaxTokens: n}); !errors.Is(err, jobs.ErrStageSignature) {
		t.Fatalf("tampered stage: %v", err)
	}
}

// A server whose receipt is signed by another key than its agent address
// is routed around like a failed one.
func TestForgedStageReceiptIsAFailure(t *testing.T) {
	const n = 12
	ref := reference(t, "The old man", n)
	a, b, c := signer(1), signer(2), signer(3)
	_, h0 := spanServer(t, 0, 2, ServerConfig{Threads: 1, Signer: a})
	_, h1 := spanServer(t, 2, 4, ServerConfig{Threads: 1, Signer: c}) // claims b's address
	_, h2 := spanServer(t, 2, 4, ServerConfig{Threads: 1, Signer: c})
	peers := StaticPeers{
		{ID: addrOf(a), URL: h0.URL, Model: model, First: 0, Last: 2, RTT: ms(1), LayerRPS: 1000},
		{ID: addrOf(b), URL: h1.URL, Model: model, First: 2, Last: 4, RTT: ms(1), LayerRPS: 1000},
		{ID: addrOf(c), URL: h2.URL, Model: model, First: 2, Last: 4, RTT: ms(900), LayerRPS: 1000},
	}
	req := request(ref, n)
	req.Job, req.ChainID = bytes.Repeat([]byte{8}, jobs.IDLen), "aitbc-test"
	p := &Pipeline{Dir: peers, Bans: NewBans(0, 0)}
	res, err := p.Generate(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Tokens, ref.Tokens) || !p.Bans.Banned(addrOf(b)) || res.Route[1].Peer.ID != addrOf(c) {
		t.Fatalf("tokens equal %v, impostor banned %v, last hop %s", slices.Equal(res.Tokens, ref.Tokens), p.Bans.Banned(addrOf(b)), res.Route[1].Peer.ID)
	}
	for _, st := range res.Stages {
		if st.ServerAddr().String() == addrOf(b) {
			t.Fatal("a stage of the impostor was kept")
		}
	}
}

// A session serves one job: a bad job field is refused before any session
// exists, another job on a bound session is a conflict, and a server
// without a key answers without a receipt.
func TestStageJobFieldsRefused(t *testing.T) {
	m := tolstoy(t)
	_, hs := spanServer(t, 0, 2, ServerConfig{Threads: 1, Signer: signer(1)})
	job := strings.Repeat("ab", jobs.IDLen)
	req := ForwardRequest{Session: "s1", Model: model, First: 0, Last: 2, Pos: 0, Rows: 1, Tokens: []int{m.Tokenizer().BOS()}}
	for _, bad := range []ForwardRequest{
		func() ForwardRequest { r := req; r.Job, r.ChainID = "xyz", "c"; return r }(),
		func() ForwardRequest { r := req; r.Job = job; return r }(),
		func() ForwardRequest { r := req; r.ChainID = "c"; return r }(),
	} {
		var ae *httpx.APIError
		if _, err := post(t, hs.URL, bad); !errors.As(err, &ae) || ae.Status != 400 || ae.Code != CodeInvalid {
			t.Errorf("job %q chain %q: %v", bad.Job, bad.ChainID, err)
		}
	}
	var info Info
	if err := httpx.Do(context.Background(), nil, http.MethodGet, hs.URL+PathInfo, nil, nil, &info); err != nil || info.Sessions != 0 {
		t.Fatalf("refused requests left %d sessions (%v)", info.Sessions, err)
	}
	req.Job, req.ChainID = job, "c"
	resp, err := post(t, hs.URL, req)
	if err != nil {
		t.Fatal(err)
	}
	st, err := DecodeStageReceipt(resp.Receipt)
	if err != nil || st.Tokens != 1 || st.First != 0 || st.Last != 1 || st.ServerAddr().String() != addrOf(signer(1)) {
		t.Fatalf("receipt %+v, %v", st, err)
	}
	next := req
	next.Pos, next.Job = 1, strings.Repeat("cd", jobs.IDLen)
	var ae *httpx.APIError
	if _, err := post(t, hs.URL, next); !errors.As(err, &ae) || ae.Status != 409 || ae.Code != CodeSpanMismatch {
		t.Fatalf("another job on a bound session: %v", err)
	}
	_, plain := spanServer(t, 0, 2, ServerConfig{Threads: 1})
	if resp, err := post(t, plain.URL, req); err != nil || resp.Receipt != "" {
		t.Fatalf("a server without a key: receipt %q, %v", resp.Receipt, err)
	}
}

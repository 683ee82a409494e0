package walletd_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/walletd"
	"github.com/aitbc/aitbc/internal/walletd/fakenode"
)

const (
	testChain = "aitbc-test"
	testKey   = "test-api-key"
)

var testMinFee = coin.Unit / 1000

// clock is a settable clock for unlock expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// env is a wallet daemon over a fake node, served by httptest.
type env struct {
	t       testing.TB
	home    string
	node    *fakenode.Node
	nodeURL string
	srv     *walletd.Server
	svc     *walletd.Service
	url     string
	client  *walletd.Client
	clock   *clock
	logs    *syncBuffer
}

type envOpt func(*walletd.Config)

func withDefault(name string) envOpt { return func(c *walletd.Config) { c.DefaultWallet = name } }
func withoutNode() envOpt            { return func(c *walletd.Config) { c.Node = nil } }

func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	e := &env{t: t, home: t.TempDir(), node: fakenode.New(testChain, testMinFee), clock: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, logs: &syncBuffer{}}
	ns := e.node.Start()
	t.Cleanup(ns.Close)
	e.nodeURL = ns.URL
	cfg := walletd.Config{
		Home: e.home, APIKey: testKey, Node: rpc.NewClient(ns.URL),
		Logger:   slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
		Clock:    e.clock.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := walletd.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.svc = srv, srv.Service()
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(e.svc.LockAll)
	e.url = hs.URL
	e.client = walletd.NewClient(hs.URL, testKey)
	return e
}

// reply is a decoded HTTP answer.
type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r reply) code() string {
	if e, ok := r.body["error"].(map[string]any); ok {
		s, _ := e["code"].(string)
		return s
	}
	return ""
}

func (r reply) str(k string) string { s, _ := r.body[k].(string); return s }

// call sends a request with the test API key (key "" sends none).
func (e *env) call(method, path, body string) reply { return e.callKey(testKey, method, path, body) }

func (e *env) callKey(key, method, path, body string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(data)}
	_ = json.Unmarshal(data, &r.body)
	return r
}

// want checks status and error code ("" for success).
func (e *env) want(r reply, status int, code string) {
	e.t.Helper()
	if r.status != status || r.code() != code {
		e.t.Fatalf("got %d %q (%s), want %d %q", r.status, r.code(), strings.TrimSpace(r.raw), status, code)
	}
}

// mustCreate makes a wallet through the API and returns its address.
func (e *env) mustCreate(name, password string) string {
	e.t.Helper()
	r := e.call("POST", "/api/v1/wallets", `{"name":"`+name+`","password":"`+password+`"}`)
	e.want(r, http.StatusCreated, "")
	return r.str("address")
}

// deadNode is a node client for a port nobody listens on.
func deadNode(t *testing.T) walletd.Node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := rpc.NewClient("http://" + addr)
	c.HTTP.Timeout = 2 * time.Second
	return c
}

func itoa(n int) string { return strconv.Itoa(n) }

func containsLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

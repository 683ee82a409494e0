package coordinator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// signedRegistration is a registration for a new key, signed now.
func signedRegistration(t *testing.T, h *harness) RegisterRequest {
	t.Helper()
	key, addr := newKey(t)
	ts := h.clock.Now().Unix()
	sig := ed25519.Sign(key, TenantDigest(h.chain.coord, addr, ts, "agent"))
	return RegisterRequest{Name: "agent", Address: addr, PubKey: hex.EncodeToString(key.Public().(ed25519.PublicKey)), Timestamp: ts, Signature: hex.EncodeToString(sig)}
}

func post(t *testing.T, url, key string, body any) (*http.Response, httpx.ErrorBody) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		b, _ = json.Marshal(v)
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb httpx.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	return resp, eb
}

// Finding 4: one captured signed registration buys one API key; replaying
// it within its ±5 minute window is refused (409 replayed_registration).
func TestReplayedRegistrationIsRefused(t *testing.T) {
	h := newHarness(t, releaseDelay)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	reg := signedRegistration(t, h)
	if resp, eb := post(t, srv.URL+"/v1/tenants", "", reg); resp.StatusCode != http.StatusCreated {
		t.Fatalf("first registration: %d %+v", resp.StatusCode, eb)
	}
	for i := 0; i < 3; i++ {
		resp, eb := post(t, srv.URL+"/v1/tenants", "", reg)
		if resp.StatusCode != http.StatusConflict || eb.Error.Code != "replayed_registration" {
			t.Fatalf("replay %d: %d %+v, want 409 replayed_registration", i, resp.StatusCode, eb)
		}
	}
	// Still refused later in the window; the key can sign a new one.
	h.clock.Advance(4 * time.Minute)
	if _, _, err := h.s.Register(context.Background(), reg); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay 4 minutes later: %v", err)
	}
}

// Finding 4: the used signatures are kept in the coordinator's store, so a
// captured registration cannot be replayed after the coordinator restarts
// within its window.
func TestReplayedRegistrationIsRefusedAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coordinator.db")
	st, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	h := startHarness(t, newFakeChain(&fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, newAddr(t), releaseDelay), st)
	reg := signedRegistration(t, h)
	if _, _, err := h.s.Register(context.Background(), reg); err != nil {
		t.Fatalf("first registration: %v", err)
	}
	st.Close()

	// A new coordinator process: nothing in memory, the same database.
	st2, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	h.clock.Advance(2 * time.Minute)
	h2 := startHarness(t, h.chain, st2)
	srv := httptest.NewServer(h2.s.Handler())
	defer srv.Close()
	resp, eb := post(t, srv.URL+"/v1/tenants", "", reg)
	if resp.StatusCode != http.StatusConflict || eb.Error.Code != "replayed_registration" {
		t.Fatalf("replay after restart: %d %+v, want 409 replayed_registration", resp.StatusCode, eb)
	}
	keys, err := st2.TenantKeys(context.Background(), mustTenant(t, st2, reg.Address).ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("the replay added a key: %d keys, %v", len(keys), err)
	}
}

func newAddr(t *testing.T) address.Address {
	_, a := newKey(t)
	return a
}

func mustTenant(t *testing.T, st store.Store, a address.Address) *store.Tenant {
	t.Helper()
	tn, err := st.TenantByAddress(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// Finding 4: the tenant's name is part of the signed message: a captured
// registration sent under another name is refused (401 invalid_signature)
// and creates nothing; one signed in the old format that did not cover
// the name is refused with a message that says so.
func TestRegistrationWithAlteredNameIsRefused(t *testing.T) {
	h := newHarness(t, releaseDelay)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	reg := signedRegistration(t, h)
	for _, name := range []string{"mallory", "", "agent ", "Agent"} {
		bad := reg
		bad.Name = name
		resp, eb := post(t, srv.URL+"/v1/tenants", "", bad)
		if resp.StatusCode != http.StatusUnauthorized || eb.Error.Code != "invalid_signature" {
			t.Fatalf("name %q: %d %+v, want 401 invalid_signature", name, resp.StatusCode, eb)
		}
	}
	if _, err := h.st.TenantByAddress(context.Background(), reg.Address); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused registration created a tenant: %v", err)
	}
	// The altered attempts did not use up the genuine one.
	if resp, eb := post(t, srv.URL+"/v1/tenants", "", reg); resp.StatusCode != http.StatusCreated {
		t.Fatalf("genuine registration: %d %+v", resp.StatusCode, eb)
	}
	if tn := mustTenant(t, h.st, reg.Address); tn.Name != "agent" {
		t.Fatalf("tenant name %q, want the signed agent", tn.Name)
	}

	key, addr := newKey(t)
	ts := h.clock.Now().Unix()
	v1 := sha256.New()
	v1.Write([]byte("AITBC/tenant/v1\x00"))
	v1.Write(TenantPayload(h.chain.coord, addr, ts, ""))
	old := RegisterRequest{Name: "agent", Address: addr, PubKey: hex.EncodeToString(key.Public().(ed25519.PublicKey)), Timestamp: ts,
		Signature: hex.EncodeToString(ed25519.Sign(key, v1.Sum(nil)))}
	_, _, err := h.s.Register(context.Background(), old)
	if !errors.Is(err, ErrInvalidSignature) || !strings.Contains(err.Error(), "tenant/v1") {
		t.Fatalf("v1 registration: %v, want ErrInvalidSignature naming v1", err)
	}
}

// Finding 5: registrations from one client address are rate limited
// (429 with Retry-After) at the documented burst.
func TestRegistrationIsRateLimitedPerClient(t *testing.T) {
	h := newHarness(t, releaseDelay)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	created, limited := 0, 0
	for i := 0; i < DefaultRegisterBurst+5; i++ {
		resp, eb := post(t, srv.URL+"/v1/tenants", "", signedRegistration(t, h))
		switch {
		case resp.StatusCode == http.StatusCreated:
			created++
		case resp.StatusCode == http.StatusTooManyRequests && eb.Error.Code == httpx.CodeRateLimited && resp.Header.Get("Retry-After") == "5":
			limited++
		default:
			t.Fatalf("registration %d: %d %+v (Retry-After %q)", i, resp.StatusCode, eb, resp.Header.Get("Retry-After"))
		}
	}
	if created != DefaultRegisterBurst || limited != 5 {
		t.Fatalf("%d created, %d limited; want %d and 5", created, limited, DefaultRegisterBurst)
	}
	h.clock.Advance(5 * time.Second) // one more at 0.2/s
	if resp, eb := post(t, srv.URL+"/v1/tenants", "", signedRegistration(t, h)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("after the wait: %d %+v", resp.StatusCode, eb)
	}
}

// Finding 3: allocations need deposit cover; a tenant with no deposit
// cannot hoard slots, a funded one holds what its deposit covers, jobs
// cannot spend what allocations hold, and the number is capped.
func TestHoardingRefusedWithoutDeposit(t *testing.T) {
	h := newHarness(t, releaseDelay, func(c *Config) { c.Limits.MaxAllocations = 2 })
	h.addMiner(coin.Unit)
	h.addMiner(coin.Unit)
	ctx := context.Background()
	week := int64(7 * 24 * 3600)
	if _, err := h.s.Allocate(ctx, h.tenant, AllocateRequest{AgentID: "hoard", DurationS: week}); !errors.Is(err, ErrInsufficientDeposit) {
		t.Fatalf("allocation for a week without a deposit: %v", err)
	}
	h.fund(3 * coin.Unit)
	if _, err := h.s.Allocate(ctx, h.tenant, AllocateRequest{AgentID: "hoard", DurationS: week}); !errors.Is(err, ErrInsufficientDeposit) {
		t.Fatalf("a week (168 AITBC of cover) on a deposit of 3: %v", err)
	}
	if _, err := h.s.Allocate(ctx, h.tenant, AllocateRequest{AgentID: "a1", DurationS: 2 * 3600}); err != nil {
		t.Fatalf("two slot-hours on a deposit of 3: %v", err)
	}
	// 1 AITBC left: a job needing more is refused, as is more cover
	if _, err := h.s.Submit(ctx, h.tenant, JobRequest{Model: testModel, Prompt: "hi", MaxPrice: 2 * coin.Unit}); !errors.Is(err, ErrInsufficientDeposit) {
		t.Fatalf("a job spending what the allocation holds: %v", err)
	}
	if _, err := h.s.Allocate(ctx, h.tenant, AllocateRequest{AgentID: "a2", DurationS: 2 * 3600}); !errors.Is(err, ErrInsufficientDeposit) {
		t.Fatalf("cover beyond the deposit: %v", err)
	}
	// The cover is released pro rata as the allocation runs.
	h.clock.Advance(time.Hour)
	if _, err := h.s.Allocate(ctx, h.tenant, AllocateRequest{AgentID: "a2", DurationS: 2 * 3600}); err != nil {
		t.Fatalf("after an hour, one slot-hour is released: %v", err)
	}
	h.fund(100 * coin.Unit)
	if _, err := h.s.Allocate(ctx, h.tenant, AllocateRequest{AgentID: "a3", DurationS: 60}); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("third allocation with a cap of 2: %v", err)
	}
}

// Finding 5: a tenant's queued and running jobs are capped.
func TestActiveJobsAreCapped(t *testing.T) {
	h := newHarness(t, releaseDelay, func(c *Config) { c.Limits.MaxActiveJobs = 3 })
	h.addMiner(coin.Unit)
	h.fund(100 * coin.Unit)
	for i := 0; i < 3; i++ {
		h.submit(JobRequest{Model: testModel, Prompt: "hi"})
	}
	_, err := h.s.Submit(context.Background(), h.tenant, JobRequest{Model: testModel, Prompt: "hi"})
	if !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("fourth active job: %v", err)
	}
	if status, code := HTTPStatus(err); status != http.StatusTooManyRequests || code != "quota_exceeded" {
		t.Fatalf("quota answer %d %s", status, code)
	}
}

// Finding 5 and 7: a tenant's writes are rate limited (429), and an
// oversized body is 413, not "unexpected EOF".
func TestTenantWritesRateLimitedAndBodiesBounded(t *testing.T) {
	h := newHarness(t, releaseDelay, func(c *Config) { c.Limits.WriteRate, c.Limits.WriteBurst = 1, 3 })
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	big := `{"model":"m","prompt":"` + strings.Repeat("x", 2<<20) + `"}`
	if resp, eb := post(t, srv.URL+"/v1/jobs", h.apiKey, big); resp.StatusCode != http.StatusRequestEntityTooLarge || eb.Error.Code != httpx.CodeBodyTooLarge {
		t.Fatalf("2 MiB body: %d %+v", resp.StatusCode, eb)
	}
	codes := []int{}
	for i := 0; i < 4; i++ {
		resp, _ := post(t, srv.URL+"/v1/jobs", h.apiKey, `{"bad":1}`)
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 400 || codes[1] != 400 || codes[2] != 429 || codes[3] != 429 {
		t.Fatalf("statuses %v: want 400 400 (the 413 took the first token) then 429", codes)
	}
	// Reads are not limited.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/jobs", nil)
	req.Header.Set("X-API-Key", h.apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("list while writes are limited: %v %v", resp, err)
	}
	resp.Body.Close()
}

// Finding 2: before its hello is verified, a miner connection may send a
// few KiB, not 16 MiB; and only so many may be unauthenticated at once.
func TestUnauthenticatedMinerSessionsAreBounded(t *testing.T) {
	h := newHarness(t, releaseDelay, func(c *Config) { c.Limits.MaxPendingHellos = 2 })
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/miners/connect"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A 1 MiB hello: the connection is closed, nothing admitted.
	c, _, err := websocket.Dial(ctx, ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	var challenge minerproto.Envelope
	if err := wsjson.Read(ctx, c, &challenge); err != nil || challenge.Type != minerproto.TypeChallenge {
		t.Fatalf("challenge: %+v %v", challenge, err)
	}
	huge := minerproto.Envelope{Type: minerproto.TypeHello, Hello: &minerproto.Hello{Address: address.Address{1}, Models: []string{strings.Repeat("m", 1<<20)}, Slots: 1}}
	_ = wsjson.Write(ctx, c, huge)
	var reply minerproto.Envelope
	if err := wsjson.Read(ctx, c, &reply); err == nil && reply.Type != minerproto.TypeError {
		t.Fatalf("a 1 MiB hello got %+v", reply)
	}
	c.CloseNow()
	waitFor(t, "the oversized session's slot to be released", func() bool { return len(h.s.guard.hellos) == 0 })

	// Two silent connections take both pre-authentication slots; a third
	// is refused with 503 before the upgrade.
	var held []*websocket.Conn
	for i := 0; i < 2; i++ {
		c, _, err := websocket.Dial(ctx, ws, nil)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	_, resp, err := websocket.Dial(ctx, ws, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third unauthenticated connection: %v %v", resp, err)
	}
	for _, c := range held {
		c.CloseNow()
	}
	waitFor(t, "slots released", func() bool { return len(h.s.guard.hellos) == 0 })
	c, _, err = websocket.Dial(ctx, ws, nil)
	if err != nil {
		t.Fatalf("after the silent ones left: %v", err)
	}
	c.CloseNow()
}

// Finding 7: a chat job whose messages are all blank is refused, as a
// blank prompt is.
func TestBlankChatIsRefused(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.addMiner(coin.Unit)
	h.fund(100 * coin.Unit)
	_, err := h.s.Submit(context.Background(), h.tenant, JobRequest{Model: testModel, Messages: []minerproto.ChatMessage{{Role: "system", Content: ""}, {Role: "user", Content: " \n\t"}}})
	if !errors.Is(err, ErrEmptyPrompt) {
		t.Fatalf("blank chat: %v", err)
	}
	h.submit(JobRequest{Model: testModel, Messages: []minerproto.ChatMessage{{Role: "system", Content: ""}, {Role: "user", Content: "hi"}}})
}

// Finding 5: the prompt bytes a tenant's active jobs hold are capped.
func TestActivePromptBytesAreCapped(t *testing.T) {
	h := newHarness(t, releaseDelay, func(c *Config) { c.Limits.MaxActiveBytes = 100 << 10 })
	h.addMiner(coin.Unit)
	h.fund(100 * coin.Unit)
	p := strings.Repeat("x", 40<<10)
	h.submit(JobRequest{Model: testModel, Prompt: p})
	h.submit(JobRequest{Model: testModel, Prompt: p})
	if _, err := h.s.Submit(context.Background(), h.tenant, JobRequest{Model: testModel, Prompt: p}); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("third 40 KiB prompt with a 100 KiB quota: %v", err)
	}
	h.submit(JobRequest{Model: testModel, Prompt: "small"})
}

// Finding 5: the store is pruned: jobs that ended more than the retention
// ago go, with their prompts and results; active and recent ones stay.
func TestOldJobsArePruned(t *testing.T) {
	h := newHarness(t, releaseDelay, func(c *Config) { c.Limits.Retention = 30 * 24 * time.Hour })
	ctx := context.Background()
	now := h.clock.Now()
	put := func(id, status string, age time.Duration) {
		j := &store.Job{ID: id, TenantID: h.tenant.ID, Status: status, Model: testModel, Prompt: "p", Created: now.Add(-age), Updated: now.Add(-age)}
		if err := h.st.PutJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	old := 31 * 24 * time.Hour
	put("old-settled", store.StatusSettled, old)
	put("old-failed", store.StatusFailed, old)
	put("old-expired", store.StatusExpired, old)
	put("old-running", store.StatusRunning, old)
	put("new-settled", store.StatusSettled, 29*24*time.Hour)
	h.s.prune(ctx)
	for id, kept := range map[string]bool{"old-settled": false, "old-failed": false, "old-expired": false, "old-running": true, "new-settled": true} {
		_, err := h.st.Job(ctx, id)
		if kept && err != nil {
			t.Errorf("%s pruned: %v", id, err)
		}
		if !kept && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s kept past the retention (%v)", id, err)
		}
	}
}

// Finding 4: an address gets at most MaxKeysPerTenant keys by
// registration; keys are listed with creation and last use, and can be
// revoked: through the API at once, by the operator in the store within
// keyCacheTTL.
func TestKeysAreCappedListedAndRevocable(t *testing.T) {
	h := newHarness(t, releaseDelay, func(c *Config) { c.Limits.MaxKeysPerTenant = 3 })
	ctx := context.Background()
	key, addr := newKey(t)
	register := func() (string, error) {
		h.clock.Advance(time.Second) // a new timestamp: a new signature
		ts := h.clock.Now().Unix()
		sig := ed25519.Sign(key, TenantDigest(h.chain.coord, addr, ts, ""))
		_, k, err := h.s.Register(ctx, RegisterRequest{Address: addr, PubKey: hex.EncodeToString(key.Public().(ed25519.PublicKey)), Timestamp: ts, Signature: hex.EncodeToString(sig)})
		return k, err
	}
	var keys []string
	for i := 0; i < 3; i++ {
		k, err := register()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if _, err := register(); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("fourth key with a cap of 3: %v", err)
	}

	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	get := func(key string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/tenants/keys", nil)
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	status, list := get(keys[0])
	ks, _ := list["keys"].([]any)
	if status != 200 || len(ks) != 3 {
		t.Fatalf("list: %d %v", status, list)
	}
	first := ks[0].(map[string]any)
	if first["created"] == "" || first["last_used"] == nil || len(first["key_id"].(string)) != 16 {
		t.Fatalf("key info %v: want key_id, created and last_used", first)
	}
	// Revoke key 1 with key 0: key 1 fails at once, the others work.
	id := store.KeyIDOf(HashKey(keys[1]))
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v1/tenants/keys/"+id, nil)
	req.Header.Set("X-API-Key", keys[0])
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
	if status, _ := get(keys[1]); status != http.StatusUnauthorized {
		t.Fatalf("revoked key answered %d", status)
	}
	if status, _ := get(keys[2]); status != 200 {
		t.Fatalf("other key answered %d", status)
	}
	if _, err := register(); err != nil {
		t.Fatalf("a key slot was freed by the revocation: %v", err)
	}
	// The operator revokes key 2 in the store: it stops within the cache TTL.
	if err := h.st.RevokeKey(ctx, h.s.mustTenantID(t, keys[2]), store.KeyIDOf(HashKey(keys[2]))); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(keyCacheTTL)
	if status, _ := get(keys[2]); status != http.StatusUnauthorized {
		t.Fatalf("key revoked in the store still answers %d after %v", status, keyCacheTTL)
	}
}

func (s *Service) mustTenantID(t *testing.T, key string) string {
	t.Helper()
	tn, err := s.Authenticate(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tn.ID
}

// A tenant's listings cost the coordinator a transaction fee each: past
// its allowance POST /v1/services/register answers 429 before anything is
// sent, and a registration refused as invalid spends nothing.
func TestCoordinatorPaidListingsAreRateLimited(t *testing.T) {
	h := newHarness(t, releaseDelay, func(c *Config) { c.Limits.ListingRate, c.Limits.ListingBurst = 0.001, 2 })
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	now := h.clock.Now()
	listing := func(id string) map[string]any {
		return map[string]any{"service_id": id, "name": "GPU Computing Service", "type": "gpu_compute",
			"specs":        map[string]any{"gpu_type": "NVIDIA RTX 4090", "memory": "24GB"},
			"pricing":      map[string]any{"rate_per_hour": 100, "currency": "AITBC"},
			"availability": map[string]any{"start_time": now.UTC().Format(time.RFC3339), "end_time": now.Add(time.Hour).UTC().Format(time.RFC3339)}}
	}
	bad := listing("gpu-bad")
	bad["pricing"] = map[string]any{"rate_per_hour": 0}
	for range 3 {
		if resp, eb := post(t, srv.URL+"/v1/services/register", h.apiKey, bad); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("invalid listing: %d %+v", resp.StatusCode, eb)
		}
	}
	var codes []int
	for i := range 3 {
		resp, _ := post(t, srv.URL+"/v1/services/register", h.apiKey, listing(fmt.Sprintf("gpu-%d", i)))
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] == http.StatusTooManyRequests || codes[1] == http.StatusTooManyRequests || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("statuses %v: want two answered (whatever the chain says) and the third 429", codes)
	}
}

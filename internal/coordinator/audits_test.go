package coordinator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/dataproc"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/rpc"
)

// auditNode answers the audits module's check query as a node would:
// the check of each job awaits the verifier the test names.
type auditNode struct {
	mu     sync.Mutex
	checks map[string]audits.CheckView
}

func (n *auditNode) GetJSON(_ context.Context, path string, out any) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	id, ok := strings.CutPrefix(path, "/api/v1/audits/checks/")
	c, found := n.checks[id]
	if !ok || !found {
		return audits.ErrCheckNotFound
	}
	b, _ := json.Marshal(c)
	return json.Unmarshal(b, out)
}

func (n *auditNode) Chain(context.Context) (rpc.ChainInfo, error) { return rpc.ChainInfo{}, nil }

// finishAttested sends the result with an attested receipt and the
// attestation att (whose hash the receipt signs as sum).
func (m *fakeMiner) finishAttested(j *minerproto.Job, text string, tokensOut int, att []byte, sum [32]byte) {
	m.h.t.Helper()
	id, _ := hex.DecodeString(j.ID)
	ph, _ := hex.DecodeString(j.PromptHash)
	cust, _ := address.Parse(j.Customer)
	res := sha256.Sum256([]byte(text))
	r := jobs.Receipt{JobID: id, ChainID: j.ChainID, Miner: m.addr[:], Customer: cust[:], Model: j.Model, PromptHash: ph, ResultHash: res[:],
		TokensIn: 2, TokensOut: uint64(tokensOut), StartMs: 1, EndMs: 2, Price: jobs.PriceFor(uint64(tokensOut), m.price), AttestHash: sum[:]}
	r.Sign(m.key)
	b, err := r.Encode()
	if err != nil {
		m.h.t.Fatal(err)
	}
	m.send(minerproto.Envelope{Type: minerproto.TypeResult, JobID: j.ID, Attempt: j.Attempt, Text: text, TokensIn: 2, TokensOut: tokensOut,
		FinishReason: "stop", Receipt: b, Attestation: att})
}

// TestOnlyTheAssignedVerifierGetsTheJobToRecheck: the coordinator keeps
// the attestation the receipt signs, and serves prompt, result and
// attestation to the verifier the chain's check awaits, to nobody else.
func TestOnlyTheAssignedVerifierGetsTheJobToRecheck(t *testing.T) {
	node := &auditNode{checks: map[string]audits.CheckView{}}
	h := newHarness(t, releaseDelay, func(c *Config) { c.Chain = node })
	h.fund(100 * coin.Unit)
	m := h.addMiner(coin.Unit)
	j := h.submit(JobRequest{Model: testModel, Prompt: "It was", MaxTokens: 8})
	mj := m.nextJob()
	att := []byte("commitments of every 32 tokens")
	m.finishAttested(mj, "It was awkward", 3, att, sha256.Sum256(att))
	done := h.waitStatus(j.ID, "completed")
	if !bytes.Equal(done.Attestation, att) {
		t.Fatalf("stored attestation %q, want %q", done.Attestation, att)
	}

	vpriv, vaddr := newKey(t)
	opriv, _ := newKey(t)
	verifier, other := keystore.NewKey("verifier", vpriv), keystore.NewKey("other", opriv)
	node.mu.Lock()
	node.checks[j.ID] = audits.CheckView{JobID: j.ID, Status: "assigned", Verifier: vaddr.String()}
	node.mu.Unlock()

	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	c := NewClient(srv.URL, "")
	ctx := context.Background()
	now := h.clock.Now()
	got, err := c.auditJobAt(ctx, verifier, j.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Prompt != "It was" || got.Result != "It was awkward" || !bytes.Equal(got.Attestation, att) || len(got.Receipt) == 0 {
		t.Fatalf("verifier got %+v", got)
	}
	if _, err := c.auditJobAt(ctx, other, j.ID, now); !errors.Is(err, ErrNotAssignedVerifier) {
		t.Fatalf("another key: %v, want not_assigned_verifier", err)
	}
	if _, err := c.auditJobAt(ctx, verifier, j.ID, now.Add(-maxClockSkew*2)); !errors.Is(err, ErrStaleSignature) {
		t.Fatalf("an old signature: %v, want stale_signature", err)
	}
	// A check that has moved on (the verifier reported) serves no one.
	node.mu.Lock()
	node.checks[j.ID] = audits.CheckView{JobID: j.ID, Status: "passed", Verifier: vaddr.String()}
	node.mu.Unlock()
	if _, err := c.auditJobAt(ctx, verifier, j.ID, now); !errors.Is(err, ErrNotAssignedVerifier) {
		t.Fatalf("after its report: %v, want not_assigned_verifier", err)
	}
	// A job without a check: nobody.
	if _, err := c.auditJobAt(ctx, verifier, strings.Repeat("ab", 16), now); !errors.Is(err, ErrNotAssignedVerifier) {
		t.Fatalf("no check: %v", err)
	}
}

// holdStore is a store whose writes of completed jobs wait until release
// is closed: the window between the coordinator's in-memory state and
// its durable store, held open.
type holdStore struct {
	store.Store
	release chan struct{}
}

func (s *holdStore) PutJob(ctx context.Context, j *store.Job) error {
	if j.Status == store.StatusCompleted {
		<-s.release
	}
	return s.Store.PutJob(ctx, j)
}

// TestVerifierGetsAJobWhoseStoreWriteIsStillPending: a job completed in
// memory whose snapshot the store has not written yet is served to its
// verifier all the same (the route reads the coordinator's in-memory
// state first), and the same job after the write lands.
func TestVerifierGetsAJobWhoseStoreWriteIsStillPending(t *testing.T) {
	node := &auditNode{checks: map[string]audits.CheckView{}}
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	_, coord := newKey(t)
	chain := newFakeChain(clock, coord, releaseDelay)
	sq, err := store.OpenSQLite(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	st := &holdStore{Store: sq, release: make(chan struct{})}
	var once sync.Once
	unhold := func() { once.Do(func() { close(st.release) }) }
	h := startHarness(t, chain, st, func(c *Config) { c.Chain = node })
	t.Cleanup(unhold) // registered after the harness: runs before its final drain
	h.fund(100 * coin.Unit)
	m := h.addMiner(coin.Unit)
	j := h.submit(JobRequest{Model: testModel, Prompt: "It was", MaxTokens: 8})
	att := []byte("commitments of every 32 tokens")
	m.finishAttested(m.nextJob(), "It was awkward", 3, att, sha256.Sum256(att))
	h.waitStatus(j.ID, "completed")
	if got, err := sq.Job(h.ctx, j.ID); err != nil || got.Status == store.StatusCompleted {
		t.Fatalf("the store already holds the completed job (%v): the window is not held open", err)
	}

	vpriv, vaddr := newKey(t)
	verifier := keystore.NewKey("verifier", vpriv)
	node.mu.Lock()
	node.checks[j.ID] = audits.CheckView{JobID: j.ID, Status: "assigned", Verifier: vaddr.String()}
	node.mu.Unlock()
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	c := NewClient(srv.URL, "")
	fetch := func(when string) {
		t.Helper()
		got, err := c.auditJobAt(context.Background(), verifier, j.ID, h.clock.Now())
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if got.Prompt != "It was" || got.Result != "It was awkward" || !bytes.Equal(got.Attestation, att) || len(got.Receipt) == 0 {
			t.Fatalf("%s: verifier got %+v", when, got)
		}
	}
	fetch("before the store write")
	unhold()
	waitFor(t, "the store write", func() bool {
		got, err := sq.Job(h.ctx, j.ID)
		return err == nil && got.Status == store.StatusCompleted
	})
	fetch("after the store write")
}

// TestAttestationNotSignedByTheReceiptIsRejected: a miner cannot hand the
// coordinator an attestation other than the one its receipt signs.
func TestAttestationNotSignedByTheReceiptIsRejected(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(100 * coin.Unit)
	m := h.addMiner(coin.Unit)
	j := h.submit(JobRequest{Model: testModel, Prompt: "It was", MaxTokens: 8})
	mj := m.nextJob()
	m.finishAttested(mj, "It was awkward", 3, []byte("other commitments"), sha256.Sum256([]byte("commitments")))
	waitFor(t, "the job requeued", func() bool {
		got := h.job(j.ID)
		return got.Status == "queued" && len(got.Excluded) == 1 && got.Excluded[0] == m.addr.String()
	})
	if got := h.job(j.ID); got.Result != "" || got.Attestation != nil {
		t.Fatalf("a rejected result was kept: %q %q", got.Result, got.Attestation)
	}
}

// TestOnlyTheAssignedVerifierGetsAKindJobsInput: a data-processing job's
// input file goes to the verifier the chain's check awaits, which re-runs
// the job on it; nobody else gets it, and a text job has none.
func TestOnlyTheAssignedVerifierGetsAKindJobsInput(t *testing.T) {
	node := &auditNode{checks: map[string]audits.CheckView{}}
	h := newHarness(t, releaseDelay, withFiles(t, 1<<20, 1<<20), func(c *Config) { c.Chain = node })
	h.fund(10 * coin.Unit)
	m := h.addKindMiner(coin.Unit)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	c := NewClient(srv.URL, h.apiKey)
	path := filepath.Join(t.TempDir(), "sales.csv")
	if err := os.WriteFile(path, []byte(salesCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := c.UploadFile(t.Context(), path, 0)
	if err != nil {
		t.Fatal(err)
	}
	spec, prompt, err := jobkind.Prepare(jobkind.Spec{Type: jobkind.TypeDataProcessing, Input: jobkind.FileRef{SHA256: info.Hash, Bytes: info.Size},
		Data: &dataproc.Spec{}}, []byte(salesCSV))
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Submit(t.Context(), JobRequest{Model: jobkind.ModelDataProcessing, Prompt: prompt, MaxTokens: spec.Units})
	if err != nil {
		t.Fatal(err)
	}
	mj := m.nextJob()
	m.finish(mj, "report", spec.Units)
	h.waitStatus(v.JobID, "completed")

	vpriv, vaddr := newKey(t)
	opriv, _ := newKey(t)
	verifier, other := keystore.NewKey("verifier", vpriv), keystore.NewKey("other", opriv)
	node.mu.Lock()
	node.checks[v.JobID] = audits.CheckView{JobID: v.JobID, Status: "assigned", Verifier: vaddr.String()}
	node.mu.Unlock()
	now := h.clock.Now()
	got, err := c.auditInputAt(t.Context(), verifier, v.JobID, now)
	if err != nil || string(got) != salesCSV {
		t.Fatalf("verifier got %q, %v", got, err)
	}
	if _, err := c.auditInputAt(t.Context(), other, v.JobID, now); !errors.Is(err, ErrNotAssignedVerifier) {
		t.Fatalf("another key: %v, want not_assigned_verifier", err)
	}
	// A text job has no input to serve.
	tm := h.addMiner(coin.Unit)
	tj := h.submit(JobRequest{Model: testModel, Prompt: "It was", MaxTokens: 8})
	tm.finish(tm.nextJob(), "It was awkward", 3)
	h.waitStatus(tj.ID, "completed")
	node.mu.Lock()
	node.checks[tj.ID] = audits.CheckView{JobID: tj.ID, Status: "assigned", Verifier: vaddr.String()}
	node.mu.Unlock()
	if _, err := c.auditInputAt(t.Context(), verifier, tj.ID, now); !errors.Is(err, ErrFileNotFound) {
		t.Fatalf("a text job's input: %v, want file_not_found", err)
	}
}

// TestAuditJobServesAChatJobsMessagesAsTheReceiptBindsThem: a verifier
// rebuilds a chat job's prompt from its messages, so the audit view
// carries them exactly as the miner got them: their prompt hash is the
// one the miner's receipt signs.
func TestAuditJobServesAChatJobsMessagesAsTheReceiptBindsThem(t *testing.T) {
	node := &auditNode{checks: map[string]audits.CheckView{}}
	h := newHarness(t, releaseDelay, func(c *Config) { c.Chain = node })
	h.fund(100 * coin.Unit)
	m := h.addMiner(coin.Unit)
	msgs := []minerproto.ChatMessage{{Role: "system", Content: "Be Tolstoy."}, {Role: "user", Content: "Who is <Natasha>?"}}
	temp := float32(0.7)
	j := h.submit(JobRequest{Model: testModel, Messages: msgs, MaxTokens: 8, Temperature: &temp, TopP: 0.9, Seed: 42, Stop: []string{"\n"}})
	mj := m.nextJob()
	att := []byte("commitments")
	m.finishAttested(mj, "A countess", 2, att, sha256.Sum256(att))
	h.waitStatus(j.ID, "completed")
	// The audit route reads the durable store, which the writer fills
	// after the live state; a verifier comes after settlement, which
	// waits for it too.
	waitFor(t, "result stored", func() bool {
		sj, err := h.s.cfg.Store.Job(context.Background(), j.ID)
		return err == nil && len(sj.Receipt) > 0
	})

	vpriv, vaddr := newKey(t)
	node.mu.Lock()
	node.checks[j.ID] = audits.CheckView{JobID: j.ID, Status: "assigned", Verifier: vaddr.String()}
	node.mu.Unlock()
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	got, err := NewClient(srv.URL, "").auditJobAt(context.Background(), keystore.NewKey("verifier", vpriv), j.ID, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	r, err := jobs.DecodeReceipt(got.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	served := make([]minerproto.ChatMessage, len(got.Messages))
	for i, cm := range got.Messages {
		served[i] = minerproto.ChatMessage(cm)
	}
	ph := minerproto.PromptHash(got.Prompt, served)
	if got.Prompt != "" || len(served) != 2 || !bytes.Equal(ph[:], r.PromptHash) {
		t.Fatalf("served prompt %q, messages %+v: their hash %x, the receipt signs %x", got.Prompt, served, ph, r.PromptHash)
	}
	// The sampling request, which the miner's attestation must claim, is
	// served as the miner got it.
	if sp := got.Sampling; sp == nil || sp.Temperature != mj.Temperature || sp.TopP != mj.TopP || sp.Seed != mj.Seed ||
		sp.Temperature != 0.7 || sp.TopP != 0.9 || sp.Seed != 42 || len(sp.Stop) != 1 || sp.Stop[0] != mj.Stop[0] {
		t.Fatalf("served sampling %+v, the miner got temperature %v top_p %v seed %d stop %q", sp, mj.Temperature, mj.TopP, mj.Seed, mj.Stop)
	}
}

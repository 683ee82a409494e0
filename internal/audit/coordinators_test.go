package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/audit"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/verify"
)

// auditServer speaks the coordinator's GET /v1/audits/jobs/{id}: it checks
// the verifier's signature as a coordinator does and serves jobs[id], or
// answers job_not_found. hits counts the requests it got.
func auditServer(t *testing.T, jobs map[string]coordinator.AuditJob, hits *atomic.Int32) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/audits/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		id := r.PathValue("id")
		pub, _ := hex.DecodeString(r.Header.Get(coordinator.HeaderVerifierKey))
		ms, _ := strconv.ParseInt(r.Header.Get(coordinator.HeaderVerifierTime), 10, 64)
		sig, _ := hex.DecodeString(r.Header.Get(coordinator.HeaderVerifierSig))
		if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, coordinator.AuditDigest(id, ms), sig) {
			httpx.WriteError(w, http.StatusUnauthorized, "invalid_signature", "bad signature")
			return
		}
		j, ok := jobs[id]
		if !ok {
			httpx.WriteError(w, http.StatusNotFound, "job_not_found", "job "+id+" is not in this coordinator's store")
			return
		}
		httpx.WriteJSON(w, http.StatusOK, j)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestVerifierFetchesFromTheJobsCoordinatorAndPassesOverALiar runs the
// service with the real coordinator client against two coordinators: one
// that lies about a job (another prompt, then another result, each with
// the rest of the job intact) and the honest one that served it. The
// liar's copies are passed over because the chain contradicts them, and
// the honest copy passes; with the liar alone there is no verdict (no
// report), never a fail. The job's coordinator is found by its
// announcement on chain when it is not among the URLs given.
func TestVerifierFetchesFromTheJobsCoordinatorAndPassesOverALiar(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	key := keystore.NewKey("verifier", priv)
	id := strings.Repeat("5a", 16)
	coordKey := address.FromPubKey(key.PublicKey()) // any address: the job's coordinator key
	n := &node{announced: map[string][]string{}}
	honest := n.settle(t, id, coordKey, job(t, nil))

	otherPrompt := honest
	otherPrompt.Prompt = "Pierre said"
	otherResult := honest
	otherResult.Result += " and left"
	var liarHits, honestHits, absentHits atomic.Int32
	liar := auditServer(t, map[string]coordinator.AuditJob{id: otherPrompt}, &liarHits)
	liar2 := auditServer(t, map[string]coordinator.AuditJob{id: otherResult}, &liarHits)
	good := auditServer(t, map[string]coordinator.AuditJob{id: honest}, &honestHits)
	absent := auditServer(t, nil, &absentHits)

	run := func(given []string, announced []string) ([]audit.Outcome, []audits.MsgReport, error) {
		n.announced[coordKey.String()] = announced
		var sent []audits.MsgReport
		submit := func(_ context.Context, msg tx.Msg) (string, error) {
			var m audits.MsgReport
			if err := msg.DecodeBody(&m); err != nil {
				t.Fatal(err)
			}
			sent = append(sent, m)
			return "tx", nil
		}
		s, err := audit.New(audit.Config{Key: key, Node: *n, Locate: audit.Coordinators(*n, given, false, ""),
			Submit: submit, Check: audit.Recheck(t.TempDir(), 2)})
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Once(context.Background())
		return out, sent, err
	}

	// Given the two liars first and the honest one last.
	out, sent, err := run([]string{liar.URL, liar2.URL, good.URL}, nil)
	if err != nil || len(out) != 1 || len(sent) != 1 || !sent[0].Pass || out[0].Coordinator != good.URL {
		t.Fatalf("liars then the honest coordinator: %+v %+v %v", out, sent, err)
	}
	if liarHits.Load() != 2 || honestHits.Load() != 1 {
		t.Fatalf("requests: liars %d, honest %d", liarHits.Load(), honestHits.Load())
	}

	// Only a coordinator without the job is given; the job's coordinator
	// announced the honest one on chain, which is asked first.
	out, sent, err = run([]string{absent.URL}, []string{good.URL})
	if err != nil || len(sent) != 1 || !sent[0].Pass || out[0].Coordinator != good.URL || absentHits.Load() != 0 {
		t.Fatalf("announced coordinator: %+v %+v %v (absent asked %d times)", out, sent, err, absentHits.Load())
	}

	// The liars alone: no verdict, nothing reported, the reason named.
	out, sent, err = run([]string{liar.URL, liar2.URL, absent.URL}, nil)
	if len(out) != 0 || len(sent) != 0 || !errors.Is(err, audit.ErrWrongData) || !errors.Is(err, coordinator.ErrJobNotFound) {
		t.Fatalf("liars alone: %+v %+v %v", out, sent, err)
	}
}

// TestRecheckRebuildsAChatJobsPrompt: a chat job on the built-in engine
// (tolstoy-1m has no template: the flattened conversation) passes with
// the messages it ran, and fails when it answered other messages than the
// ones its receipt binds.
func TestRecheckRebuildsAChatJobsPrompt(t *testing.T) {
	msgs := []store.ChatMessage{{Role: "system", Content: "Be Tolstoy."}, {Role: "user", Content: "Who is Natasha?"}}
	other := []store.ChatMessage{msgs[0], {Role: "user", Content: "Who is Pierre?"}}
	chat := func(ran, claimed []store.ChatMessage) coordinator.AuditJob {
		m, err := engine.LoadDefault()
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		hash, err := verify.ModelFileHash(engine.NewRegistry(t.TempDir()), engine.DefaultModel)
		if err != nil {
			t.Fatal(err)
		}
		conv := func(in []store.ChatMessage) []minerproto.ChatMessage {
			out := make([]minerproto.ChatMessage, len(in))
			for i, cm := range in {
				out[i] = minerproto.ChatMessage(cm)
			}
			return out
		}
		res, a, err := verify.Generate(context.Background(), m, engine.GenerateRequest{Prompt: verify.FlattenChat(conv(ran)), MaxTokens: 40, Temperature: 0.8, Seed: 7, Threads: 1}, hash, "test", nil)
		if err != nil {
			t.Fatal(err)
		}
		att, err := a.Encode()
		if err != nil {
			t.Fatal(err)
		}
		_, priv, _ := ed25519.GenerateKey(nil)
		ph, rh, ah := minerproto.PromptHash("", conv(claimed)), sha256.Sum256([]byte(res.Text)), sha256.Sum256(att)
		r := jobs.Receipt{JobID: make([]byte, jobs.IDLen), ChainID: "aitbc-devnet", Customer: make([]byte, 20), Model: engine.DefaultModel,
			PromptHash: ph[:], ResultHash: rh[:], TokensIn: uint64(len(res.PromptTokens)), TokensOut: uint64(len(res.Tokens)),
			StartMs: 1, EndMs: 2, Price: coin.Amount(len(res.Tokens)), AttestHash: ah[:]}
		r.Sign(priv)
		b, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return coordinator.AuditJob{Kind: "chat", Model: engine.DefaultModel, Messages: claimed, MaxTokens: 40, Result: res.Text, Receipt: b, Attestation: att}
	}
	v, err := audit.Recheck(t.TempDir(), 2)(context.Background(), chat(msgs, msgs))
	if err != nil || !v.Pass {
		t.Fatalf("honest chat job: %+v, %v", v, err)
	}
	v, err = audit.Recheck(t.TempDir(), 2)(context.Background(), chat(other, msgs))
	if err != nil || v.Pass || !strings.Contains(v.Reason, "prompt encodes to other tokens") {
		t.Fatalf("an answer to other messages: %+v, %v", v, err)
	}
}

// TestAPrivateJobsReceiptIsCheckedAgainstTheChainsFields: a private job's
// settlement anchors the private receipt, not the public one the verifier
// gets; the public receipt is then accepted when its model, miner, prompt
// hash and attestation hash are the chain's. A public job whose receipt is
// not the anchored one is refused (no verdict).
func TestAPrivateJobsReceiptIsCheckedAgainstTheChainsFields(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	key := keystore.NewKey("verifier", priv)
	id := strings.Repeat("6b", 16)
	n := &node{private: map[string]bool{}}
	j := n.settle(t, id, address.Address{}, job(t, nil))
	v := n.jobs[id]
	v.ReceiptHash = strings.Repeat("00", 32) // the private receipt's hash
	n.jobs[id] = v
	var sent []audits.MsgReport
	submit := func(_ context.Context, msg tx.Msg) (string, error) {
		var m audits.MsgReport
		if err := msg.DecodeBody(&m); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m)
		return "tx", nil
	}
	once := func() ([]audit.Outcome, error) {
		s, err := audit.New(audit.Config{Key: key, Node: *n, Source: source{id: j}, Submit: submit, Check: audit.Recheck(t.TempDir(), 2)})
		if err != nil {
			t.Fatal(err)
		}
		return s.Once(context.Background())
	}
	if out, err := once(); len(out) != 0 || !errors.Is(err, audit.ErrWrongData) {
		t.Fatalf("a public job whose receipt is not the anchored one: %+v %v", out, err)
	}
	n.private[id] = true
	if out, err := once(); err != nil || len(out) != 1 || !sent[0].Pass {
		t.Fatalf("a private job: %+v %+v %v", out, sent, err)
	}
}

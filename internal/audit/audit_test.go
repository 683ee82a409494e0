package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/audit"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/coordinators"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/verify"
)

const prompt = "Natasha said"

// job is what the coordinator keeps of a job run on the built-in engine,
// with edit applied to the generation's result before it is signed (a
// cheat's output).
func job(t *testing.T, editResult func(string) string) coordinator.AuditJob {
	t.Helper()
	return jobWith(t, editResult, nil)
}

// jobWith is job with edit applied to the attestation before the receipt
// signs it.
func jobWith(t *testing.T, editResult func(string) string, edit func(*verify.Attestation)) coordinator.AuditJob {
	t.Helper()
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	hash, err := verify.ModelFileHash(engine.NewRegistry(t.TempDir()), engine.DefaultModel)
	if err != nil {
		t.Fatal(err)
	}
	res, a, err := verify.Generate(context.Background(), m, engine.GenerateRequest{Prompt: prompt, MaxTokens: 40, Temperature: 0.8, Seed: 7, Threads: 1}, hash, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(a)
	}
	att, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	text := res.Text
	if editResult != nil {
		text = editResult(text)
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	ph, rh, ah := sha256.Sum256([]byte(prompt)), sha256.Sum256([]byte(text)), sha256.Sum256(att)
	r := jobs.Receipt{JobID: make([]byte, jobs.IDLen), ChainID: "aitbc-devnet", Customer: make([]byte, 20), Model: engine.DefaultModel,
		PromptHash: ph[:], ResultHash: rh[:], TokensIn: uint64(len(res.PromptTokens)), TokensOut: uint64(len(res.Tokens)),
		StartMs: 1, EndMs: 2, Price: coin.Amount(len(res.Tokens)), AttestHash: ah[:]}
	r.Sign(priv)
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return coordinator.AuditJob{JobID: hex.EncodeToString(r.JobID), Kind: "completion", Model: engine.DefaultModel, Prompt: prompt,
		MaxTokens: 40, Result: text, Receipt: b, Attestation: att, Sampling: &coordinator.SamplingView{Temperature: 0.8, Seed: 7}}
}

func TestRecheckPassesAnHonestJob(t *testing.T) {
	v, err := audit.Recheck(t.TempDir(), 2)(context.Background(), job(t, nil))
	if err != nil || !v.Pass || len(v.Evidence) != sha256.Size {
		t.Fatalf("honest job: %+v, %v", v, err)
	}
}

func TestRecheckFailsATruncatedOutput(t *testing.T) {
	// The miner cut its output short but attested the full generation.
	v, err := audit.Recheck(t.TempDir(), 2)(context.Background(), job(t, func(s string) string { return s[:len(s)/2] }))
	if err != nil || v.Pass || v.Reason == "" || len(v.Reason) > audits.MaxReason {
		t.Fatalf("truncated job: %+v, %v", v, err)
	}
}

// TestRecheckGivesNoVerdictOnTheCoordinatorsWordAboutSampling: the
// coordinator says the job asked another seed, temperature or stop than
// the miner's signed attestation claims. The chain anchors neither, so
// that is no verdict (ErrWrongData: the next coordinator is tried), never
// a fail: the recomputation and the replay with the miner's own
// parameters pass.
func TestRecheckGivesNoVerdictOnTheCoordinatorsWordAboutSampling(t *testing.T) {
	for _, sp := range []coordinator.SamplingView{{Temperature: 0.8, Seed: 8}, {Temperature: 1, Seed: 7}, {Temperature: 0.8, Seed: 7, Stop: []string{"."}}} {
		j := job(t, nil)
		j.Sampling = &sp
		v, err := audit.Recheck(t.TempDir(), 2)(context.Background(), j)
		if !errors.Is(err, audit.ErrWrongData) || v.Pass || v.Reason != "" || !strings.Contains(err.Error(), "sampling request differs") {
			t.Fatalf("coordinator says %+v: %+v, %v; want no verdict", sp, v, err)
		}
	}
}

// TestRecheckFailsAMinerWhoseOwnSamplingClaimFails: the miner signed
// another seed than it sampled with (and than the job asked): the
// coordinator's request disagrees, and the replay with the miner's own
// claim fails too, so the verdict rests on what the miner signed: a fail.
func TestRecheckFailsAMinerWhoseOwnSamplingClaimFails(t *testing.T) {
	j := jobWith(t, nil, func(a *verify.Attestation) { a.Sampling.Seed = 8 })
	v, err := audit.Recheck(t.TempDir(), 2)(context.Background(), j)
	if err != nil || v.Pass || !strings.Contains(v.Reason, "the sampler draws") {
		t.Fatalf("miner claims seed 8, sampled with 7: %+v, %v", v, err)
	}
}

func TestRecheckFailsAnAttestationTheReceiptDoesNotSign(t *testing.T) {
	j := job(t, nil)
	j.Attestation = append([]byte(nil), j.Attestation...)
	j.Attestation[len(j.Attestation)-1] ^= 1
	v, err := audit.Recheck(t.TempDir(), 2)(context.Background(), j)
	if err != nil || v.Pass {
		t.Fatalf("swapped attestation: %+v, %v", v, err)
	}
}

// node answers the queries of the verifier service as the chain's modules
// would: the checks awaiting the verifier, and each job's record, check,
// privacy and its coordinator's announcements.
type node struct {
	assigned  []string
	jobs      map[string]jobs.View
	checks    map[string]audits.CheckView
	announced map[string][]string // coordinator address -> URLs
	private   map[string]bool
}

func (n node) GetJSON(_ context.Context, path string, out any) error {
	var v any
	switch {
	case strings.HasPrefix(path, "/api/v1/audits/verifiers/"):
		v = audits.VerifierView{Assigned: n.assigned}
	case strings.HasPrefix(path, "/api/v1/audits/checks/"):
		c, ok := n.checks[strings.TrimPrefix(path, "/api/v1/audits/checks/")]
		if !ok {
			return audits.ErrCheckNotFound
		}
		v = c
	case strings.HasSuffix(path, "/privacy"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/api/v1/jobs/"), "/privacy")
		v = jobs.PrivacyView{ID: id, Private: n.private[id]}
	case strings.HasPrefix(path, "/api/v1/jobs/"):
		j, ok := n.jobs[strings.TrimPrefix(path, "/api/v1/jobs/")]
		if !ok {
			return jobs.ErrJobNotFound
		}
		v = j
	case strings.HasPrefix(path, "/api/v1/coordinators/"):
		var l coordinators.ListView
		for _, u := range n.announced[strings.TrimPrefix(path, "/api/v1/coordinators/")] {
			l.Coordinators = append(l.Coordinators, coordinators.View{URL: u})
		}
		v = l
	default:
		return errors.New("unexpected path " + path)
	}
	b, _ := json.Marshal(v)
	return json.Unmarshal(b, out)
}

// settle makes j the job id as the chain has it settled: its receipt
// re-signed by a miner for that id, the job's record (coordinator coord,
// the receipt anchored) and its check (assigned, naming the attestation
// hash) added to n.
func (n *node) settle(t *testing.T, id string, coord address.Address, j coordinator.AuditJob) coordinator.AuditJob {
	t.Helper()
	r, err := jobs.DecodeReceipt(j.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	miner := address.FromPubKey(pub)
	r.JobID, _ = hex.DecodeString(id)
	r.Miner = miner[:]
	r.Sign(priv)
	if j.Receipt, err = r.Encode(); err != nil {
		t.Fatal(err)
	}
	j.JobID = id
	if n.jobs == nil {
		n.jobs, n.checks = map[string]jobs.View{}, map[string]audits.CheckView{}
	}
	n.jobs[id] = jobs.View{ID: id, Status: "settled", Coordinator: coord, Miner: &miner, Model: r.Model,
		PromptHash: hex.EncodeToString(r.PromptHash), MaxTokens: uint64(j.MaxTokens), ReceiptHash: r.HashHex()}
	n.checks[id] = audits.CheckView{JobID: id, Miner: miner, Status: "assigned", AttestHash: hex.EncodeToString(r.AttestHash)}
	n.assigned = append(n.assigned, id)
	return j
}

type source map[string]coordinator.AuditJob

// AuditInput: these jobs have no input file.
func (s source) AuditInput(context.Context, coordinator.AuditSigner, string) ([]byte, error) {
	return nil, coordinator.ErrFileNotFound
}

func (s source) AuditJob(_ context.Context, _ coordinator.AuditSigner, id string) (coordinator.AuditJob, error) {
	j, ok := s[id]
	if !ok {
		return j, coordinator.ErrNotAssignedVerifier
	}
	return j, nil
}

func TestServiceReportsEachAssignedCheckOnce(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	key := keystore.NewKey("verifier", priv)
	honest, cheat, missing := strings.Repeat("01", 16), strings.Repeat("02", 16), strings.Repeat("03", 16)
	var mu sync.Mutex
	var sent []audits.MsgReport
	submit := func(_ context.Context, msg tx.Msg) (string, error) {
		var m audits.MsgReport
		if msg.Type != audits.TypeReport {
			t.Fatalf("submitted %s", msg.Type)
		}
		if err := msg.DecodeBody(&m); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, m)
		return "tx", nil
	}
	n := &node{}
	src := source{honest: n.settle(t, honest, address.Address{}, job(t, nil)), cheat: n.settle(t, cheat, address.Address{}, job(t, nil))}
	n.settle(t, missing, address.Address{}, job(t, nil))
	check := func(_ context.Context, j coordinator.AuditJob) (audit.Verdict, error) {
		if j.JobID == cheat {
			return audit.Verdict{Evidence: []byte{1}, Reason: "commitments not reproduced"}, nil
		}
		return audit.Verdict{Pass: true, Evidence: []byte{2}}, nil
	}
	s, err := audit.New(audit.Config{Key: key, Node: *n, Source: src, Submit: submit, Check: check})
	if err != nil {
		t.Fatal(err)
	}
	if s.Address() != key.Address() {
		t.Fatal("wrong address")
	}
	out, err := s.Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("a job it cannot fetch should be named: %v", err)
	}
	if len(out) != 2 || len(sent) != 2 {
		t.Fatalf("reported %d (%d sent), want 2", len(out), len(sent))
	}
	byID := map[string]audits.MsgReport{}
	for _, m := range sent {
		byID[hex.EncodeToString(m.JobID)] = m
	}
	if !byID[honest].Pass || byID[cheat].Pass || byID[cheat].Reason == "" {
		t.Fatalf("verdicts %+v", byID)
	}
	// The chain has not taken the reports yet: a second pass sends none again.
	if _, err := s.Once(context.Background()); err == nil || len(sent) != 2 {
		t.Fatalf("second pass sent %d", len(sent))
	}
}

package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/audit"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/dataproc"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/train"
)

func csvTable(rows int) []byte {
	var sb strings.Builder
	sb.WriteString("a,b,label\n")
	for i := range rows {
		l := "x"
		if (i%7)+(i%5) > 5 {
			l = "y"
		}
		fmt.Fprintf(&sb, "%d,%d,%s\n", i%7, i%5, l)
	}
	return []byte(sb.String())
}

// kindJob is a data-processing or training job as its miner ran it, with
// edit applied to the output before the receipt signs it (a cheat's).
func kindJob(t *testing.T, s jobkind.Spec, model string, edit func(string) string) (coordinator.AuditJob, []byte) {
	t.Helper()
	data := csvTable(400)
	h := sha256.Sum256(data)
	s.Input = jobkind.FileRef{SHA256: hex.EncodeToString(h[:]), Bytes: int64(len(data))}
	s, prompt, err := jobkind.Prepare(s, data)
	if err != nil {
		t.Fatal(err)
	}
	res, err := jobkind.Execute(context.Background(), s, data, s.Input.SHA256, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	text := res.Text
	if edit != nil {
		text = edit(text)
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	ph, rh := minerproto.PromptHash(prompt, nil), sha256.Sum256([]byte(text))
	r := jobs.Receipt{JobID: make([]byte, jobs.IDLen), ChainID: "aitbc-devnet", Customer: make([]byte, 20), Model: model,
		PromptHash: ph[:], ResultHash: rh[:], TokensOut: uint64(res.Units), StartMs: 1, EndMs: 2, Price: coin.Amount(res.Units)}
	r.Sign(priv)
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return coordinator.AuditJob{JobID: hex.EncodeToString(r.JobID), Kind: "completion", Model: model, Prompt: prompt,
		MaxTokens: s.Units, Result: text, Receipt: b}, data
}

func dataJob(t *testing.T, edit func(string) string) (coordinator.AuditJob, []byte) {
	return kindJob(t, jobkind.Spec{Type: jobkind.TypeDataProcessing,
		Data: &dataproc.Spec{GroupBy: []string{"label"}, Aggregates: []dataproc.Aggregate{{Fn: "count"}}, Output: "csv"}},
		jobkind.ModelDataProcessing, edit)
}

func trainJob(t *testing.T, edit func(string) string) (coordinator.AuditJob, []byte) {
	p, err := train.Params{Kind: train.KindLogistic, Epochs: 5, Seed: 3}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	p.Workers = 0
	return kindJob(t, jobkind.Spec{Type: jobkind.TypeTraining, Train: &jobkind.TrainSpec{Label: "label", Params: p}},
		jobkind.ModelCustomClassifier, edit)
}

func TestReexecutePassesHonestDataAndTrainingJobs(t *testing.T) {
	for name, mk := range map[string]func(*testing.T, func(string) string) (coordinator.AuditJob, []byte){"data": dataJob, "training": trainJob} {
		j, input := mk(t, nil)
		if !audits.Reexecutable(j.Model) {
			t.Fatalf("%s: model %s is not re-executed on chain", name, j.Model)
		}
		// Another thread count than the miner's: the same bytes.
		v, err := audit.Reexecute(context.Background(), j, input, 3)
		want := sha256.Sum256([]byte(j.Result))
		if err != nil || !v.Pass || string(v.Evidence) != string(want[:]) {
			t.Fatalf("honest %s job: %+v %v", name, v, err)
		}
	}
}

func TestReexecuteFailsATamperedResultWithTheReason(t *testing.T) {
	// A report whose counts were changed, and a model file whose last
	// weight was: both signed by the miner as the job's result.
	dj, dIn := dataJob(t, func(s string) string { return strings.Replace(s, "x,", "x,1", 1) })
	tj, tIn := trainJob(t, func(s string) string { return s[:len(s)-2] + "1}" })
	for name, c := range map[string]struct {
		j     coordinator.AuditJob
		input []byte
	}{"data": {dj, dIn}, "training": {tj, tIn}} {
		v, err := audit.Reexecute(context.Background(), c.j, c.input, 1)
		if err != nil || v.Pass || !strings.Contains(v.Reason, "re-execution gives a result") || len(v.Evidence) != sha256.Size {
			t.Fatalf("tampered %s job: %+v %v", name, v, err)
		}
	}
	// Fewer work units claimed than the job does (or more): a fail too.
	j, input := dataJob(t, nil)
	r, _ := jobs.DecodeReceipt(j.Receipt)
	r.TokensOut++
	_, priv, _ := ed25519.GenerateKey(nil)
	r.Sign(priv)
	j.Receipt, _ = r.Encode()
	if v, err := audit.Reexecute(context.Background(), j, input, 1); err != nil || v.Pass || !strings.Contains(v.Reason, "work units") {
		t.Fatalf("false units: %+v %v", v, err)
	}
}

func TestReexecuteGivesNoVerdictOnTheCoordinatorsWrongData(t *testing.T) {
	j, input := dataJob(t, nil)
	other := append([]byte(nil), input...)
	other[len(other)-2] = 'z'
	if v, err := audit.Reexecute(context.Background(), j, other, 1); !errors.Is(err, audit.ErrWrongData) || v.Pass || v.Reason != "" {
		t.Fatalf("another input file: %+v %v", v, err)
	}
	j.Prompt += " "
	if _, err := audit.Reexecute(context.Background(), j, input, 1); !errors.Is(err, audit.ErrWrongData) {
		t.Fatalf("another prompt: %v", err)
	}
}

// kindSource serves kind jobs and their input files.
type kindSource struct {
	jobs   map[string]coordinator.AuditJob
	inputs map[string][]byte
}

func (s kindSource) AuditJob(_ context.Context, _ coordinator.AuditSigner, id string) (coordinator.AuditJob, error) {
	return s.jobs[id], nil
}

func (s kindSource) AuditInput(_ context.Context, _ coordinator.AuditSigner, id string) ([]byte, error) {
	return s.inputs[id], nil
}

func TestServiceReexecutesKindJobsInsteadOfTheEngineCheck(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	key := keystore.NewKey("verifier", priv)
	honest, cheat := strings.Repeat("0a", 16), strings.Repeat("0b", 16)
	hj, hin := dataJob(t, nil)
	cj, cin := trainJob(t, func(s string) string { return s[:len(s)-2] + "1}" })
	sent := map[string]audits.MsgReport{}
	submit := func(_ context.Context, msg tx.Msg) (string, error) {
		var m audits.MsgReport
		if err := msg.DecodeBody(&m); err != nil {
			t.Fatal(err)
		}
		sent[hex.EncodeToString(m.JobID)] = m
		return "tx", nil
	}
	check := func(context.Context, coordinator.AuditJob) (audit.Verdict, error) {
		t.Fatal("the engine's check ran on a kind job")
		return audit.Verdict{}, nil
	}
	n := &node{}
	hj, cj = n.settle(t, honest, address.Address{}, hj), n.settle(t, cheat, address.Address{}, cj)
	s, err := audit.New(audit.Config{Key: key, Node: *n, Submit: submit, Check: check,
		Source: kindSource{jobs: map[string]coordinator.AuditJob{honest: hj, cheat: cj}, inputs: map[string][]byte{honest: hin, cheat: cin}}})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := s.Once(context.Background()); err != nil || len(out) != 2 {
		t.Fatalf("pass: %+v %v", out, err)
	}
	if !sent[honest].Pass || sent[cheat].Pass || !strings.Contains(sent[cheat].Reason, "re-execution") {
		t.Fatalf("reports %+v", sent)
	}
}

// asStored turns an inline job into the form a miner whose coordinator
// keeps files signs: the result text is a reference naming the output's
// SHA-256 and size (jobkind.FileResult).
func asStored(t *testing.T, j coordinator.AuditJob) coordinator.AuditJob {
	t.Helper()
	spec, err := jobkind.ParseSpec(j.Prompt)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := jobkind.NewFileResult(j.Model, spec, []byte(j.Result))
	if err != nil {
		t.Fatal(err)
	}
	r, err := jobs.DecodeReceipt(j.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	rh := sha256.Sum256([]byte(ref))
	r.ResultHash = rh[:]
	_, priv, _ := ed25519.GenerateKey(nil)
	r.Sign(priv)
	if j.Receipt, err = r.Encode(); err != nil {
		t.Fatal(err)
	}
	j.Result = ref
	return j
}

// TestReexecuteChecksStoredResultFiles: a report or model file stored with
// the coordinator is signed as a reference; re-execution must give the
// file the reference names (evidence: the file's SHA-256), and a reference
// to a tampered file fails.
func TestReexecuteChecksStoredResultFiles(t *testing.T) {
	for name, mk := range map[string]func(*testing.T, func(string) string) (coordinator.AuditJob, []byte){"data": dataJob, "training": trainJob} {
		j, input := mk(t, nil)
		out := sha256.Sum256([]byte(j.Result))
		v, err := audit.Reexecute(context.Background(), asStored(t, j), input, 2)
		if err != nil || !v.Pass || string(v.Evidence) != string(out[:]) {
			t.Fatalf("honest stored %s job: %+v %v", name, v, err)
		}
	}
	dj, dIn := dataJob(t, func(s string) string { return strings.Replace(s, "x,", "x,1", 1) })
	if v, err := audit.Reexecute(context.Background(), asStored(t, dj), dIn, 1); err != nil || v.Pass || !strings.Contains(v.Reason, "re-execution gives a result") {
		t.Fatalf("tampered stored data job: %+v %v", v, err)
	}
}

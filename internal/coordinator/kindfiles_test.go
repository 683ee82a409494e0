package coordinator

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/dataproc"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/train"
)

// A classifier's model file and a data-processing report travel as a
// fine-tuned GGUF does: the miner stores the file with the coordinator
// for the customer, the result names its SHA-256 (so the receipt's result
// hash covers it), and the customer downloads exactly those bytes.
func TestClassifierModelAndReportAreStoredFilesNamedByTheResult(t *testing.T) {
	h := newHarness(t, releaseDelay, withFiles(t, 1<<20, 4<<20))
	h.fund(10 * coin.Unit)
	key, addr := newKey(t)
	models := []string{jobkind.ModelDataProcessing, jobkind.ModelCustomClassifier}
	h.chain.mu.Lock()
	h.chain.miners = append(h.chain.miners, ChainMiner{Address: addr, PubKey: hex.EncodeToString(key.Public().(ed25519.PublicKey)),
		Models: models, PricePer1k: coin.Unit, Stake: 100 * coin.Unit, Status: "active"})
	h.chain.mu.Unlock()
	h.s.refreshRegistry(h.ctx)
	m := &fakeMiner{h: h, key: key, addr: addr, price: coin.Unit}
	m.mc = &minerConn{addr: addr, pub: key.Public().(ed25519.PublicKey), models: models, slots: 1, backend: "fake", send: make(chan minerproto.Envelope, 64)}
	if err := h.s.admit(m.mc); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	c := NewClient(srv.URL, h.apiKey)
	files := &miner.HTTPFiles{Coordinator: srv.URL, Key: minerproto.KeySigner(m.key), Now: h.clock.Now}
	kr := miner.KindRunner{Files: files, Results: files}

	var csv strings.Builder
	csv.WriteString("x,y,label\n")
	for i := range 40 {
		fmt.Fprintf(&csv, "%d,%d,%s\n", i%7, i%5, []string{"a", "b"}[i%2])
	}
	params, err := train.Params{Epochs: 3}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		model string
		data  string
		spec  jobkind.Spec
		check func(file []byte)
	}{
		{jobkind.ModelDataProcessing, salesCSV,
			jobkind.Spec{Type: jobkind.TypeDataProcessing, Data: &dataproc.Spec{GroupBy: []string{"region"}, Aggregates: []dataproc.Aggregate{{Fn: "sum", Column: "units"}}, Output: "csv"}},
			func(file []byte) {
				if !strings.HasSuffix(string(file), "region,count,sum(units)\nnorth,2,17\nsouth,1,4\n") {
					t.Fatalf("report %q", file)
				}
			}},
		{jobkind.ModelCustomClassifier, csv.String(),
			jobkind.Spec{Type: jobkind.TypeTraining, Train: &jobkind.TrainSpec{Label: "label", Params: params}},
			func(file []byte) {
				if _, err := train.ReadModel(bytes.NewReader(file)); err != nil {
					t.Fatalf("model file: %v", err)
				}
			}},
	}
	for i, tc := range cases {
		path := filepath.Join(t.TempDir(), "input.csv")
		os.WriteFile(path, []byte(tc.data), 0o600)
		info, err := c.UploadFile(t.Context(), path, 0)
		if err != nil {
			t.Fatal(err)
		}
		tc.spec.Input = jobkind.FileRef{SHA256: info.Hash, Bytes: info.Size}
		spec, prompt, err := jobkind.Prepare(tc.spec, []byte(tc.data))
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.Submit(t.Context(), JobRequest{Model: tc.model, Prompt: prompt, MaxTokens: spec.Units})
		if err != nil {
			t.Fatal(err)
		}
		mj := m.nextJob()
		out, err := kr.Run(t.Context(), mj, func(string) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		res, ok := jobkind.ParseFileResult(out.Text)
		if !ok || res.Model != tc.model || out.TokensOut != spec.Units {
			t.Fatalf("%s: result %q", tc.model, out.Text)
		}
		m.finish(mj, out.Text, out.TokensOut)
		h.waitSent(jobs.TypeSettle, i+1)
		h.block()
		j := h.waitStatus(v.JobID, store.StatusSettled)
		rv, err := NewReceiptView(j.Receipt)
		if err != nil {
			t.Fatal(err)
		}
		if rh := sha256.Sum256([]byte(out.Text)); rv.ResultHash != hex.EncodeToString(rh[:]) {
			t.Fatalf("%s: receipt %+v", tc.model, rv)
		}
		var file bytes.Buffer
		if _, err := c.DownloadFile(t.Context(), res.SHA256, &file); err != nil {
			t.Fatal(err)
		}
		if err := res.CheckFile(file.Bytes()); err != nil {
			t.Fatal(err)
		}
		tc.check(file.Bytes())
	}
}

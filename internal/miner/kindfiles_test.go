package miner_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/dataproc"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// oneFile serves a single input file.
type oneFile []byte

func (f oneFile) Fetch(context.Context, string, string) ([]byte, error) { return f, nil }

// resultStore records what the miner stores, or answers err.
type resultStore struct {
	err    error
	stored map[string][]byte
}

func (s *resultStore) Upload(_ context.Context, _ string, data []byte) (string, error) {
	if s.err != nil {
		return "", s.err
	}
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	s.stored[h] = append([]byte(nil), data...)
	return h, nil
}

// A report goes to the coordinator's file store and the result names it;
// a coordinator that keeps no files gets the report inline, as before; a
// store that fails fails the job rather than dropping the file.
func TestKindRunnerStoresAReportAndFallsBackInline(t *testing.T) {
	input := []byte("region,units\nnorth,10\nsouth,4\nnorth,7\n")
	sum := sha256.Sum256(input)
	spec, prompt, err := jobkind.Prepare(jobkind.Spec{Type: jobkind.TypeDataProcessing, Input: jobkind.FileRef{SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(input))},
		Data: &dataproc.Spec{GroupBy: []string{"region"}, Aggregates: []dataproc.Aggregate{{Fn: "sum", Column: "units"}}, Output: "csv"}}, input)
	if err != nil {
		t.Fatal(err)
	}
	job := &minerproto.Job{ID: "j1", Model: jobkind.ModelDataProcessing, Prompt: prompt, MaxTokens: spec.Units}
	const groups = "region,count,sum(units)\nnorth,2,17\nsouth,1,4\n"

	store := &resultStore{stored: map[string][]byte{}}
	out, err := miner.KindRunner{Files: oneFile(input), Results: store}.Run(t.Context(), job, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, ok := jobkind.ParseFileResult(out.Text)
	if !ok || res.Format != "csv" || res.Model != jobkind.ModelDataProcessing {
		t.Fatalf("result %q", out.Text)
	}
	if file := store.stored[res.SHA256]; res.CheckFile(file) != nil || !strings.HasSuffix(string(file), groups) {
		t.Fatalf("stored %q for result %q", file, out.Text)
	}

	out, err = miner.KindRunner{Files: oneFile(input), Results: &resultStore{err: miner.ErrNoFileStore}}.Run(t.Context(), job, nil)
	if err != nil || !strings.HasSuffix(out.Text, groups) {
		t.Fatalf("no file store: %q %v", out.Text, err)
	}
	down := errors.New("connection refused")
	if _, err = (miner.KindRunner{Files: oneFile(input), Results: &resultStore{err: down}}).Run(t.Context(), job, nil); !errors.Is(err, down) {
		t.Fatalf("store down: %v", err)
	}
}

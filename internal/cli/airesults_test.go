package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/dataproc"
	"github.com/aitbc/aitbc/internal/jobkind"
)

// heldFiles is the tenant's files at the coordinator, by hash.
type heldFiles map[string][]byte

func (h heldFiles) DownloadFile(_ context.Context, hash string, w io.Writer) (int64, error) {
	b, ok := h[hash]
	if !ok {
		return 0, coordinator.ErrFileNotFound
	}
	n, err := w.Write(b)
	return int64(n), err
}

// TestAIResultsSavesAnImageJobsPNG: a result that names a stored PNG is
// saved as <id>.png from the coordinator's file store, checked against
// the hash the signed result names; an inline PNG is saved the same way;
// a stored file that is not the named PNG is refused.
func TestAIResultsSavesAnImageJobsPNG(t *testing.T) {
	spec, _, err := jobkind.PrepareImage("sd-turbo", "a cat", "64x64")
	if err != nil {
		t.Fatal(err)
	}
	png := []byte("\\x89PNG\\r\\n\\x1a\\n a stored picture")
	sum := sha256.Sum256(png)
	hash := hex.EncodeToString(sum[:])
	stored, _ := jobkind.NewStoredImageResult(spec, hash, len(png))
	inline, _ := jobkind.NewImageResult(spec, png)
	for name, c := range map[string]struct {
		result string
		files  heldFiles
		ok     bool
	}{
		"stored":          {stored, heldFiles{hash: png}, true},
		"inline":          {inline, nil, true},
		"stored, changed": {stored, heldFiles{hash: []byte("something else")}, false},
		"stored, missing": {stored, heldFiles{}, false},
	} {
		dir := t.TempDir()
		var out bytes.Buffer
		g := &Globals{stdout: &out, stderr: io.Discard}
		text := c.result
		err := saveResult(context.Background(), g, c.files, coordinator.JobView{JobID: "j1", Status: "settled", Model: "image:sd-turbo", Result: &text}, dir)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !c.ok {
			continue
		}
		got, err := os.ReadFile(filepath.Join(dir, "j1.png"))
		if err != nil || !bytes.Equal(got, png) || !strings.Contains(out.String(), "PNG sha256 "+hash) {
			t.Errorf("%s: saved %q (%v), printed %q", name, got, err, out.String())
		}
	}
}

// TestAIResultsSavesAStoredReportOrModelFile: a data-processing or
// classifier result that names a stored file is saved under the kind's
// name from the coordinator's file store, checked against the named hash;
// an inline report (older miners, coordinators without files) is saved as
// it is; a stored file that is not the named one is refused.
func TestAIResultsSavesAStoredReportOrModelFile(t *testing.T) {
	report := []byte("region,count,sum(units)\nnorth,2,17\n")
	sum := sha256.Sum256(report)
	hash := hex.EncodeToString(sum[:])
	csvSpec := jobkind.Spec{Data: &dataproc.Spec{Output: "csv"}}
	storedReport, err := jobkind.NewFileResult(jobkind.ModelDataProcessing, csvSpec, report)
	if err != nil {
		t.Fatal(err)
	}
	modelFile := []byte(`{"kind":"logistic"}`)
	msum := sha256.Sum256(modelFile)
	storedModel, _ := jobkind.NewFileResult(jobkind.ModelCustomClassifier, jobkind.Spec{}, modelFile)
	for name, c := range map[string]struct {
		model, result string
		files         heldFiles
		file          string
		want          []byte
	}{
		"stored report":  {jobkind.ModelDataProcessing, storedReport, heldFiles{hash: report}, "j1.report.csv", report},
		"inline report":  {jobkind.ModelDataProcessing, string(report), nil, "j1.report.csv", report},
		"stored model":   {jobkind.ModelCustomClassifier, storedModel, heldFiles{hex.EncodeToString(msum[:]): modelFile}, "j1.model.json", modelFile},
		"stored changed": {jobkind.ModelDataProcessing, storedReport, heldFiles{hash: []byte("north,1,1\n")}, "", nil},
		"stored missing": {jobkind.ModelDataProcessing, storedReport, heldFiles{}, "", nil},
	} {
		dir := t.TempDir()
		var out bytes.Buffer
		g := &Globals{stdout: &out, stderr: io.Discard}
		text := c.result
		err := saveResult(context.Background(), g, c.files, coordinator.JobView{JobID: "j1", Status: "settled", Model: c.model, Result: &text}, dir)
		if (err == nil) != (c.want != nil) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if c.want == nil {
			continue
		}
		got, err := os.ReadFile(filepath.Join(dir, c.file))
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s: saved %q (%v), printed %q", name, got, err, out.String())
		}
	}
}

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

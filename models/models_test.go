package models_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/aitbc/aitbc/models"
)

// TestEmbeddedFiles checks the embedded files against the digests the
// model's README records.
func TestEmbeddedFiles(t *testing.T) {
	for _, c := range []struct {
		name string
		data []byte
		sha  string
	}{
		{"model.bin", models.TolstoyModel, "6ded9d39aaace09738edd0970e19f26ad5dcb464944a4ff3d7721d0f78270d2f"},
		{"tokenizer.bin", models.TolstoyTokenizer, "66ef2d066b6489a16aa49909426130e16e02db71e3a12e7c75e7fa20c79a3b9a"},
	} {
		sum := sha256.Sum256(c.data)
		if got := hex.EncodeToString(sum[:]); got != c.sha {
			t.Errorf("%s: sha256 %s, want %s", c.name, got, c.sha)
		}
	}
	if len(models.TolstoyREADME) == 0 {
		t.Error("README is empty")
	}
}

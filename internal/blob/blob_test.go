package blob_test

import (
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/blob"
	"github.com/aitbc/aitbc/internal/blob/blobtest"
)

// TestFSContract runs the blob.Store contract on a directory (the
// PostgreSQL store runs the same tests in package store).
func TestFSContract(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) func(time.Duration, func() time.Time) blob.Store {
		dir := t.TempDir()
		return func(retention time.Duration, now func() time.Time) blob.Store {
			s, err := blob.NewFS(dir, retention, now)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}

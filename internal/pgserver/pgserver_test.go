package pgserver_test

import (
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/pgserver"
)

func TestSplitURL(t *testing.T) {
	base, db, err := pgserver.SplitURL("postgres://bench:pw@db.example:5432/aitbc")
	if err != nil || base != "postgres://bench:pw@db.example:5432/" || db != "aitbc" {
		t.Fatalf("got %q %q %v", base, db, err)
	}
	for _, bad := range []string{
		"postgres://u:secret@h:5432/db?sslmode=disable", // the database could not be swapped by appending a name
		"/var/lib/aitbc/coordinator.db",
		"mysql://u@h/db",
		"postgres://",
	} {
		if _, _, err := pgserver.SplitURL(bad); err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

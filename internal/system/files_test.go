package system

import "testing"

// A coordinator on a shared PostgreSQL store once kept its job files in a
// directory named after the store's URL (database and password included),
// relative to its working directory. Files go beside an SQLite store, in a
// directory given, or nowhere.
func TestCoordinatorFilesDirectory(t *testing.T) {
	for _, c := range []struct {
		store, dir, want string
	}{
		{"/var/lib/aitbc/coordinator/coordinator.db", "", "/var/lib/aitbc/coordinator/coordinator.db.files"},
		{"/var/lib/aitbc/coordinator/coordinator.db", "/srv/files", "/srv/files"},
		{"/var/lib/aitbc/coordinator/coordinator.db", "off", ""},
		{"postgres://aitbc:secret@db:5432/aitbc", "", ""},
		{"postgres://aitbc:secret@db:5432/aitbc", "/mnt/shared/files", "/mnt/shared/files"},
		{":memory:", "", ""},
	} {
		if got := filesDir(CoordinatorConfig{Store: c.store, FilesDir: c.dir}); got != c.want {
			t.Errorf("store %q, files dir %q: %q, want %q", c.store, c.dir, got, c.want)
		}
	}
}

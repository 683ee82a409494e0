package testnet

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPortReservationsHoldAcrossProcesses: a port claimed once is refused
// to the next claimant (another test process) until its marker is older
// than portHold; a stale claim is taken over once.
func TestPortReservationsHoldAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	if !reservePortIn(dir, 24001) {
		t.Fatal("first claim refused")
	}
	if reservePortIn(dir, 24001) {
		t.Fatal("a port claimed moments ago was claimed again")
	}
	if !reservePortIn(dir, 24002) {
		t.Fatal("another port refused")
	}
	old := time.Now().Add(-portHold - time.Minute)
	if err := os.Chtimes(filepath.Join(dir, "24001"), old, old); err != nil {
		t.Fatal(err)
	}
	if !reservePortIn(dir, 24001) {
		t.Fatal("a stale claim was not taken over")
	}
	if reservePortIn(dir, 24001) {
		t.Fatal("the taken-over claim was claimed again")
	}
}

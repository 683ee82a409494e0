package walletd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/walletd"
)

// TestPasswordGrace: with a grace set, a password given to sign keeps the
// wallet unlocked for that long (the seeds' flows sign without one after
// send --password); without one nothing stays unlocked; the grace never
// shortens an explicit unlock; it expires by itself.
func TestPasswordGrace(t *testing.T) {
	e := newEnv(t)
	_, to := funded(t, e)
	ctx := context.Background()
	// Off by default: a password unlocks for its own call only.
	if _, err := e.svc.Send(ctx, "from", "pw", to, 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Send(ctx, "from", "", to, 1, 0); !errors.Is(err, walletd.ErrLocked) {
		t.Fatalf("without a grace: %v", err)
	}
	e.svc.SetPasswordGrace(time.Hour)
	if _, err := e.svc.Send(ctx, "from", "wrong", to, 1, 0); err == nil {
		t.Fatal("a wrong password signed")
	}
	if w, _ := e.svc.Get(ctx, "from"); w.Unlocked {
		t.Fatal("a wrong password unlocked the wallet")
	}
	if _, err := e.svc.Send(ctx, "from", "pw", to, 1, 0); err != nil {
		t.Fatal(err)
	}
	w, _ := e.svc.Get(ctx, "from")
	if !w.Unlocked || w.UnlockedUntil == nil || !w.UnlockedUntil.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("after a send with its password: %+v", w)
	}
	if _, err := e.svc.Send(ctx, "from", "", to, 1, 0); err != nil {
		t.Fatalf("signing in the grace: %v", err)
	}
	// An explicit unlock for a day is not shortened by a later password.
	if _, err := e.svc.Unlock(ctx, "from", "pw", 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Send(ctx, "from", "pw", to, 1, 0); err != nil {
		t.Fatal(err)
	}
	if w, _ := e.svc.Get(ctx, "from"); !w.UnlockedUntil.Equal(e.clock.Now().Add(24 * time.Hour)) {
		t.Fatalf("the grace shortened an unlock: %+v", w)
	}
	// Creating a wallet with its password starts a grace too; it ends by
	// itself.
	_, _ = e.svc.Lock(ctx, "from")
	e.svc.SetPasswordGrace(30 * time.Millisecond)
	if _, err := e.svc.Create(ctx, "fresh", "pw2"); err != nil {
		t.Fatal(err)
	}
	if w, _ := e.svc.Get(ctx, "fresh"); !w.Unlocked {
		t.Fatal("a new wallet is not in its grace")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.clock.Add(time.Second)
		if w, _ := e.svc.Get(ctx, "fresh"); !w.Unlocked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the grace never ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Setenv(walletd.EnvPasswordGrace, "off")
	if d := walletd.PasswordGraceFromEnv(time.Minute); d != 0 {
		t.Fatalf("off: %v", d)
	}
	t.Setenv(walletd.EnvPasswordGrace, "90s")
	if d := walletd.PasswordGraceFromEnv(time.Minute); d != 90*time.Second {
		t.Fatalf("90s: %v", d)
	}
}

//go:build linux

package cli

import (
	"context"
	"runtime"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// A password typed at the terminal is read without echo, and the
// terminal echoes again afterwards, also when the prompt is interrupted.
func TestReadSecretTurnsEchoOffAndBackOn(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if !isTerminal(tty) {
		t.Fatal("a pty is not a terminal")
	}
	before, err := term.GetState(int(tty.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = ptmx.Write([]byte("s3cret pw\n")) }()
	got, err := readSecret(context.Background(), tty)
	if err != nil || got != "s3cret pw" {
		t.Fatalf("read %q, %v", got, err)
	}
	after, _ := term.GetState(int(tty.Fd()))
	if *after != *before {
		t.Fatal("terminal state not restored after the password")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := readSecret(ctx, tty); done <- err }()
	for { // interrupt once the prompt has turned echo off
		st, _ := term.GetState(int(tty.Fd()))
		if *st != *before {
			break
		}
		runtime.Gosched()
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("interrupted read: %v", err)
	}
	after, _ = term.GetState(int(tty.Fd()))
	if *after != *before {
		t.Fatal("terminal state not restored after an interrupted prompt")
	}
	_, _ = ptmx.Write([]byte("\n")) // let the abandoned read return
}

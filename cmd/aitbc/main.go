// Command aitbc is the single AITBC binary: chain node, devnet, wallet
// daemon, coordinator, miner and CLI. Invoked as aitbc-cli (the name the
// seed documents use) it behaves the same.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/aitbc/aitbc/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first Ctrl-C or SIGTERM stops the running services cleanly; from
	// then on the signals have their default effect, so a second one ends
	// a shutdown that hangs.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := cli.Execute(ctx, filepath.Base(os.Args[0]), os.Args[1:])
	stop()
	os.Exit(code)
}

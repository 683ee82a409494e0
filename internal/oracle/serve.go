package oracle

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/httpx"
)

// Serve answers the API on ln and commits finished epochs every
// commitEvery until ctx ends; then it shuts the server down and returns
// once both have stopped.
func (o *Oracle) Serve(ctx context.Context, ln net.Listener, limits httpx.Limits, commitEvery time.Duration) error {
	srv := httpx.NewServer(o.Handler(), limits, nil)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		o.RunCommitter(ctx, commitEvery)
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(httpx.LimitListener(ln, limits.WithDefaults(), nil)) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

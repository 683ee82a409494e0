package walletd

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/keystore"
)

// Password guessing is made slow to aim and cheap to serve: every
// password check (unlock, signing with a password, backup) runs scrypt,
// which costs 128 MiB and a third of a second at the default parameters, so
//
//   - at most KDFConcurrency checks run at once, and at most KDFQueue
//     more wait for a slot (ErrBusy, 503, past that): memory stays within
//     KDFConcurrency × the keystore's scrypt memory however many clients
//     try at once;
//   - after FreeAttempts wrong passwords in a row, a wallet refuses
//     password checks for a delay that doubles with each further wrong
//     one, up to MaxBackoff (ErrTooManyAttempts, 429 with Retry-After).
//     A right password resets it. The backoff is per wallet, not per
//     client, so spreading guesses over addresses does not help.
const (
	DefaultKDFConcurrency = 2
	DefaultKDFQueue       = 16
	DefaultKDFWait        = 10 * time.Second
	DefaultFreeAttempts   = 3
	DefaultBackoffBase    = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
)

var (
	// ErrTooManyAttempts: the wallet is backing off after wrong passwords.
	ErrTooManyAttempts = errors.New("walletd: too many wrong passwords")
	// ErrBusy: too many password checks are running or waiting.
	ErrBusy = errors.New("walletd: too many password checks in progress")
)

// RetryError is an error that tells when to try again (Retry-After).
type RetryError struct {
	err   error
	Wait  time.Duration
	Until time.Time
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("%v: retry in %v", e.err, e.Wait.Round(time.Second))
}

func (e *RetryError) Unwrap() error { return e.err }

// RetryAfter is how long to wait before trying again.
func (e *RetryError) RetryAfter() time.Duration { return e.Wait }

// GuardConfig configures the password checks (zero fields: the defaults).
type GuardConfig struct {
	KDFConcurrency int
	KDFQueue       int
	KDFWait        time.Duration
	FreeAttempts   int
	BackoffBase    time.Duration
	MaxBackoff     time.Duration
}

func (c GuardConfig) withDefaults() GuardConfig {
	if c.KDFConcurrency <= 0 {
		c.KDFConcurrency = DefaultKDFConcurrency
	}
	if c.KDFQueue <= 0 {
		c.KDFQueue = DefaultKDFQueue
	}
	if c.KDFWait <= 0 {
		c.KDFWait = DefaultKDFWait
	}
	if c.FreeAttempts <= 0 {
		c.FreeAttempts = DefaultFreeAttempts
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	return c
}

// passwordGuard bounds and paces password checks.
type passwordGuard struct {
	cfg   GuardConfig
	now   func() time.Time
	slots chan struct{}

	mu      sync.Mutex
	waiting int
	fails   map[string]*failures // wallet name → its run of wrong passwords
}

type failures struct {
	n     int
	until time.Time
}

func newPasswordGuard(cfg GuardConfig, now func() time.Time) *passwordGuard {
	cfg = cfg.withDefaults()
	return &passwordGuard{cfg: cfg, now: now, slots: make(chan struct{}, cfg.KDFConcurrency), fails: map[string]*failures{}}
}

// check runs f (a password check of wallet name that returns
// keystore.ErrWrongPassword for a wrong one) within the guard's limits.
func (g *passwordGuard) check(name string, f func() error) error { return g.run(name, false, f) }

// run is check; trusted skips the wallet's backoff and leaves its count
// alone (an in-process service that holds the password).
func (g *passwordGuard) run(name string, trusted bool, f func() error) error {
	g.mu.Lock()
	if fl := g.fails[name]; !trusted && fl != nil && g.now().Before(fl.until) {
		wait := fl.until.Sub(g.now())
		g.mu.Unlock()
		return &RetryError{err: fmt.Errorf("%w for wallet %q", ErrTooManyAttempts, name), Wait: wait, Until: fl.until}
	}
	if len(g.slots) == cap(g.slots) && g.waiting >= g.cfg.KDFQueue {
		g.mu.Unlock()
		return &RetryError{err: ErrBusy, Wait: time.Second}
	}
	g.waiting++
	g.mu.Unlock()

	timer := time.NewTimer(g.cfg.KDFWait)
	defer timer.Stop()
	select {
	case g.slots <- struct{}{}:
	case <-timer.C:
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
		return &RetryError{err: ErrBusy, Wait: time.Second}
	}
	g.mu.Lock()
	g.waiting--
	g.mu.Unlock()
	err := f()
	<-g.slots

	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case trusted:
	case errors.Is(err, keystore.ErrWrongPassword):
		fl := g.fails[name]
		if fl == nil {
			fl = &failures{}
			g.fails[name] = fl
		}
		fl.n++
		if over := fl.n - g.cfg.FreeAttempts; over > 0 {
			d := g.cfg.MaxBackoff
			if over < 30 {
				d = min(g.cfg.BackoffBase<<(over-1), g.cfg.MaxBackoff)
			}
			fl.until = g.now().Add(d)
		}
	case err == nil:
		delete(g.fails, name)
	}
	return err
}

package walletd_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/walletd"
)

// Finding 6: wrong passwords back a wallet off (429 too_many_attempts
// with Retry-After) after a few free tries, doubling; the right password
// during the backoff is refused too (the guesser cannot tell), and works
// after it, resetting the count. Other wallets are not affected.
func TestWrongPasswordsBackOff(t *testing.T) {
	e := newEnv(t)
	e.mustCreate("w", "pw")
	e.mustCreate("x", "pw")
	for i := 0; i < walletd.DefaultFreeAttempts; i++ {
		e.want(e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"guess"}`), 403, "wrong_password")
	}
	// The wrong password that exhausts the free tries is still checked;
	// from then on the wallet backs off.
	e.want(e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"guess"}`), 403, "wrong_password")
	r := e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"pw"}`)
	e.want(r, 429, "too_many_attempts")
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Fatalf("Retry-After %q, want 1", got)
	}
	e.want(e.call("POST", "/api/v1/wallets/w/backup", `{"password":"pw"}`), 429, "too_many_attempts")
	e.want(e.call("POST", "/api/v1/wallets/w/send", `{"to":"`+e.mustAddr("x")+`","amount":"1","password":"pw"}`), 429, "too_many_attempts")
	e.want(e.call("POST", "/api/v1/wallets/x/unlock", `{"password":"pw"}`), 200, "")

	// The next wrong one doubles the wait.
	e.clock.Add(time.Second)
	e.want(e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"guess"}`), 403, "wrong_password")
	r = e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"pw"}`)
	e.want(r, 429, "too_many_attempts")
	if got := r.header.Get("Retry-After"); got != "2" {
		t.Fatalf("Retry-After %q after the fifth wrong password, want 2", got)
	}
	e.clock.Add(2 * time.Second)
	e.want(e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"pw"}`), 200, "")
	// Reset: the free tries are back.
	e.want(e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"guess"}`), 403, "wrong_password")
	e.want(e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"pw"}`), 200, "")
}

// Finding 7: an unlock timeout that rounds to zero is refused, not turned
// into the 15-minute default; an oversized body is 413.
func TestTinyUnlockTimeoutAndOversizedBody(t *testing.T) {
	e := newEnv(t)
	e.mustCreate("w", "pw")
	for _, bad := range []string{`1e-10`, `0.5`, `"1ns"`, `"999ms"`} {
		e.want(e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"pw","timeout":`+bad+`}`), 400, "invalid_timeout")
	}
	e.want(e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"pw","timeout":1}`), 200, "")
	big := `{"password":"` + strings.Repeat("a", 2<<20) + `"}`
	e.want(e.call("POST", "/api/v1/wallets/w/unlock", big), 413, "body_too_large")
}

// mustAddr is a wallet's address through the API.
func (e *env) mustAddr(name string) string {
	e.t.Helper()
	r := e.call("GET", "/api/v1/wallets/"+name, "")
	e.want(r, 200, "")
	return r.str("address")
}

// Finding 6: outside the devnet a daemon refuses short passwords for new
// wallets (400 password_too_weak); existing wallets still open.
func TestMinimumPasswordLength(t *testing.T) {
	e := newEnv(t, func(c *walletd.Config) { c.MinPasswordLength = walletd.DefaultMinPasswordLength })
	e.want(e.call("POST", "/api/v1/wallets", `{"name":"w","password":"123"}`), 400, "password_too_weak")
	e.want(e.call("POST", "/api/v1/wallets", `{"name":"w","password":"correct horse"}`), 201, "")
	e.want(e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"correct horse"}`), 200, "")
	e.want(e.call("POST", "/api/v1/wallets", `{"name":"x","password":""}`), 400, "password_required")
}

// Someone guessing a service wallet's password (the coordinator's) backs
// that wallet off for callers of the API, but not for the service itself,
// which holds the password: its transactions keep flowing.
func TestGuessingDoesNotStopAServiceWallet(t *testing.T) {
	e := newEnv(t)
	from, _ := address.Parse(e.mustCreate("coord", "pw"))
	to, _ := address.Parse(e.mustCreate("x", "pw"))
	e.node.Fund(from, 10*coin.Unit)
	for i := 0; i <= walletd.DefaultFreeAttempts; i++ {
		e.want(e.call("POST", "/api/v1/wallets/coord/unlock", `{"password":"guess"}`), 403, "wrong_password")
	}
	e.want(e.call("POST", "/api/v1/wallets/coord/unlock", `{"password":"pw"}`), 429, "too_many_attempts")
	sender := walletd.WalletSender{S: e.svc, Name: "coord", Password: "pw"}
	if _, err := sender.Send(context.Background(), bank.NewSendMsg(to, coin.Unit)); err != nil {
		t.Fatalf("the service's own send during the backoff: %v", err)
	}
}

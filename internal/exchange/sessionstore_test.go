package exchange_test

import (
	"context"
	"database/sql"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/exchange"
)

// restartWith replaces e's server with a new one over the same chain and
// wallets, keeping sessions in the file at path: an exchange restarted.
func (e *env) restartWith(path string) {
	e.t.Helper()
	e.srv.Close()
	st, err := exchange.OpenSessionStore(context.Background(), path)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	s, err := exchange.NewServer(exchange.Config{Node: e.c, Wallets: e.w, Poll: time.Hour, AuthRate: 1000, Now: func() time.Time { return e.now },
		Sessions: st})
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv = httptest.NewServer(s.Handler())
	e.t.Cleanup(e.srv.Close)
}

// TestSessionsSurviveARestart: a wallet signed in before the exchange
// restarts is still signed in after it, with the expiry it was given; a
// wallet that signed out stays signed out; a session past its 24 h is
// refused after a restart too and leaves the file; the file holds no
// token.
func TestSessionsSurviveARestart(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "exchange", "sessions.db")
	e.restartWith(path)
	a := e.newWallet("alice", 0, 0)
	b := e.newWallet("bob", 0, 0)
	sa, sb := e.signIn("alice"), e.signIn("bob")
	e.now = e.now.Add(time.Hour)
	late := e.signIn("alice") // a second session of alice, an hour younger
	if st := e.call("POST", "/api/exchange/auth/logout", sb.Token, nil, nil); st != 200 {
		t.Fatalf("bob's logout: %d", st)
	}

	e.restartWith(path)
	var got exchange.Session
	if st := e.call("GET", "/api/exchange/auth/session", sa.Token, nil, &got); st != 200 || got.Address != a || !got.Expires.Equal(sa.Expires) {
		t.Fatalf("alice after a restart: %d %+v (signed in with %+v)", st, got, sa)
	}
	var ae apiErr
	if st := e.call("GET", "/api/exchange/auth/session", sb.Token, nil, &ae); st != 401 || ae.Error.Code != "sign_in_required" {
		t.Fatalf("bob signed out, after a restart: %d %+v (address %s)", st, ae, b)
	}
	if st := e.call("GET", "/api/exchange/orders", sa.Token, nil, nil); st != 200 {
		t.Fatalf("alice's orders after a restart: %d", st)
	}

	// 24 h after the first sign-in: the first session is over, the later
	// one has an hour left, across another restart.
	e.now = e.now.Add(23*time.Hour + time.Second)
	e.restartWith(path)
	if st := e.call("GET", "/api/exchange/auth/session", sa.Token, nil, &ae); st != 401 {
		t.Fatalf("an expired session after a restart: %d", st)
	}
	if st := e.call("GET", "/api/exchange/auth/session", late.Token, nil, &got); st != 200 || !got.Expires.Equal(late.Expires) {
		t.Fatalf("the later session: %d %+v", st, got)
	}

	// The file has one row (the later session), and no token in it.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{sa.Token, sb.Token, late.Token} {
		if strings.Contains(string(raw), tok) {
			t.Fatal("a session token is stored in the clear")
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("session file mode: %v %v", fi.Mode(), err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sessions`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d sessions kept (%v), want 1", n, err)
	}
}

package web

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/coordinator"
)

// SignInDomain prefixes what a wallet signs to sign in to the pages; the
// wallet daemon signs in it (walletd.MessageDomain), and nothing signed
// in it can pass for a transaction or a tenant registration.
const SignInDomain = "AITBC/web-signin/v1\x00"

// Cookie names.
const (
	sessionCookie = "aitbc_session"
	preCookie     = "aitbc_signin" // a visitor's pending challenge
)

// challengeTTL is how long a sign-in form stays good.
const challengeTTL = 10 * time.Minute

// session is one signed-in wallet. Its id is the cookie; the tenant key
// (the coordinator's API key for the wallet's address) stays on the
// server.
type session struct {
	ID      string
	Wallet  string
	Address address.Address
	Created time.Time
	Expires time.Time
	CSRF    string

	tenantKey string // "" when no coordinator, or its registration failed
	tenantErr string // why there is no tenant key
}

// challenge is a pending sign-in: the nonce the wallet must sign and the
// form's token.
type challenge struct {
	Nonce   string
	Token   string
	Expires time.Time
}

type sessions struct {
	ttl time.Duration
	now func() time.Time

	mu         sync.Mutex
	byID       map[string]*session
	challenges map[string]*challenge // by pre-cookie
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, byID: map[string]*session{}, challenges: map[string]*challenge{}}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b)
}

// from returns the request's live session, or nil.
func (ss *sessions) from(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[c.Value]
	if s == nil {
		return nil
	}
	if !ss.now().Before(s.Expires) {
		delete(ss.byID, s.ID)
		return nil
	}
	return s
}

// challengeFor returns the visitor's pending challenge, making one (and
// its cookie) when there is none or it expired.
func (ss *sessions) challengeFor(w http.ResponseWriter, r *http.Request) *challenge {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if c, err := r.Cookie(preCookie); err == nil {
		if ch := ss.challenges[c.Value]; ch != nil && now.Before(ch.Expires) {
			return ch
		}
	}
	id := randomHex(32)
	ch := &challenge{Nonce: randomHex(32), Token: randomHex(32), Expires: now.Add(challengeTTL)}
	ss.challenges[id] = ch
	http.SetCookie(w, &http.Cookie{Name: preCookie, Value: id, Path: "/signin", MaxAge: int(challengeTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	return ch
}

// takeChallenge removes and returns the visitor's challenge if token is
// its form token: a challenge is signed at most once.
func (ss *sessions) takeChallenge(r *http.Request, token string) *challenge {
	c, err := r.Cookie(preCookie)
	if err != nil {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ch := ss.challenges[c.Value]
	if ch == nil || !ss.now().Before(ch.Expires) || subtle.ConstantTimeCompare([]byte(ch.Token), []byte(token)) != 1 {
		return nil
	}
	delete(ss.challenges, c.Value)
	return ch
}

func (ss *sessions) create(w http.ResponseWriter, r *http.Request, s *session) {
	now := ss.now()
	s.ID, s.CSRF, s.Created, s.Expires = randomHex(32), randomHex(32), now, now.Add(ss.ttl)
	ss.mu.Lock()
	ss.byID[s.ID] = s
	ss.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.ID, Path: "/", MaxAge: int(ss.ttl / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.SetCookie(w, &http.Cookie{Name: preCookie, Value: "", Path: "/signin", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func (ss *sessions) end(w http.ResponseWriter, s *session) {
	ss.mu.Lock()
	delete(ss.byID, s.ID)
	ss.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// sweep forgets expired sessions and challenges.
func (ss *sessions) sweep() {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, s := range ss.byID {
		if !now.Before(s.Expires) {
			delete(ss.byID, id)
		}
	}
	for id, c := range ss.challenges {
		if !now.Before(c.Expires) {
			delete(ss.challenges, id)
		}
	}
}

// signed returns the request's session if the form carries its token:
// every form that acts for a wallet goes through here.
func (s *Server) signed(r *http.Request) (*session, error) {
	sess := s.sessions.from(r)
	if sess == nil {
		return nil, errf(ErrSignInRequired, "sign in with your wallet first")
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.CSRF)) != 1 {
		return nil, errf(ErrCrossSite, "the form's token does not match your session: reload the page and try again")
	}
	return sess, nil
}

// signInPayload is what the wallet signs: the server's one-time nonce
// bound to the host the visitor sees, so a signature made for one site
// is worthless on another.
func signInPayload(host, nonce string) []byte {
	return []byte("AITBC web sign-in\nhost: " + host + "\nnonce: " + nonce)
}

type signinData struct {
	Token   string
	Wallet  string
	Error   string
	Next    string
	Enabled bool
}

func (s *Server) signinPage(w http.ResponseWriter, r *http.Request) error {
	d := signinData{Enabled: s.cfg.Wallets != nil, Next: safeNext(r.URL.Query().Get("next"))}
	if d.Enabled {
		d.Token = s.sessions.challengeFor(w, r).Token
	}
	return s.page(w, r, http.StatusOK, "signin.html", "Sign in", "", d)
}

// safeNext keeps a post-sign-in destination on this site.
func safeNext(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/marketplace"
	}
	return p
}

func (s *Server) signinSubmit(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Wallets == nil {
		return errf(ErrNotFound, "sign-in is not offered here: this server has no wallet daemon")
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	ch := s.sessions.takeChallenge(r, r.PostFormValue("csrf"))
	if ch == nil {
		return errf(ErrCrossSite, "the sign-in form expired or was not sent from this site: reload it and try again")
	}
	name, password := strings.TrimSpace(r.PostFormValue("wallet")), r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	retry := func(msg string) error {
		d := signinData{Enabled: true, Token: s.sessions.challengeFor(w, r).Token, Wallet: name, Error: msg, Next: next}
		return s.page(w, r, http.StatusUnauthorized, "signin.html", "Sign in", "", d)
	}
	if name == "" || password == "" {
		return retry("Give the wallet's name and its password.")
	}
	sess, err := s.signIn(r.Context(), r.Host, ch.Nonce, name, password)
	if err != nil {
		_, _, msg := classify(err)
		return retry("Sign-in failed: " + msg)
	}
	s.sessions.create(w, r, sess)
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// signIn has the wallet daemon sign the challenge with name's key and
// checks the signature against the key the address derives from. With a
// coordinator it also registers the address as a tenant there (the same
// password, another signing domain), so that the pages can submit jobs
// for this wallet only.
func (s *Server) signIn(ctx context.Context, host, nonce, name, password string) (*session, error) {
	payload := signInPayload(host, nonce)
	sig, err := s.cfg.Wallets.SignMessage(ctx, name, password, SignInDomain, payload)
	if err != nil {
		return nil, err
	}
	pub, err1 := hex.DecodeString(sig.PubKey)
	raw, err2 := hex.DecodeString(sig.Signature)
	digest := sha256.Sum256(append([]byte(SignInDomain), payload...))
	if err1 != nil || err2 != nil || len(pub) != ed25519.PublicKeySize || address.FromPubKey(pub) != sig.Address ||
		!ed25519.Verify(pub, digest[:], raw) {
		return nil, errf(ErrSignInFailed, "the wallet's signature does not verify")
	}
	sess := &session{Wallet: name, Address: sig.Address}
	if s.cfg.Coordinator == nil {
		sess.tenantErr = "this server has no coordinator"
		return sess, nil
	}
	key, err := s.registerTenant(ctx, name, password, sig.Address, pub)
	if err != nil {
		_, _, msg := classify(err)
		sess.tenantErr = "the coordinator did not register this wallet: " + msg
	}
	sess.tenantKey = key
	return sess, nil
}

func (s *Server) registerTenant(ctx context.Context, name, password string, addr address.Address, pub []byte) (string, error) {
	h, err := s.cfg.Coordinator.Health(ctx)
	if err != nil {
		return "", err
	}
	coord, err := address.Parse(h.Coordinator)
	if err != nil {
		return "", fmt.Errorf("coordinator address: %w", err)
	}
	ts := s.cfg.Now().Unix()
	sig, err := s.cfg.Wallets.SignMessage(ctx, name, password, coordinator.TenantDomain, coordinator.TenantPayload(coord, addr, ts, name))
	if err != nil {
		return "", err
	}
	return s.cfg.Coordinator.Register(ctx, coordinator.RegisterRequest{Name: name, Address: addr, PubKey: hex.EncodeToString(pub),
		Timestamp: ts, Signature: sig.Signature})
}

func (s *Server) signout(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.signed(r)
	if err != nil {
		return err
	}
	s.sessions.end(w, sess)
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

package exchange

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/address"
)

// SignInDomain is the domain the wallet signs a challenge in: the web
// pages' sign-in domain (walletd.MessageDomain allows it), with a payload
// that names the exchange, the host and the address, so a signature for
// the pages or for another host is worthless here.
const SignInDomain = "AITBC/web-signin/v1\x00"

// Session and challenge lifetimes and bounds.
const (
	SessionTTL    = 24 * time.Hour // seed 002: "wallet address login, 24h expiry"
	challengeTTL  = 5 * time.Minute
	maxChallenges = 10_000
	maxSessions   = 100_000
)

// SignInPayload is what the wallet signs to sign in.
func SignInPayload(host string, a address.Address, nonce string) []byte {
	return []byte("AITBC exchange sign-in\nhost: " + host + "\naddress: " + a.String() + "\nnonce: " + nonce)
}

// Challenge is a pending sign-in.
type Challenge struct {
	ID      string          `json:"challenge_id"`
	Address address.Address `json:"address"`
	Domain  string          `json:"domain"`  // without the trailing NUL
	Payload string          `json:"payload"` // the text to sign
	Expires time.Time       `json:"expires"`
}

// Session is a signed-in wallet address.
type Session struct {
	Token   string          `json:"token"`
	Address address.Address `json:"address"`
	Expires time.Time       `json:"expires"`
}

// sessions holds challenges and sessions in memory, and the sessions in
// store too when there is one (a restart keeps them). Bounded: past the
// caps, new ones are refused (ErrBusy) after expired ones are swept.
// Sessions are keyed by the hash of their token, as the store keeps them.
type sessions struct {
	now   func() time.Time
	store *SessionStore // nil: memory only

	mu         sync.Mutex
	challenges map[string]challenge
	byToken    map[string]Session // by tokenHash; Token is empty
}

type challenge struct {
	addr    address.Address
	payload []byte
	expires time.Time
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, challenges: map[string]challenge{}, byToken: map[string]Session{}}
}

// restore reads the sessions store kept that are still valid (and drops
// the expired ones from it), and keeps new ones there from now on.
func (ss *sessions) restore(ctx context.Context, store *SessionStore) (int, error) {
	now := ss.now()
	if err := store.deleteExpired(ctx, now); err != nil {
		return 0, fmt.Errorf("exchange: sessions: %w", err)
	}
	kept, err := store.load(ctx, now, maxSessions)
	if err != nil {
		return 0, fmt.Errorf("exchange: sessions: %w", err)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.store = store
	for _, k := range kept {
		ss.byToken[k.hash] = Session{Address: k.addr, Expires: k.expires}
	}
	return len(kept), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b)
}

func (ss *sessions) challenge(host string, a address.Address) (Challenge, error) {
	now := ss.now()
	id := randomHex(16)
	payload := SignInPayload(host, a, randomHex(32))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.challenges) >= maxChallenges {
		ss.sweepLocked(now)
		if len(ss.challenges) >= maxChallenges {
			return Challenge{}, fmt.Errorf("%w: too many pending sign-ins", ErrBusy)
		}
	}
	ss.challenges[id] = challenge{addr: a, payload: payload, expires: now.Add(challengeTTL)}
	return Challenge{ID: id, Address: a, Domain: SignInDomain[:len(SignInDomain)-1], Payload: string(payload), Expires: now.Add(challengeTTL)}, nil
}

// login checks a signature over a challenge (used at most once) and opens
// a session for its address.
func (ss *sessions) login(ctx context.Context, id, pubHex, sigHex string) (Session, error) {
	now := ss.now()
	ss.mu.Lock()
	ch, ok := ss.challenges[id]
	delete(ss.challenges, id) // one attempt per challenge, right or wrong
	ss.mu.Unlock()
	if !ok || !now.Before(ch.expires) {
		return Session{}, ErrBadChallenge
	}
	pub, err1 := hex.DecodeString(pubHex)
	sig, err2 := hex.DecodeString(sigHex)
	if err1 != nil || err2 != nil || len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return Session{}, fmt.Errorf("%w: pubkey and signature must be hex ed25519", ErrBadSignature)
	}
	if address.FromPubKey(pub) != ch.addr {
		return Session{}, fmt.Errorf("%w: the key is not %s's", ErrBadSignature, ch.addr)
	}
	h := sha256.New()
	h.Write([]byte(SignInDomain))
	h.Write(ch.payload)
	if !ed25519.Verify(pub, h.Sum(nil), sig) {
		return Session{}, ErrBadSignature
	}
	s := Session{Token: randomHex(32), Address: ch.addr, Expires: now.Add(SessionTTL)}
	hash := tokenHash(s.Token)
	ss.mu.Lock()
	full := len(ss.byToken) >= maxSessions
	if full {
		ss.sweepLocked(now)
		full = len(ss.byToken) >= maxSessions
	}
	store := ss.store
	ss.mu.Unlock()
	if full {
		return Session{}, fmt.Errorf("%w: too many sessions", ErrBusy)
	}
	// Written before it is usable: a session the store did not take would
	// sign its wallet out at the next restart.
	if store != nil {
		if err := store.put(ctx, storedSession{hash: hash, addr: s.Address, expires: s.Expires}); err != nil {
			return Session{}, fmt.Errorf("exchange: keeping the session: %w", err)
		}
	}
	ss.mu.Lock()
	ss.byToken[hash] = Session{Address: s.Address, Expires: s.Expires}
	ss.mu.Unlock()
	return s, nil
}

func (ss *sessions) lookup(ctx context.Context, token string) (Session, bool) {
	now := ss.now()
	hash := tokenHash(token)
	ss.mu.Lock()
	s, ok := ss.byToken[hash]
	expired := ok && !now.Before(s.Expires)
	if expired {
		delete(ss.byToken, hash)
	}
	store := ss.store
	ss.mu.Unlock()
	if expired {
		if store != nil {
			_ = store.delete(ctx, hash) // expired either way; the next start sweeps what this misses
		}
		return Session{}, false
	}
	s.Token = token
	return s, ok
}

// logout ends the session of token, in the store too: a signed-out token
// must not come back at the next restart.
func (ss *sessions) logout(ctx context.Context, token string) error {
	hash := tokenHash(token)
	ss.mu.Lock()
	delete(ss.byToken, hash)
	store := ss.store
	ss.mu.Unlock()
	if store != nil {
		if err := store.delete(ctx, hash); err != nil {
			return fmt.Errorf("exchange: signing out: %w", err)
		}
	}
	return nil
}

func (ss *sessions) sweepLocked(now time.Time) {
	for id, c := range ss.challenges {
		if !now.Before(c.expires) {
			delete(ss.challenges, id)
		}
	}
	for t, s := range ss.byToken {
		if !now.Before(s.Expires) {
			delete(ss.byToken, t)
		}
	}
}

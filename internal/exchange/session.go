package exchange

import (
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

// sessions holds challenges and sessions in memory. Bounded: past the
// caps, new ones are refused (ErrBusy) after expired ones are swept.
type sessions struct {
	now func() time.Time

	mu         sync.Mutex
	challenges map[string]challenge
	byToken    map[string]Session
}

type challenge struct {
	addr    address.Address
	payload []byte
	expires time.Time
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, challenges: map[string]challenge{}, byToken: map[string]Session{}}
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
func (ss *sessions) login(id, pubHex, sigHex string) (Session, error) {
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
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.byToken) >= maxSessions {
		ss.sweepLocked(now)
		if len(ss.byToken) >= maxSessions {
			return Session{}, fmt.Errorf("%w: too many sessions", ErrBusy)
		}
	}
	ss.byToken[s.Token] = s
	return s, nil
}

func (ss *sessions) lookup(token string) (Session, bool) {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byToken[token]
	if ok && !now.Before(s.Expires) {
		delete(ss.byToken, token)
		return Session{}, false
	}
	return s, ok
}

func (ss *sessions) logout(token string) {
	ss.mu.Lock()
	delete(ss.byToken, token)
	ss.mu.Unlock()
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

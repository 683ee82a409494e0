package coordinator

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/coordinator/store"
)

// TenantDomain prefixes what a customer signs to obtain an API key. v2
// signs the tenant's name too; v1 did not, so a captured v1 registration
// could be sent again under another name. v1 signatures are refused.
const TenantDomain = "AITBC/tenant/v2\x00"

// tenantDomainV1 is the format before the name was signed, recognised only
// to tell an old client why it is refused.
const tenantDomainV1 = "AITBC/tenant/v1\x00"

// maxClockSkew is how far a registration's timestamp may be from now.
const maxClockSkew = 5 * time.Minute

// TenantPayload is what follows TenantDomain in a registration's signed
// message: the coordinator's address, the registering address, the unix
// time ts (8 bytes big-endian) and the tenant's name as sent (empty for
// none). The name comes last, so the fixed-size fields before it keep the
// encoding unambiguous. Wallets sign sha256(TenantDomain || payload).
func TenantPayload(coordinator, addr address.Address, ts int64, name string) []byte {
	p := make([]byte, 0, 2*len(addr)+8+len(name))
	p = append(p, coordinator[:]...)
	p = append(p, addr[:]...)
	p = binary.BigEndian.AppendUint64(p, uint64(ts))
	return append(p, name...)
}

// TenantDigest is what an address's key signs to register as a tenant of
// coordinator at unix time ts under name.
func TenantDigest(coordinator, addr address.Address, ts int64, name string) []byte {
	h := sha256.New()
	h.Write([]byte(TenantDomain))
	h.Write(TenantPayload(coordinator, addr, ts, name))
	return h.Sum(nil)
}

func tenantDigestV1(coordinator, addr address.Address, ts int64) []byte {
	h := sha256.New()
	h.Write([]byte(tenantDomainV1))
	h.Write(TenantPayload(coordinator, addr, ts, ""))
	return h.Sum(nil)
}

// HashKey is how API keys are stored.
func HashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

func newAPIKey() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "aitbc_" + hex.EncodeToString(b)
}

func errUnauthorized() error {
	return errf(ErrUnauthorized, "missing or unknown API key (header X-API-Key)")
}

// Authenticate returns the tenant that owns key.
func (s *Service) Authenticate(ctx context.Context, key string) (*store.Tenant, error) {
	key = strings.TrimSpace(key)
	if key == "" {
		return nil, errUnauthorized()
	}
	h := string(HashKey(key))
	now := s.cfg.Now()
	s.keysMu.RLock()
	ck, ok := s.keys[h]
	s.keysMu.RUnlock()
	if ok && now.Sub(ck.checked) < keyCacheTTL {
		s.touchKey(ctx, h, ck, now)
		return ck.tenant, nil
	}
	t, err := s.cfg.Store.TenantByKey(ctx, []byte(h))
	if errors.Is(err, store.ErrNotFound) {
		s.keysMu.Lock()
		delete(s.keys, h) // revoked (by the operator, in the store)
		s.keysMu.Unlock()
		return nil, errUnauthorized()
	}
	if err != nil {
		return nil, err
	}
	// Remembered for keyCacheTTL: a key revoked in the store by the
	// operator stops working within that; one revoked through the API at once.
	ck = &cachedKey{tenant: t, checked: now}
	s.keysMu.Lock()
	if old := s.keys[h]; old != nil {
		ck.touched = old.touched
	}
	s.keys[h] = ck
	s.keysMu.Unlock()
	s.touchKey(ctx, h, ck, now)
	return t, nil
}

// keyCacheTTL is how long an API key found in the store is trusted
// without looking again; keyTouchEvery is how often its last use is
// written.
const (
	keyCacheTTL   = 30 * time.Second
	keyTouchEvery = time.Minute
)

// cachedKey is an API key found in the store.
type cachedKey struct {
	tenant  *store.Tenant
	checked time.Time // found in the store then
	touched time.Time // last use written then
}

// touchKey records a key's use, at most every keyTouchEvery.
func (s *Service) touchKey(ctx context.Context, h string, ck *cachedKey, now time.Time) {
	s.keysMu.Lock()
	due := now.Sub(ck.touched) >= keyTouchEvery
	if due {
		ck.touched = now
	}
	s.keysMu.Unlock()
	if due {
		if err := s.cfg.Store.TouchKey(ctx, []byte(h), now); err != nil && ctx.Err() == nil {
			s.log.Warn("recording an API key's use", "err", err)
		}
	}
}

// TenantKeys lists t's API keys by id, with creation and last use.
func (s *Service) TenantKeys(ctx context.Context, t *store.Tenant) ([]store.KeyInfo, error) {
	return s.cfg.Store.TenantKeys(ctx, t.ID)
}

// RevokeKey revokes one of t's API keys by id; it stops working at once.
func (s *Service) RevokeKey(ctx context.Context, t *store.Tenant, keyID string) error {
	if err := s.cfg.Store.RevokeKey(ctx, t.ID, strings.ToLower(strings.TrimSpace(keyID))); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errf(ErrKeyNotFound, "tenant %s has no key %s", t.ID, keyID)
		}
		return err
	}
	s.keysMu.Lock()
	for h, ck := range s.keys {
		if ck.tenant.ID == t.ID && store.KeyIDOf([]byte(h)) == strings.ToLower(strings.TrimSpace(keyID)) {
			delete(s.keys, h)
		}
	}
	s.keysMu.Unlock()
	s.log.Info("API key revoked", "tenant", t.ID, "key_id", keyID)
	return nil
}

// AddTenant creates a tenant bound to addr (operator action) and returns
// its API key, shown once. If addr already has a tenant, it gets a new key.
// An address holds at most Limits.MaxKeysPerTenant keys this way.
func (s *Service) AddTenant(ctx context.Context, name string, addr address.Address) (*store.Tenant, string, error) {
	return addTenant(ctx, s.cfg.Store, name, addr, s.cfg.Now(), s.cfg.Limits.MaxKeysPerTenant)
}

// AddTenant is Service.AddTenant on a bare store (the CLI uses it without
// a running coordinator).
// The operator's command has no cap on keys.
func AddTenant(ctx context.Context, st store.Store, name string, addr address.Address, now time.Time) (*store.Tenant, string, error) {
	return addTenant(ctx, st, name, addr, now, 0)
}

func addTenant(ctx context.Context, st store.Store, name string, addr address.Address, now time.Time, maxKeys int) (*store.Tenant, string, error) {
	if addr.IsZero() {
		return nil, "", errf(ErrInvalidAddress, "address required")
	}
	if name == "" {
		name = addr.String()
	}
	if len(name) > 64 {
		return nil, "", errf(ErrInvalidRequest, "name longer than 64 characters")
	}
	key := newAPIKey()
	if t, err := st.TenantByAddress(ctx, addr); err == nil {
		if maxKeys > 0 {
			keys, err := st.TenantKeys(ctx, t.ID)
			if err != nil {
				return nil, "", err
			}
			if len(keys) >= maxKeys {
				return nil, "", errf(ErrQuotaExceeded, "tenant %s has %d API keys (limit %d): revoke one first (DELETE /v1/tenants/keys/{key_id})", t.ID, len(keys), maxKeys)
			}
		}
		return t, key, st.AddTenantKey(ctx, t.ID, HashKey(key))
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, "", err
	}
	t := store.Tenant{ID: "t_" + newJobID()[:16], Name: name, Address: addr, Created: now.UTC()}
	if err := st.CreateTenant(ctx, t, HashKey(key)); err != nil {
		return nil, "", err
	}
	return &t, key, nil
}

// RegisterRequest is POST /v1/tenants: proof that the caller holds the
// key of Address.
type RegisterRequest struct {
	Name      string          `json:"name,omitempty"`
	Address   address.Address `json:"address"`
	PubKey    string          `json:"pubkey"`    // hex ed25519
	Timestamp int64           `json:"timestamp"` // unix seconds
	Signature string          `json:"signature"` // hex, over TenantDigest (which covers Name)
}

// maxLiveRegistrations bounds the used registration signatures the store
// remembers. Each is remembered until its timestamp leaves the
// ±maxClockSkew window; registrations are rate limited per client address,
// and past this many live ones registration answers 503 until some expire.
const maxLiveRegistrations = 100_000

// useRegistration records a registration's signature as used, in the
// store, until its timestamp leaves the window: one signed registration
// buys one API key, also across coordinator restarts.
func (s *Service) useRegistration(ctx context.Context, sig []byte, ts int64) error {
	h := sha256.Sum256(sig)
	// A second longer than the window, so the timestamp check refuses it
	// before it is forgotten.
	until := time.Unix(ts, 0).Add(maxClockSkew + time.Second)
	err := s.cfg.Store.UseRegistration(ctx, h[:], until, s.cfg.Now(), maxLiveRegistrations)
	switch {
	case errors.Is(err, store.ErrExists):
		return errf(ErrReplayed, "this signed registration was already used: sign a new one")
	case errors.Is(err, store.ErrFull):
		return errf(ErrOverloaded, "too many registrations in the last %v; retry later", 2*maxClockSkew)
	case err != nil:
		return fmt.Errorf("coordinator: register: %w", err)
	}
	return nil
}

// Register verifies r and returns a new API key for its address.
func (s *Service) Register(ctx context.Context, r RegisterRequest) (*store.Tenant, string, error) {
	pub, err := hex.DecodeString(r.PubKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, "", errf(ErrInvalidRequest, "pubkey must be a hex ed25519 public key")
	}
	if address.FromPubKey(pub) != r.Address {
		return nil, "", errf(ErrInvalidRequest, "pubkey does not belong to %s", r.Address)
	}
	if d := s.cfg.Now().Sub(time.Unix(r.Timestamp, 0)); d > maxClockSkew || d < -maxClockSkew {
		return nil, "", errf(ErrStaleSignature, "timestamp is %s away from the coordinator's clock (limit %s)", d.Round(time.Second), maxClockSkew)
	}
	sig, err := hex.DecodeString(r.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, "", errf(ErrInvalidSignature, "signature must be a hex ed25519 signature")
	}
	if !ed25519.Verify(pub, TenantDigest(s.cfg.Address, r.Address, r.Timestamp, r.Name), sig) {
		if ed25519.Verify(pub, tenantDigestV1(s.cfg.Address, r.Address, r.Timestamp), sig) {
			return nil, "", errf(ErrInvalidSignature, "signed in the AITBC/tenant/v1 format, which does not cover the name: update the client (AITBC/tenant/v2)")
		}
		return nil, "", errf(ErrInvalidSignature, "signature does not prove %s registering as %q", r.Address, r.Name)
	}
	if err := s.useRegistration(ctx, sig, r.Timestamp); err != nil {
		return nil, "", err
	}
	t, key, err := s.AddTenant(ctx, r.Name, r.Address)
	if err != nil {
		return nil, "", fmt.Errorf("coordinator: register: %w", err)
	}
	return t, key, nil
}

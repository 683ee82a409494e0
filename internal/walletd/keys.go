package walletd

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
)

// Scoped API keys. The daemon's one key (APIKeyPath, --api-key) is the
// admin key: it opens every customer wallet and manages the other keys.
// A scoped key opens only the wallets it names, so an application, a
// customer or a service holds a key that cannot sign with anyone else's
// wallet. Service wallets (Config.ServiceWallets: the devnet's coordinator
// and miners) are kept apart from the customers': the admin key may read
// them but not unlock or sign with them; only a key scoped to them can.
//
// Keys are stored hashed (SHA-256) in KeysPath(home), mode 0600, and
// managed through the admin-only /api/v1/keys endpoints.

// Limits of scoped keys.
const (
	MaxScopedKeys    = 1000 // keys one daemon holds
	MaxWalletsPerKey = 100  // wallets one key names
	MaxKeyLabel      = 64   // characters of a key's label
)

// KeysPath is where the daemon of an AITBC home keeps its scoped keys.
func KeysPath(home string) string { return filepath.Join(home, "wallet", "keys.json") }

// ServiceKeyPath is where the devnet writes the key scoped to its service
// wallets (the coordinator's and the miners'), for the operator's CLI.
func ServiceKeyPath(home string) string { return filepath.Join(home, "wallet", "service-api-key") }

// KeyInfo describes a scoped key (never the key itself).
type KeyInfo struct {
	ID      string    `json:"id"` // first 8 bytes of the key's hash, hex
	Label   string    `json:"label,omitempty"`
	Wallets []string  `json:"wallets"`
	Created time.Time `json:"created"`
}

// NewKey is a key just created: the key is shown this once.
type NewKey struct {
	KeyInfo
	Key string `json:"key"`
}

// CreateKeyRequest is POST /api/v1/keys.
type CreateKeyRequest struct {
	Wallets []string `json:"wallets"`
	Label   string   `json:"label,omitempty"`
}

// KeyList is GET /api/v1/keys.
type KeyList struct {
	Keys []KeyInfo `json:"keys"`
}

type keyRecord struct {
	KeyInfo
	Hash string `json:"hash"` // hex SHA-256 of the key
}

// keyring holds the scoped keys. Lookups take mu for a map read only;
// changes are serialised by wmu, which is held while the file is written,
// so authentication never waits on the disk.
type keyring struct {
	path string
	now  func() time.Time

	wmu sync.Mutex // one change (and file write) at a time

	mu     sync.RWMutex
	byHash map[[32]byte]*keyRecord
}

// principal is who a request authenticated as.
type principal struct {
	admin   bool
	keyID   string
	wallets map[string]bool // a scoped key's wallets
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p *principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

func principalFrom(ctx context.Context) *principal {
	p, _ := ctx.Value(principalKey{}).(*principal)
	return p
}

func loadKeyring(path string, now func() time.Time) (*keyring, error) {
	kr := &keyring{path: path, now: now, byHash: map[[32]byte]*keyRecord{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return kr, nil
	}
	if err != nil {
		return nil, fmt.Errorf("walletd: keys: %w", err)
	}
	var recs []*keyRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("walletd: keys file %s: %w", path, err)
	}
	for _, r := range recs {
		h, err := hex.DecodeString(r.Hash)
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("walletd: keys file %s: key %s has a bad hash", path, r.ID)
		}
		kr.byHash[[32]byte(h)] = r
	}
	return kr, nil
}

// lookup returns the scoped key whose hash is h.
func (kr *keyring) lookup(h [32]byte) *keyRecord {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.byHash[h]
}

func (kr *keyring) list() []KeyInfo {
	kr.mu.RLock()
	out := make([]KeyInfo, 0, len(kr.byHash))
	for _, r := range kr.byHash {
		info := r.KeyInfo
		info.Wallets = slices.Clone(r.Wallets)
		out = append(out, info)
	}
	kr.mu.RUnlock()
	slices.SortFunc(out, func(a, b KeyInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// snapshot is the records to write, in a stable order.
func (kr *keyring) snapshotLocked() []*keyRecord {
	out := make([]*keyRecord, 0, len(kr.byHash))
	for _, r := range kr.byHash {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *keyRecord) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (kr *keyring) create(req CreateKeyRequest) (NewKey, error) {
	if len(req.Wallets) == 0 {
		return NewKey{}, fmt.Errorf("%w: a key must name at least one wallet", ErrInvalidRequest)
	}
	if len(req.Wallets) > MaxWalletsPerKey {
		return NewKey{}, fmt.Errorf("%w: a key names at most %d wallets", ErrInvalidRequest, MaxWalletsPerKey)
	}
	wallets := make([]string, 0, len(req.Wallets))
	for _, w := range req.Wallets {
		w = strings.TrimSpace(w)
		if err := keystore.ValidateName(w); err != nil {
			return NewKey{}, err
		}
		if !slices.Contains(wallets, w) {
			wallets = append(wallets, w)
		}
	}
	slices.Sort(wallets)
	label := strings.TrimSpace(req.Label)
	if len(label) > MaxKeyLabel {
		return NewKey{}, fmt.Errorf("%w: label longer than %d characters", ErrInvalidRequest, MaxKeyLabel)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return NewKey{}, fmt.Errorf("walletd: key: %w", err)
	}
	key := "aitbcw_" + hex.EncodeToString(raw)
	h := sha256.Sum256([]byte(key))
	rec := &keyRecord{KeyInfo: KeyInfo{ID: hex.EncodeToString(h[:8]), Label: label, Wallets: wallets, Created: kr.now().UTC().Truncate(time.Second)}, Hash: hex.EncodeToString(h[:])}

	kr.wmu.Lock()
	defer kr.wmu.Unlock()
	kr.mu.RLock()
	n := len(kr.byHash)
	recs := append(kr.snapshotLocked(), rec)
	kr.mu.RUnlock()
	if n >= MaxScopedKeys {
		return NewKey{}, fmt.Errorf("%w: the daemon holds %d scoped keys (limit %d): revoke one first", ErrKeyLimit, n, MaxScopedKeys)
	}
	if err := kr.write(recs); err != nil {
		return NewKey{}, err
	}
	kr.mu.Lock()
	kr.byHash[h] = rec
	kr.mu.Unlock()
	info := rec.KeyInfo
	info.Wallets = slices.Clone(wallets)
	return NewKey{KeyInfo: info, Key: key}, nil
}

func (kr *keyring) revoke(id string) error {
	id = strings.ToLower(strings.TrimSpace(id))
	kr.wmu.Lock()
	defer kr.wmu.Unlock()
	kr.mu.RLock()
	var hit [32]byte
	found := false
	var recs []*keyRecord
	for h, r := range kr.byHash {
		if r.ID == id {
			hit, found = h, true
			continue
		}
		recs = append(recs, r)
	}
	kr.mu.RUnlock()
	if !found {
		return fmt.Errorf("%w: %q", ErrKeyNotFound, id)
	}
	slices.SortFunc(recs, func(a, b *keyRecord) int { return strings.Compare(a.ID, b.ID) })
	if err := kr.write(recs); err != nil {
		return err
	}
	kr.mu.Lock()
	delete(kr.byHash, hit)
	kr.mu.Unlock()
	return nil
}

// write replaces the keys file (a temporary file renamed over it, so a
// crash leaves the old or the new one). Called with wmu held.
func (kr *keyring) write(recs []*keyRecord) error {
	if recs == nil {
		recs = []*keyRecord{}
	}
	b, err := json.MarshalIndent(recs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(kr.path), 0o700); err != nil {
		return fmt.Errorf("walletd: keys: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(kr.path), ".keys-*.json")
	if err != nil {
		return fmt.Errorf("walletd: keys: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("walletd: keys: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("walletd: keys: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("walletd: keys: %w", err)
	}
	if err := os.Rename(tmp.Name(), kr.path); err != nil {
		return fmt.Errorf("walletd: keys: %w", err)
	}
	return nil
}

// authenticate returns who key belongs to, or nil. The admin key is
// compared in constant time over SHA-256 digests (the length does not leak
// either); a scoped key is found by its hash.
func (s *Server) authenticate(key string) *principal {
	if key == "" {
		return nil
	}
	h := sha256.Sum256([]byte(key))
	if subtle.ConstantTimeCompare(h[:], s.keyHash[:]) == 1 {
		return &principal{admin: true}
	}
	r := s.keys.lookup(h)
	if r == nil {
		return nil
	}
	p := &principal{keyID: r.ID, wallets: make(map[string]bool, len(r.Wallets))}
	for _, w := range r.Wallets {
		p.wallets[w] = true
	}
	return p
}

// mayUse reports whether the request's key may use wallet name: read it
// (get, balance) when write is false, or also unlock, sign, back up,
// create or restore it when write is true.
func (s *Server) mayUse(r *http.Request, name string, write bool) error {
	p := principalFrom(r.Context())
	switch {
	case p == nil:
		return ErrUnauthorized
	case p.wallets[name]:
		return nil
	case !p.admin:
		return fmt.Errorf("%w: this API key (%s) is scoped to other wallets than %q", ErrOutOfScope, p.keyID, name)
	case write && s.service[name]:
		return fmt.Errorf("%w: %q is a service wallet: the admin key does not open it; use a key scoped to it (%s)", ErrServiceWallet, name, ServiceKeyPath(s.cfg.Home))
	}
	return nil
}

// wallet wraps a handler of /api/v1/wallets/{name}/...: the key must be
// allowed to use that wallet.
func (s *Server) wallet(write bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.mayUse(r, r.PathValue("name"), write); err != nil {
			s.fail(w, err)
			return
		}
		h(w, r)
	}
}

// adminOnly wraps a handler only the admin key may call.
func (s *Server) adminOnly(h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p := principalFrom(r.Context()); p == nil || !p.admin {
			s.fail(w, fmt.Errorf("%w: %s %s", ErrAdminOnly, r.Method, r.URL.Path))
			return
		}
		h.ServeHTTP(w, r)
	}
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var req CreateKeyRequest
	if !s.decode(w, r, &req) {
		return
	}
	k, err := s.keys.create(req)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.log.Info("scoped API key created", "key_id", k.ID, "wallets", k.Wallets, "label", k.Label)
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusCreated, k)
}

func (s *Server) listKeys(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, KeyList{Keys: s.keys.list()})
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.keys.revoke(id); err != nil {
		s.fail(w, err)
		return
	}
	s.log.Info("scoped API key revoked", "key_id", id)
	w.WriteHeader(http.StatusNoContent)
}

// CreateKey makes a key scoped to wallets (in-process: the devnet's
// service key). The key is returned this once.
func (s *Server) CreateKey(wallets []string, label string) (NewKey, error) {
	return s.keys.create(CreateKeyRequest{Wallets: wallets, Label: label})
}

// KeyScope returns the wallets key is scoped to; ok is false for the admin
// key and for unknown keys.
func (s *Server) KeyScope(key string) (wallets []string, ok bool) {
	p := s.authenticate(key)
	if p == nil || p.admin {
		return nil, false
	}
	for w := range p.wallets {
		wallets = append(wallets, w)
	}
	slices.Sort(wallets)
	return wallets, true
}

// CreateKey asks the daemon (with the admin key) for a key scoped to
// wallets.
func (c *Client) CreateKey(ctx context.Context, wallets []string, label string) (NewKey, error) {
	var k NewKey
	return k, c.do(ctx, http.MethodPost, "/api/v1/keys", CreateKeyRequest{Wallets: wallets, Label: label}, &k)
}

// Keys lists the daemon's scoped keys.
func (c *Client) Keys(ctx context.Context) ([]KeyInfo, error) {
	var l KeyList
	if err := c.do(ctx, http.MethodGet, "/api/v1/keys", nil, &l); err != nil {
		return nil, err
	}
	return l.Keys, nil
}

// RevokeKey revokes a scoped key by id; it stops working at once.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	id = strings.TrimSpace(id)
	if len(id) != 16 || strings.Trim(strings.ToLower(id), "0123456789abcdef") != "" {
		return fmt.Errorf("%w: key id %q: 16 hex digits (aitbc wallet daemon key list)", ErrInvalidRequest, id)
	}
	return c.do(ctx, http.MethodDelete, "/api/v1/keys/"+id, nil, nil)
}

// EnsureKeyFile makes path hold a key scoped to exactly wallets: the key
// already there is kept when it still has that scope; otherwise it is
// revoked and a new one written (mode 0600). The devnet keeps its service
// key this way across restarts.
func (s *Server) EnsureKeyFile(path string, wallets []string, label string) error {
	want := slices.Clone(wallets)
	slices.Sort(want)
	want = slices.Compact(want)
	if b, err := os.ReadFile(path); err == nil {
		old := strings.TrimSpace(string(b))
		if got, ok := s.KeyScope(old); ok && slices.Equal(got, want) {
			return nil
		}
		if p := s.authenticate(old); p != nil && !p.admin {
			if err := s.keys.revoke(p.keyID); err != nil && !errors.Is(err, ErrKeyNotFound) {
				return err
			}
		}
	}
	k, err := s.CreateKey(want, label)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("walletd: %w", err)
	}
	if err := os.WriteFile(path, []byte(k.Key+"\n"), 0o600); err != nil {
		return fmt.Errorf("walletd: %w", err)
	}
	return nil
}

// CustomerSigner is the daemon's Service as an in-process front end that
// acts for customers (the web pages) sees it: it refuses the service
// wallets, as the admin key does over HTTP, so signing in to the web pages
// as the coordinator or a miner is not a way around the separation.
type CustomerSigner struct{ s *Server }

// Customers returns the daemon's signer for customer-facing front ends.
func (s *Server) Customers() CustomerSigner { return CustomerSigner{s} }

func (c CustomerSigner) refuse(name string) error {
	if c.s.service[name] {
		return fmt.Errorf("%w: %q is a service wallet: it cannot be used from here", ErrServiceWallet, name)
	}
	return nil
}

// SignMessage is Service.SignMessage for customer wallets only.
func (c CustomerSigner) SignMessage(ctx context.Context, name, password, domain string, payload []byte) (Signature, error) {
	if err := c.refuse(name); err != nil {
		return Signature{}, err
	}
	return c.s.svc.SignMessage(ctx, name, password, domain, payload)
}

// SignAndSubmit is Service.SignAndSubmit for customer wallets only.
func (c CustomerSigner) SignAndSubmit(ctx context.Context, name, password string, msg tx.Msg, fee coin.Amount) (Submitted, error) {
	if err := c.refuse(name); err != nil {
		return Submitted{}, err
	}
	return c.s.svc.SignAndSubmit(ctx, name, password, msg, fee)
}

package keystore

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/aitbc/aitbc/internal/address"
)

// Errors returned by the store; test them with errors.Is.
var (
	ErrWrongPassword   = errors.New("keystore: wrong password")
	ErrNotFound        = errors.New("keystore: wallet not found")
	ErrExists          = errors.New("keystore: wallet already exists")
	ErrInvalidName     = errors.New("keystore: invalid wallet name")
	ErrCorrupt         = errors.New("keystore: wallet file is corrupt")
	ErrInvalidMnemonic = errors.New("keystore: invalid recovery phrase")
	ErrEmptyPassword   = errors.New("keystore: password must not be empty")
)

// MaxNameLen is the longest wallet name.
const MaxNameLen = 64

// ValidateName checks a wallet name: 1 to 64 characters of A-Z, a-z, 0-9,
// '.', '_' and '-', not starting with a dot.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w %q: must be 1-%d characters", ErrInvalidName, name, MaxNameLen)
	}
	if name[0] == '.' {
		return fmt.Errorf("%w %q: must not start with a dot", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w %q: only letters, digits, '.', '_' and '-' are allowed", ErrInvalidName, name)
		}
	}
	return nil
}

// Info is the public part of a wallet: readable without its password.
type Info struct {
	Name    string          `json:"name"`
	Address address.Address `json:"address"`
	Created time.Time       `json:"created"`
}

// Dir is the wallet directory under an AITBC home directory.
func Dir(home string) string { return filepath.Join(home, "wallets") }

// Store is a directory of encrypted wallet files. It is safe for concurrent
// use; several processes may share a directory (creation never overwrites).
type Store struct {
	dir  string
	kdf  KDFParams
	rand io.Reader
	now  func() time.Time
	mu   sync.Mutex // serialises writes from this process
}

// Option configures a Store.
type Option func(*Store)

// WithKDF sets the scrypt parameters for files this store writes (reading
// always uses the parameters stored in the file). Tests use
// InsecureTestKDF to stay fast.
func WithKDF(p KDFParams) Option { return func(s *Store) { s.kdf = p } }

// WithRand sets the randomness source (default crypto/rand), for tests.
func WithRand(r io.Reader) Option { return func(s *Store) { s.rand = r } }

// WithClock sets the clock that stamps creation times, for tests.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// New returns a store over dir (created on the first write, mode 0700).
func New(dir string, opts ...Option) (*Store, error) {
	s := &Store{dir: dir, kdf: DefaultKDF(), rand: rand.Reader, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if dir == "" {
		return nil, errors.New("keystore: directory required")
	}
	if err := s.kdf.Validate(); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	return s, nil
}

// ForHome returns the store of an AITBC home directory (Dir(home)).
func ForHome(home string, opts ...Option) (*Store, error) { return New(Dir(home), opts...) }

// Path returns the directory the store keeps its files in.
func (s *Store) Path() string { return s.dir }

func (s *Store) file(name string) string { return filepath.Join(s.dir, name+".json") }

// Create makes a new wallet with fresh 256-bit entropy (a 24-word phrase).
func (s *Store) Create(name, password string) (Info, error) {
	if err := s.checkNew(name, password); err != nil {
		return Info{}, err
	}
	ent := make([]byte, EntropyBits/8)
	if _, err := io.ReadFull(s.rand, ent); err != nil {
		return Info{}, fmt.Errorf("keystore: randomness: %w", err)
	}
	defer wipe(ent)
	return s.write(name, ent, password)
}

// Restore makes a wallet from a recovery phrase (12 to 24 words). The
// address is the one the phrase always gives, so a wallet backed up
// elsewhere comes back with the same address.
func (s *Store) Restore(name, mnemonic, password string) (Info, error) {
	if err := s.checkNew(name, password); err != nil {
		return Info{}, err
	}
	ent, err := entropyFromMnemonic(mnemonic)
	if err != nil {
		return Info{}, err
	}
	defer wipe(ent)
	return s.write(name, ent, password)
}

// EnsureWallet returns the address of wallet name, creating it with
// password when it does not exist. When it exists, password must open it
// (ErrWrongPassword otherwise), so a caller that funds the address knows
// the password it holds works.
func (s *Store) EnsureWallet(name, password string) (address.Address, error) {
	if _, err := s.Get(name); err == nil {
		k, err := s.Unlock(name, password)
		if err != nil {
			return address.Address{}, err
		}
		defer k.Wipe()
		return k.Address(), nil
	} else if !errors.Is(err, ErrNotFound) {
		return address.Address{}, err
	}
	info, err := s.Create(name, password)
	if errors.Is(err, ErrExists) { // created by someone else meanwhile
		return s.EnsureWallet(name, password)
	}
	return info.Address, err
}

func (s *Store) checkNew(name, password string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if password == "" {
		return ErrEmptyPassword
	}
	if _, err := os.Lstat(s.file(name)); err == nil {
		return fmt.Errorf("%w: %q", ErrExists, name)
	}
	return nil
}

func (s *Store) write(name string, ent []byte, password string) (Info, error) {
	priv, err := keyFromEntropy(ent)
	if err != nil {
		return Info{}, err
	}
	addr := address.FromPubKey(priv.Public().(ed25519.PublicKey))
	wipe(priv)
	salt := make([]byte, saltLen)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := io.ReadFull(s.rand, salt); err != nil {
		return Info{}, fmt.Errorf("keystore: randomness: %w", err)
	}
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return Info{}, fmt.Errorf("keystore: randomness: %w", err)
	}
	created := s.now().UTC().Truncate(time.Second)
	f, err := seal(name, addr, created, ent, password, s.kdf, salt, nonce)
	if err != nil {
		return Info{}, err
	}
	data, err := f.marshal()
	if err != nil {
		return Info{}, fmt.Errorf("keystore: encode: %w", err)
	}
	if err := s.writeNew(name, data); err != nil {
		return Info{}, err
	}
	return Info{Name: name, Address: addr, Created: created}, nil
}

// writeNew writes data as the file of name, atomically and without ever
// replacing an existing file: a temporary file is written and synced, then
// hard-linked to its final name (which fails if the name exists) or, where
// the file system has no hard links, renamed after a check.
func (s *Store) writeNew(name string, data []byte) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	tmp, err := os.CreateTemp(s.dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if tmp != nil {
			_ = tmp.Close()
		}
		_ = os.Remove(tmpName) // after a link or on failure; harmless after a rename
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("keystore: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("keystore: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		tmp = nil
		return fmt.Errorf("keystore: %w", err)
	}
	tmp = nil
	final := s.file(name)
	if err := os.Link(tmpName, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %q", ErrExists, name)
		}
		if _, serr := os.Lstat(final); serr == nil {
			return fmt.Errorf("%w: %q", ErrExists, name)
		}
		if err := os.Rename(tmpName, final); err != nil {
			return fmt.Errorf("keystore: %w", err)
		}
	}
	syncDir(s.dir)
	return nil
}

// syncDir flushes a directory entry change; best effort (not every system
// can fsync a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

func (s *Store) load(name string) (*parsed, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(s.file(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	p, err := decodeFile(data)
	if err != nil {
		return nil, fmt.Errorf("wallet %q: %w", name, err)
	}
	if p.f.Name != name {
		return nil, fmt.Errorf("%w: file %s.json holds wallet %q", ErrCorrupt, name, p.f.Name)
	}
	return p, nil
}

// Get returns a wallet's public information without decrypting it.
func (s *Store) Get(name string) (Info, error) {
	p, err := s.load(name)
	if err != nil {
		return Info{}, err
	}
	return p.info(), nil
}

// Exists reports whether a wallet file of that name exists.
func (s *Store) Exists(name string) bool {
	if ValidateName(name) != nil {
		return false
	}
	_, err := os.Lstat(s.file(name))
	return err == nil
}

// List returns every wallet, ordered by name. A file that cannot be read is
// left out of the list and reported in the error (wrapping ErrCorrupt); the
// list of the others is returned with it.
func (s *Store) List() ([]Info, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	var out []Info
	var bad []string
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") {
			continue
		}
		name := strings.TrimSuffix(n, ".json")
		if ValidateName(name) != nil {
			continue
		}
		p, err := s.load(name)
		if err != nil {
			bad = append(bad, name)
			continue
		}
		out = append(out, p.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(bad) > 0 {
		return out, fmt.Errorf("%w: unreadable wallet files: %s", ErrCorrupt, strings.Join(bad, ", "))
	}
	return out, nil
}

// Unlock decrypts a wallet and returns its signing key. The caller should
// Wipe the key when done.
func (s *Store) Unlock(name, password string) (*Key, error) {
	p, ent, err := s.open(name, password)
	if err != nil {
		return nil, err
	}
	defer wipe(ent)
	priv, err := keyFromEntropy(ent)
	if err != nil {
		return nil, err
	}
	k := &Key{info: p.info(), priv: priv}
	if address.FromPubKey(k.PublicKey()) != p.addr {
		k.Wipe()
		return nil, fmt.Errorf("%w: wallet %q: key does not match the stored address", ErrCorrupt, name)
	}
	if p.f.KDF.weakerThan(s.kdf) {
		// Best effort: the key is unlocked either way, and the old file
		// stays whole if the rewrite fails.
		_ = s.upgrade(p, ent, password)
	}
	return k, nil
}

// upgrade rewrites a wallet's file with the store's KDF parameters (a new
// salt and nonce, the same wallet), atomically replacing the old file.
func (s *Store) upgrade(p *parsed, ent []byte, password string) error {
	salt := make([]byte, saltLen)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := io.ReadFull(s.rand, salt); err != nil {
		return err
	}
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return err
	}
	f, err := seal(p.f.Name, p.addr, p.created, ent, password, s.kdf, salt, nonce)
	if err != nil {
		return err
	}
	data, err := f.marshal()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tmp, err := os.CreateTemp(s.dir, "."+p.f.Name+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // harmless after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmpName, s.file(p.f.Name)); err != nil {
		return err
	}
	syncDir(s.dir)
	return nil
}

// Mnemonic decrypts a wallet and returns its recovery phrase, for backup.
func (s *Store) Mnemonic(name, password string) (string, error) {
	_, ent, err := s.open(name, password)
	if err != nil {
		return "", err
	}
	defer wipe(ent)
	return mnemonicFromEntropy(ent)
}

func (s *Store) open(name, password string) (*parsed, []byte, error) {
	if password == "" {
		return nil, nil, ErrEmptyPassword
	}
	p, err := s.load(name)
	if err != nil {
		return nil, nil, err
	}
	ent, err := p.open(password)
	if err != nil {
		return nil, nil, err
	}
	return p, ent, nil
}

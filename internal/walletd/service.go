package walletd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/rpc"
)

// Node is what the wallet needs of a chain node. *rpc.Client satisfies it;
// errors the node answers with should be *httpx.APIError (as rpc.Client
// returns) or registered chain errors (*errs.Error) for in-process nodes.
type Node interface {
	Chain(ctx context.Context) (rpc.ChainInfo, error)
	Account(ctx context.Context, addr address.Address) (rpc.Account, error)
	Submit(ctx context.Context, txBytes []byte) (rpc.SubmitResult, error)
}

var _ Node = (*rpc.Client)(nil)

// DefaultUnlockTimeout is how long Unlock keeps a key when no timeout is given.
const DefaultUnlockTimeout = 15 * time.Minute

// MinUnlockTimeout is the shortest timeout the HTTP API accepts (a shorter
// one would round to zero, which means DefaultUnlockTimeout).
const MinUnlockTimeout = time.Second

// MaxUnlockTimeout is the longest Unlock accepts.
const MaxUnlockTimeout = 24 * time.Hour

// chainInfoTTL is how long the chain id and minimum fee are cached.
const chainInfoTTL = 30 * time.Second

// WalletInfo describes a wallet as the daemon sees it.
type WalletInfo struct {
	Name          string          `json:"name"`
	Address       address.Address `json:"address"`
	Created       time.Time       `json:"created"`
	Unlocked      bool            `json:"unlocked"`
	UnlockedUntil *time.Time      `json:"unlocked_until,omitempty"`
}

// Balance is an account's balance. Balance is a JSON number of AITBC (the
// shape the seed documents show, {"balance": 100.0, "currency": "AITBC"});
// Amount is the exact value as a decimal string.
type Balance struct {
	Name     string          `json:"name,omitempty"`
	Address  address.Address `json:"address"`
	Balance  float64         `json:"balance"`
	Amount   coin.Amount     `json:"amount"`
	Currency string          `json:"currency"`
	Nonce    uint64          `json:"nonce"`
	Height   int64           `json:"height"`
}

// Submitted describes a transaction the node accepted into its mempool.
type Submitted struct {
	TxHash  string          `json:"tx_hash"`
	Status  string          `json:"status"` // "pending"
	From    address.Address `json:"from"`
	Nonce   uint64          `json:"nonce"`
	Fee     coin.Amount     `json:"fee"`
	ChainID string          `json:"chain_id"`
	Type    string          `json:"type"`
}

// Backup is a wallet's recovery phrase.
type Backup struct {
	Name     string          `json:"name"`
	Address  address.Address `json:"address"`
	Mnemonic string          `json:"mnemonic"`
}

// ServiceConfig configures a Service.
type ServiceConfig struct {
	Store         *keystore.Store  // required
	Node          Node             // nil: wallet management only; balance and signing fail with ErrNoNode
	DefaultWallet string           // used by Balance when no wallet is named
	Logger        *slog.Logger     // nil: discard
	Clock         func() time.Time // nil: time.Now (unlock expiry is checked against it)
	Guard         GuardConfig      // bounds and paces password checks (guard.go); zero: the defaults
	PasswordGrace time.Duration    // how long a password given to create or sign keeps the wallet unlocked; 0: not at all (grace.go)
	// MinPasswordLength is the fewest characters a new wallet's password
	// may have (0: any non-empty one, as on a devnet; `aitbc wallet daemon`
	// sets DefaultMinPasswordLength). Existing wallets open whatever theirs is.
	MinPasswordLength int
}

// DefaultMinPasswordLength is what `aitbc wallet daemon` requires of new
// wallets' passwords unless told otherwise.
const DefaultMinPasswordLength = 10

// ErrWeakPassword: a new wallet's password is shorter than the minimum.
var ErrWeakPassword = errors.New("walletd: password too weak")

// checkStrength refuses a new password shorter than the minimum.
func (s *Service) checkStrength(password string) error {
	if password == "" || s.minPassword <= 0 {
		return nil // an empty one is the keystore's password_required
	}
	if n := utf8.RuneCountInString(password); n < s.minPassword {
		return fmt.Errorf("%w: %d characters, this daemon requires at least %d", ErrWeakPassword, n, s.minPassword)
	}
	return nil
}

// Service is the wallet daemon's logic without HTTP. It is safe for
// concurrent use.
type Service struct {
	ks          *keystore.Store
	node        Node
	defWallet   string
	log         *slog.Logger
	now         func() time.Time
	mu          sync.Mutex
	sessions    map[string]*session
	accounts    map[address.Address]*account
	chain       rpc.ChainInfo
	chainUntil  time.Time
	guard       *passwordGuard
	minPassword int
	grace       time.Duration // see grace.go
}

// session is an unlocked wallet. Its fields change only under Service.mu.
type session struct {
	key   *keystore.Key
	until time.Time
	timer *time.Timer
	gen   uint64 // bumped when an unlock extends the session
}

// account serialises signing for one address and remembers the nonce its
// next transaction gets.
type account struct {
	mu    sync.Mutex
	next  uint64
	known bool
}

// NewService returns a Service over a keystore and a node.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("walletd: keystore required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.DefaultWallet != "" {
		if err := keystore.ValidateName(cfg.DefaultWallet); err != nil {
			return nil, fmt.Errorf("walletd: default wallet: %w", err)
		}
	}
	return &Service{
		ks: cfg.Store, node: cfg.Node, defWallet: cfg.DefaultWallet, log: cfg.Logger, now: cfg.Clock,
		sessions: map[string]*session{}, accounts: map[address.Address]*account{},
		guard: newPasswordGuard(cfg.Guard, cfg.Clock), minPassword: cfg.MinPasswordLength,
		grace: min(max(cfg.PasswordGrace, 0), MaxUnlockTimeout),
	}, nil
}

// Store returns the keystore the service manages.
func (s *Service) Store() *keystore.Store { return s.ks }

// DefaultWallet returns the wallet Balance uses when none is named ("" for none).
func (s *Service) DefaultWallet() string { return s.defWallet }

func (s *Service) info(ki keystore.Info) WalletInfo {
	w := WalletInfo{Name: ki.Name, Address: ki.Address, Created: ki.Created}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.sessions[ki.Name]; ss != nil && s.now().Before(ss.until) {
		until := ss.until
		w.Unlocked, w.UnlockedUntil = true, &until
	}
	return w
}

// Create makes a new wallet (24-word recovery phrase; see Backup).
func (s *Service) Create(_ context.Context, name, password string) (WalletInfo, error) {
	if err := s.checkStrength(password); err != nil {
		return WalletInfo{}, err
	}
	ki, err := s.ks.Create(name, password)
	if err != nil {
		return WalletInfo{}, err
	}
	s.log.Info("wallet created", "wallet", name, "address", ki.Address.String())
	s.rememberPassword(name, password)
	return s.info(ki), nil
}

// Restore makes a wallet from a recovery phrase.
func (s *Service) Restore(_ context.Context, name, mnemonic, password string) (WalletInfo, error) {
	if err := s.checkStrength(password); err != nil {
		return WalletInfo{}, err
	}
	ki, err := s.ks.Restore(name, mnemonic, password)
	if err != nil {
		return WalletInfo{}, err
	}
	s.log.Info("wallet restored", "wallet", name, "address", ki.Address.String())
	return s.info(ki), nil
}

// List returns every wallet, ordered by name. Unreadable wallet files are
// logged and left out.
func (s *Service) List(_ context.Context) ([]WalletInfo, error) {
	list, err := s.ks.List()
	if err != nil {
		if !errors.Is(err, keystore.ErrCorrupt) {
			return nil, err
		}
		s.log.Warn("wallet list", "err", err)
	}
	out := make([]WalletInfo, 0, len(list))
	for _, ki := range list {
		out = append(out, s.info(ki))
	}
	return out, nil
}

// Get returns one wallet.
func (s *Service) Get(_ context.Context, name string) (WalletInfo, error) {
	ki, err := s.ks.Get(name)
	if err != nil {
		return WalletInfo{}, err
	}
	return s.info(ki), nil
}

// Address returns a wallet's address.
func (s *Service) Address(ctx context.Context, name string) (address.Address, error) {
	w, err := s.Get(ctx, name)
	return w.Address, err
}

// Backup returns a wallet's recovery phrase; the password is required even
// while the wallet is unlocked.
func (s *Service) Backup(_ context.Context, name, password string) (Backup, error) {
	ki, err := s.ks.Get(name)
	if err != nil {
		return Backup{}, err
	}
	var m string
	err = s.guard.check(name, func() (err error) {
		m, err = s.ks.Mnemonic(name, password)
		return err
	})
	if err != nil {
		return Backup{}, err
	}
	s.log.Info("wallet backup read", "wallet", name)
	return Backup{Name: name, Address: ki.Address, Mnemonic: m}, nil
}

// Unlock decrypts a wallet and keeps its key in memory for timeout (0:
// DefaultUnlockTimeout), so that signing needs no password meanwhile.
// Unlocking an unlocked wallet (with its password) sets the new timeout and
// keeps the key in memory, so signers using it are not disturbed.
func (s *Service) Unlock(_ context.Context, name, password string, timeout time.Duration) (WalletInfo, error) {
	return s.unlock(name, password, timeout, false)
}

// unlock is Unlock; a trusted caller (a WalletSender of this process,
// which holds the right password) is not held up by the backoff that
// others' wrong guesses put on the wallet, though it waits for the pool.
func (s *Service) unlock(name, password string, timeout time.Duration, trusted bool) (WalletInfo, error) {
	if timeout == 0 {
		timeout = DefaultUnlockTimeout
	}
	if timeout < 0 || timeout > MaxUnlockTimeout {
		return WalletInfo{}, fmt.Errorf("%w: %v (must be between 0 and %v)", ErrInvalidTimeout, timeout, MaxUnlockTimeout)
	}
	var k *keystore.Key
	err := s.guard.run(name, trusted, func() (err error) {
		k, err = s.ks.Unlock(name, password)
		return err
	})
	if err != nil {
		return WalletInfo{}, err
	}
	until := s.now().Add(timeout)
	s.mu.Lock()
	ss := s.sessions[name]
	if ss != nil && !ss.key.Wiped() {
		ss.timer.Stop()
		ss.gen++
		ss.until = until
		k.Wipe() // the session keeps its own copy of the same key
	} else {
		ss = &session{key: k, until: until}
		s.sessions[name] = ss
	}
	gen := ss.gen
	ss.timer = time.AfterFunc(timeout, func() { s.expire(name, ss, gen) })
	s.mu.Unlock()
	s.log.Info("wallet unlocked", "wallet", name, "until", until.Format(time.RFC3339))
	return s.info(k.Info()), nil
}

// expire locks a session when its timer fires, unless the session was
// extended (another generation) or ended meanwhile.
func (s *Service) expire(name string, ss *session, gen uint64) {
	s.mu.Lock()
	if s.sessions[name] != ss || ss.gen != gen {
		s.mu.Unlock()
		return
	}
	delete(s.sessions, name)
	s.mu.Unlock()
	ss.key.Wipe()
	s.log.Info("wallet lock timeout", "wallet", name)
}

// Lock wipes a wallet's unlocked key. Locking a locked wallet is not an
// error; an unknown wallet is.
func (s *Service) Lock(_ context.Context, name string) (WalletInfo, error) {
	ki, err := s.ks.Get(name)
	if err != nil {
		return WalletInfo{}, err
	}
	s.mu.Lock()
	ss := s.sessions[name]
	delete(s.sessions, name)
	s.mu.Unlock()
	if ss != nil {
		ss.timer.Stop()
		ss.key.Wipe()
		s.log.Info("wallet locked", "wallet", name)
	}
	return s.info(ki), nil
}

// LockAll wipes every unlocked key (the daemon calls it on shutdown).
func (s *Service) LockAll() {
	s.mu.Lock()
	all := s.sessions
	s.sessions = map[string]*session{}
	s.mu.Unlock()
	for _, ss := range all {
		ss.timer.Stop()
		ss.key.Wipe()
	}
}

// Balance returns the balance of wallet name, or of the default wallet
// when name is empty (ErrNoWallet when there is none).
func (s *Service) Balance(ctx context.Context, name string) (Balance, error) {
	if name == "" {
		name = s.defWallet
	}
	if name == "" {
		return Balance{}, fmt.Errorf("%w: name a wallet (?name=) or an address (?address=); this daemon has no default wallet", ErrNoWallet)
	}
	ki, err := s.ks.Get(name)
	if err != nil {
		return Balance{}, err
	}
	b, err := s.BalanceOf(ctx, ki.Address)
	b.Name = name
	return b, err
}

// BalanceOf returns the balance of any address.
func (s *Service) BalanceOf(ctx context.Context, addr address.Address) (Balance, error) {
	if s.node == nil {
		return Balance{}, ErrNoNode
	}
	acc, err := s.node.Account(ctx, addr)
	if err != nil {
		return Balance{}, nodeError("account", err)
	}
	return Balance{
		Address: addr, Balance: acc.Balance.Float(), Amount: acc.Balance, Currency: coin.Denom,
		Nonce: acc.Nonce, Height: acc.Height,
	}, nil
}

// nodeError wraps a node failure: a node's answer keeps its code (the
// caller passes it through), a transport failure becomes ErrNodeUnavailable.
func nodeError(op string, err error) error {
	var api *httpx.APIError
	var ce *errs.Error
	switch {
	case errors.As(err, &api):
		// Let errors.Is find the chain error the node named.
		if sentinel := errs.ByName(api.Code); sentinel != nil {
			err = &remoteError{api: api, sentinel: sentinel}
		}
		return fmt.Errorf("walletd: %s: %w", op, err)
	case errors.As(err, &ce), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("walletd: %s: %w", op, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrNodeUnavailable, op, err)
}

// unlockKey decrypts a wallet's key under the password guard.
func (s *Service) unlockKey(name, password string) (k *keystore.Key, err error) {
	err = s.guard.check(name, func() (err error) {
		k, err = s.ks.Unlock(name, password)
		return err
	})
	return k, err
}

// signer returns the key to sign with: the wallet decrypted with password,
// or a copy of its unlocked key when password is empty. The caller calls
// release when done, which wipes that key.
func (s *Service) signer(name, password string) (k *keystore.Key, release func(), err error) {
	if password != "" {
		k, err := s.unlockKey(name, password)
		if err != nil {
			return nil, nil, err
		}
		s.remember(name, k)
		return k, k.Wipe, nil
	}
	if err := keystore.ValidateName(name); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	ss := s.sessions[name]
	expired := ss != nil && !s.now().Before(ss.until)
	if expired {
		delete(s.sessions, name)
	}
	s.mu.Unlock()
	if expired {
		ss.timer.Stop()
		ss.key.Wipe()
	}
	if ss != nil && !expired {
		// Sign with a copy: a Lock or expiry meanwhile wipes the session's
		// key, not the one this call is using.
		if c, err := ss.key.Clone(); err == nil {
			return c, c.Wipe, nil
		}
	}
	if _, err := s.ks.Get(name); err != nil {
		return nil, nil, err
	}
	return nil, nil, fmt.Errorf("%w: %q: give its password, or unlock it first", ErrLocked, name)
}

// SignOptions are the optional parts of a Sign call.
type SignOptions struct {
	Fee     coin.Amount // 0: the chain's minimum fee
	Nonce   *uint64     // nil: the account's next nonce (reserved: the next call gets the one after)
	ChainID string      // "": the node's
}

// Signed is a signed, encoded transaction.
type Signed struct {
	Tx     *tx.Tx
	Bytes  []byte
	TxHash string
}

// Sign builds and signs a transaction without submitting it. With a nonce,
// chain id and fee given it needs no node. Without a nonce it takes the
// next one as SignAndSubmit would and reserves it, so a batch of Sign calls
// gets consecutive nonces (for benchmarks and tests that submit themselves).
func (s *Service) Sign(ctx context.Context, name, password string, msg tx.Msg, opt SignOptions) (Signed, error) {
	if err := checkMsg(msg); err != nil {
		return Signed{}, err
	}
	k, release, err := s.signer(name, password)
	if err != nil {
		return Signed{}, err
	}
	defer release()
	chainID, fee := opt.ChainID, opt.Fee
	if chainID == "" || fee == 0 {
		ci, err := s.chainInfo(ctx, false)
		if err != nil {
			return Signed{}, err
		}
		if chainID == "" {
			chainID = ci.ChainID
		}
		if fee == 0 {
			fee = ci.MinFee
		}
	}
	if opt.Nonce != nil {
		return s.build(k, chainID, *opt.Nonce, fee, msg)
	}
	acct := s.account(k.Address())
	acct.mu.Lock()
	defer acct.mu.Unlock()
	nonce, err := s.nextNonce(ctx, acct, k.Address())
	if err != nil {
		return Signed{}, err
	}
	out, err := s.build(k, chainID, nonce, fee, msg)
	if err == nil {
		acct.next, acct.known = nonce+1, true
	}
	return out, err
}

// SignAndSubmit signs msg from wallet name (with password, or with its
// unlocked key when password is empty) and submits it. fee 0 means the
// chain's minimum fee. It returns once the node accepted the transaction
// into its mempool; it is not yet committed.
func (s *Service) SignAndSubmit(ctx context.Context, name, password string, msg tx.Msg, fee coin.Amount) (Submitted, error) {
	if err := checkMsg(msg); err != nil {
		return Submitted{}, err
	}
	if s.node == nil {
		return Submitted{}, ErrNoNode
	}
	k, release, err := s.signer(name, password)
	if err != nil {
		return Submitted{}, err
	}
	defer release()
	ci, err := s.chainInfo(ctx, false)
	if err != nil {
		return Submitted{}, err
	}
	autoFee := fee == 0
	if autoFee {
		fee = ci.MinFee
	}
	addr := k.Address()
	acct := s.account(addr)
	acct.mu.Lock()
	defer acct.mu.Unlock()
	nonce, err := s.nextNonce(ctx, acct, addr)
	if err != nil {
		return Submitted{}, err
	}
	retried := false
	for {
		signed, err := s.build(k, ci.ChainID, nonce, fee, msg)
		if err != nil {
			return Submitted{}, err
		}
		res, err := s.node.Submit(ctx, signed.Bytes)
		if err == nil {
			acct.next, acct.known = nonce+1, true
			hash := res.TxHash
			if hash == "" {
				hash = signed.TxHash
			}
			s.log.Info("tx submitted", "wallet", name, "from", addr.String(), "type", msg.Type, "nonce", nonce, "fee", fee.String(), "tx", hash)
			return Submitted{TxHash: hash, Status: "pending", From: addr, Nonce: nonce, Fee: fee, ChainID: ci.ChainID, Type: msg.Type}, nil
		}
		if retried || ctx.Err() != nil {
			return Submitted{}, nodeError("submit", err)
		}
		switch {
		case isCode(err, tx.ErrBadNonce) || isCode(err, tx.ErrNonceGap):
			acc, aerr := s.node.Account(ctx, addr)
			if aerr != nil {
				return Submitted{}, nodeError("submit", err)
			}
			s.log.Info("nonce resync", "from", addr.String(), "tried", nonce, "node", acc.Nonce)
			nonce = acc.Nonce
			acct.next, acct.known = acc.Nonce, true
		case autoFee && isCode(err, tx.ErrFeeTooLow):
			fresh, cerr := s.chainInfo(ctx, true)
			if cerr != nil || fresh.MinFee == fee {
				return Submitted{}, nodeError("submit", err)
			}
			fee = fresh.MinFee
		default:
			return Submitted{}, nodeError("submit", err)
		}
		retried = true
	}
}

// Send transfers amount to to from wallet name (see SignAndSubmit).
func (s *Service) Send(ctx context.Context, name, password string, to address.Address, amount, fee coin.Amount) (Submitted, error) {
	if amount == 0 {
		return Submitted{}, fmt.Errorf("%w: amount must be positive", ErrInvalidAmount)
	}
	if to.IsZero() {
		return Submitted{}, fmt.Errorf("%w: recipient required", ErrInvalidAddress)
	}
	return s.SignAndSubmit(ctx, name, password, bank.NewSendMsg(to, amount), fee)
}

func checkMsg(m tx.Msg) error {
	if m.Type == "" || len(m.Type) > 64 {
		return fmt.Errorf("%w: message type must be 1-64 bytes", ErrInvalidRequest)
	}
	if len(m.Body) == 0 {
		return fmt.Errorf("%w: message body is empty", ErrInvalidRequest)
	}
	if err := cbor.Wellformed(m.Body); err != nil {
		return fmt.Errorf("%w: message body is not one well-formed CBOR item: %v", ErrInvalidRequest, err)
	}
	return nil
}

// isCode reports whether a node error carries the code of a chain error,
// whether it came over HTTP (*httpx.APIError) or in-process (*errs.Error).
func isCode(err error, target *errs.Error) bool {
	var api *httpx.APIError
	return errors.Is(err, target) || errors.As(err, &api) && api.Code == target.Name
}

func (s *Service) build(k *keystore.Key, chainID string, nonce uint64, fee coin.Amount, msg tx.Msg) (_ Signed, err error) {
	defer func() { // tx encoding panics on a body it cannot encode; checkMsg should have caught it
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: cannot encode the transaction: %v", ErrInvalidRequest, r)
		}
	}()
	t := &tx.Tx{ChainID: chainID, Nonce: nonce, Fee: fee, Msg: msg}
	if err := k.SignTx(t); err != nil {
		return Signed{}, fmt.Errorf("%w: %v", ErrLocked, err)
	}
	raw, err := t.Encode()
	if err != nil {
		return Signed{}, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	if len(raw) > tx.MaxSize {
		return Signed{}, fmt.Errorf("%w: transaction is %d bytes, limit %d", ErrInvalidRequest, len(raw), tx.MaxSize)
	}
	return Signed{Tx: t, Bytes: raw, TxHash: tx.HashString(tx.Hash(raw))}, nil
}

func (s *Service) account(a address.Address) *account {
	s.mu.Lock()
	defer s.mu.Unlock()
	acct := s.accounts[a]
	if acct == nil {
		acct = &account{}
		s.accounts[a] = acct
	}
	return acct
}

// nextNonce is max(the node's next nonce, the local next nonce). The
// caller holds acct.mu.
func (s *Service) nextNonce(ctx context.Context, acct *account, a address.Address) (uint64, error) {
	if s.node == nil {
		return 0, ErrNoNode
	}
	acc, err := s.node.Account(ctx, a)
	if err != nil {
		return 0, nodeError("account", err)
	}
	n := acc.Nonce
	if acct.known && acct.next > n {
		n = acct.next
	}
	return n, nil
}

// chainInfo returns the cached chain id and minimum fee, refreshed after
// chainInfoTTL or when refresh is set.
func (s *Service) chainInfo(ctx context.Context, refresh bool) (rpc.ChainInfo, error) {
	if s.node == nil {
		return rpc.ChainInfo{}, ErrNoNode
	}
	s.mu.Lock()
	ci, ok := s.chain, !refresh && s.chain.ChainID != "" && s.now().Before(s.chainUntil)
	s.mu.Unlock()
	if ok {
		return ci, nil
	}
	ci, err := s.node.Chain(ctx)
	if err != nil {
		return rpc.ChainInfo{}, nodeError("chain info", err)
	}
	if ci.ChainID == "" {
		return rpc.ChainInfo{}, fmt.Errorf("%w: node reported no chain id", ErrNodeUnavailable)
	}
	s.mu.Lock()
	s.chain, s.chainUntil = ci, s.now().Add(chainInfoTTL)
	s.mu.Unlock()
	return ci, nil
}

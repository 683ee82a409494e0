package walletd_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/walletd"
)

// funded makes wallets "from" (funded) and "to" through the Service.
func funded(t *testing.T, e *env) (from, to address.Address) {
	t.Helper()
	ctx := context.Background()
	f, err := e.svc.Create(ctx, "from", "pw")
	if err != nil {
		t.Fatal(err)
	}
	tw, _ := e.svc.Create(ctx, "to", "pw")
	e.node.Fund(f.Address, 1000*coin.Unit)
	return f.Address, tw.Address
}

func TestConcurrentSendsGetConsecutiveNonces(t *testing.T) {
	e := newEnv(t)
	_, to := funded(t, e)
	ctx := context.Background()
	if _, err := e.svc.Unlock(ctx, "from", "pw", time.Minute); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	nonces := make([]uint64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.svc.Send(ctx, "from", "", to, coin.Unit, 0)
			if err != nil {
				t.Error(err)
				return
			}
			nonces[i] = res.Nonce
		}()
	}
	wg.Wait()
	sort.Slice(nonces, func(i, j int) bool { return nonces[i] < nonces[j] })
	for i, got := range nonces {
		if got != uint64(i) {
			t.Fatalf("nonces %v are not 0..%d", nonces, n-1)
		}
	}
	if e.node.BalanceOf(to) != n*coin.Unit {
		t.Fatalf("recipient has %s", e.node.BalanceOf(to))
	}
}

func TestNonceResyncOnRejection(t *testing.T) {
	e := newEnv(t)
	from, to := funded(t, e)
	ctx := context.Background()
	if _, err := e.svc.Send(ctx, "from", "pw", to, 1, 0); err != nil {
		t.Fatal(err)
	}
	// The node forgets our transaction (say, dropped from its mempool):
	// locally we would use nonce 1, the node expects 0 -> nonce_gap,
	// resync, retry with 0.
	e.node.SetNonce(from, 0)
	res, err := e.svc.Send(ctx, "from", "pw", to, 1, 0)
	if err != nil || res.Nonce != 0 {
		t.Fatalf("after a gap: %+v, %v", res, err)
	}
	// Someone else used the key: the node is ahead; max(node, local) wins
	// without even a retry.
	e.node.SetNonce(from, 9)
	if res, err := e.svc.Send(ctx, "from", "pw", to, 1, 0); err != nil || res.Nonce != 9 {
		t.Fatalf("node ahead: %+v, %v", res, err)
	}
	// A race lost between reading the nonce and submitting: invalid_nonce
	// once, then the retry succeeds.
	e.node.FailNextSubmit(tx.ErrBadNonce)
	if res, err := e.svc.Send(ctx, "from", "pw", to, 1, 0); err != nil || res.Nonce != 10 {
		t.Fatalf("after invalid_nonce: %+v, %v", res, err)
	}
	// It retries only once.
	e.node.FailNextSubmit(tx.ErrBadNonce, tx.ErrBadNonce)
	if _, err := e.svc.Send(ctx, "from", "pw", to, 1, 0); !errors.Is(err, tx.ErrBadNonce) {
		t.Fatalf("twice refused: %v", err)
	}
	if res, err := e.svc.Send(ctx, "from", "pw", to, 1, 0); err != nil || res.Nonce != 11 {
		t.Fatalf("after the failures: %+v, %v", res, err)
	}
}

func TestMinimumFeeChangeIsFollowed(t *testing.T) {
	e := newEnv(t)
	_, to := funded(t, e)
	ctx := context.Background()
	if _, err := e.svc.Send(ctx, "from", "pw", to, 1, 0); err != nil { // caches the chain info
		t.Fatal(err)
	}
	e.node.SetMinFee(testMinFee * 3)
	res, err := e.svc.Send(ctx, "from", "pw", to, 1, 0)
	if err != nil || res.Fee != testMinFee*3 {
		t.Fatalf("after the fee rose: %+v, %v", res, err)
	}
	// An explicit fee is the caller's: no silent raise.
	if _, err := e.svc.Send(ctx, "from", "pw", to, 1, testMinFee); !errors.Is(err, tx.ErrFeeTooLow) {
		t.Fatalf("explicit low fee: %v", err)
	}
}

func TestUnlockExpiryWipesTheKey(t *testing.T) {
	e := newEnv(t)
	_, to := funded(t, e)
	ctx := context.Background()
	w, err := e.svc.Unlock(ctx, "from", "pw", 30*time.Millisecond)
	if err != nil || !w.Unlocked {
		t.Fatalf("unlock = %+v, %v", w, err)
	}
	if _, err := e.svc.Send(ctx, "from", "", to, 1, 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m := gaugeUnlocked(t, e); m == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unlock timer never fired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := e.svc.Send(ctx, "from", "", to, 1, 0); !errors.Is(err, walletd.ErrLocked) {
		t.Fatalf("after expiry: %v", err)
	}
	// Re-unlocking replaces the timeout; LockAll ends everything.
	_, _ = e.svc.Unlock(ctx, "from", "pw", time.Hour)
	_, _ = e.svc.Unlock(ctx, "from", "pw", time.Hour)
	_, _ = e.svc.Unlock(ctx, "to", "pw", time.Hour)
	if gaugeUnlocked(t, e) != 2 {
		t.Fatal("want 2 unlocked")
	}
	e.svc.LockAll()
	if gaugeUnlocked(t, e) != 0 {
		t.Fatal("LockAll left keys")
	}
	if _, err := e.svc.Unlock(ctx, "from", "pw", -time.Second); !errors.Is(err, walletd.ErrInvalidTimeout) {
		t.Fatalf("negative timeout: %v", err)
	}
	if w, _ := e.svc.Unlock(ctx, "from", "pw", 0); w.UnlockedUntil == nil || !w.UnlockedUntil.Equal(e.clock.Now().Add(walletd.DefaultUnlockTimeout)) {
		t.Fatalf("default timeout: %+v", w)
	}
}

func gaugeUnlocked(t *testing.T, e *env) int {
	t.Helper()
	// The gauge counts keys held in memory (List reports by the clock), so
	// it shows the timer's wipe itself.
	r := e.call("GET", "/metrics", "")
	for _, n := range []int{0, 1, 2, 3} {
		if containsLine(r.raw, "aitbc_walletd_unlocked_wallets "+itoa(n)) {
			return n
		}
	}
	t.Fatalf("no gauge in %s", r.raw)
	return -1
}

func TestSignWithoutSubmit(t *testing.T) {
	e := newEnv(t)
	from, to := funded(t, e)
	ctx := context.Background()
	msg := bank.NewSendMsg(to, 5)
	// Fully offline: nonce, chain id and fee given.
	n := uint64(42)
	s, err := e.svc.Sign(ctx, "from", "pw", msg, walletd.SignOptions{Nonce: &n, ChainID: "other-chain", Fee: 7})
	if err != nil {
		t.Fatal(err)
	}
	x, err := tx.Decode(s.Bytes)
	if err != nil || x.Verify() != nil || x.Nonce != 42 || x.ChainID != "other-chain" || x.Fee != 7 || x.Sender() != from {
		t.Fatalf("offline tx %+v, %v", x, err)
	}
	if s.TxHash != tx.HashString(tx.Hash(s.Bytes)) {
		t.Fatal("hash mismatch")
	}
	// Reserved nonces: a batch signs 0, 1, 2 and submits them itself.
	var raws [][]byte
	for i := range 3 {
		s, err := e.svc.Sign(ctx, "from", "pw", msg, walletd.SignOptions{})
		if err != nil || s.Tx.Nonce != uint64(i) || s.Tx.ChainID != testChain || s.Tx.Fee != testMinFee {
			t.Fatalf("sign %d: %+v, %v", i, s.Tx, err)
		}
		raws = append(raws, s.Bytes)
	}
	for _, raw := range raws {
		if _, err := e.node.Submit(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	// And SignAndSubmit continues after them.
	if res, err := e.svc.Send(ctx, "from", "pw", to, 1, 0); err != nil || res.Nonce != 3 {
		t.Fatalf("after batch: %+v, %v", res, err)
	}
	if _, err := e.svc.Sign(ctx, "from", "", msg, walletd.SignOptions{}); !errors.Is(err, walletd.ErrLocked) {
		t.Fatalf("locked sign: %v", err)
	}
	if _, err := e.svc.Sign(ctx, "from", "pw", tx.Msg{}, walletd.SignOptions{}); !errors.Is(err, walletd.ErrInvalidRequest) {
		t.Fatalf("empty msg: %v", err)
	}
}

func TestServiceWithoutHTTP(t *testing.T) {
	ks, err := keystore.New(t.TempDir(), keystore.WithKDF(keystore.InsecureTestKDF()))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := walletd.NewService(walletd.ServiceConfig{Store: ks})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := svc.Create(ctx, "w", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Balance(ctx, "w"); !errors.Is(err, walletd.ErrNoNode) {
		t.Fatalf("balance without node: %v", err)
	}
	if _, err := svc.Balance(ctx, ""); !errors.Is(err, walletd.ErrNoWallet) {
		t.Fatalf("balance without name: %v", err)
	}
	if _, err := walletd.NewService(walletd.ServiceConfig{Store: ks, DefaultWallet: "../x"}); !errors.Is(err, keystore.ErrInvalidName) {
		t.Fatalf("bad default wallet: %v", err)
	}
	if _, err := walletd.NewService(walletd.ServiceConfig{}); err == nil {
		t.Fatal("no store accepted")
	}
}

func TestReUnlockExtendsWithoutDisturbingSigners(t *testing.T) {
	e := newEnv(t)
	_, to := funded(t, e)
	ctx := context.Background()
	if _, err := e.svc.Unlock(ctx, "from", "pw", 40*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// Signers keep going while the wallet is unlocked again and again
	// (what a long-running daemon's sender does when it refreshes).
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(done)
		for range 30 {
			if _, err := e.svc.Send(ctx, "from", "", to, 1, 0); err != nil {
				errc <- err
				return
			}
		}
	}()
	for range 5 {
		if _, err := e.svc.Unlock(ctx, "from", "pw", time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	select {
	case err := <-errc:
		t.Fatalf("a signer was disturbed by a re-unlock: %v", err)
	default:
	}
	// The first, short timeout no longer applies.
	time.Sleep(80 * time.Millisecond)
	if _, err := e.svc.Send(ctx, "from", "", to, 1, 0); err != nil {
		t.Fatalf("after the first timeout passed: %v", err)
	}
	if _, err := e.svc.Unlock(ctx, "from", "wrong", time.Hour); !errors.Is(err, keystore.ErrWrongPassword) {
		t.Fatalf("re-unlock with a wrong password: %v", err)
	}
}

func TestLockDuringSigningNeverPanics(t *testing.T) {
	e := newEnv(t)
	_, to := funded(t, e)
	ctx := context.Background()
	msg := bank.NewSendMsg(to, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := uint64(0)
				_, err := e.svc.Sign(ctx, "from", "", msg, walletd.SignOptions{Nonce: &n, ChainID: testChain, Fee: testMinFee})
				if err != nil && !errors.Is(err, walletd.ErrLocked) {
					t.Error(err)
					return
				}
				if _, err := e.svc.SignMessage(ctx, "from", "", "AITBC/tenant/v2\x00", []byte("x")); err != nil && !errors.Is(err, walletd.ErrLocked) {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 50 {
		if _, err := e.svc.Unlock(ctx, "from", "pw", time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Lock(ctx, "from"); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

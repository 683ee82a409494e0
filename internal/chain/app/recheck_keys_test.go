package app

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// keyRecorder is a Reader that remembers every key read through it.
type keyRecorder struct {
	r    state.Reader
	keys [][]byte
}

func (k *keyRecorder) Get(key []byte) ([]byte, error) {
	k.keys = append(k.keys, append([]byte(nil), key...))
	return k.r.Get(key)
}

// TestRecheckKeysCoverWhatChecksTouch runs random transfers (native and
// another denomination, to others, to oneself, to module accounts, with
// too little money, with wrong nonces) through the checks over a Reader
// that records every key read, and requires every key read or written to
// be among those keysOf declares: a recheck that keeps a verdict compares
// only those.
func TestRecheckKeysCoverWhatChecksTouch(t *testing.T) {
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := New(st, "aitbc-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	var keys []ed25519.PrivateKey
	var addrs []address.Address
	g := Genesis{Params: DefaultParams()}
	for i := range 4 {
		k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(40 + i)}, 32))
		keys, addrs = append(keys, k), append(addrs, address.FromPubKey(k.Public().(ed25519.PublicKey)))
		g.Accounts = append(g.Accounts, GenesisAccount{Address: addrs[i], Balance: 10 * coin.Unit})
	}
	gb, _ := json.Marshal(g)
	if _, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: "aitbc-test", AppStateBytes: gb}); err != nil {
		t.Fatal(err)
	}
	targets := append(slices.Clone(addrs), a.bank.Collector(), address.Address{})
	rng := rand.New(rand.NewPCG(3, 4))
	passed := 0
	for range 400 {
		s := rng.IntN(len(keys))
		to := targets[rng.IntN(len(targets))]
		amount := coin.Amount(rng.IntN(3)) * coin.Unit / 2
		if rng.IntN(5) == 0 {
			amount = 20 * coin.Unit
		}
		msg := bank.NewSendMsg(to, amount)
		if rng.IntN(4) == 0 {
			msg = bank.NewSendDenomMsg(to, "btc", amount)
		}
		nonce, _ := getUint(a.checkState, keyNonce(addrs[s]))
		if rng.IntN(6) == 0 {
			nonce += uint64(rng.IntN(3)) - 1
		}
		x := &tx.Tx{ChainID: "aitbc-test", Nonce: nonce, Fee: DefaultParams().MinFee, Msg: msg}
		x.Sign(keys[s])
		raw, _ := x.Encode()
		x, err := tx.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		declared := keysOf(x)
		rec := &keyRecorder{r: a.checkState}
		kv := state.NewCache(rec)
		p, env := a.checkEnv()
		_, execErr := a.execTx(kv, x, tx.Hash(raw), p, env)
		if declared == nil {
			// Not decodable: never recorded, so never kept; it must not pass.
			if execErr == nil {
				t.Fatal("a transfer keysOf cannot read passed its checks")
			}
			continue
		}
		touched := rec.keys
		for _, w := range kv.Sorted() {
			touched = append(touched, w.Key)
		}
		for _, k := range touched {
			if !slices.ContainsFunc(declared, func(d []byte) bool { return bytes.Equal(d, k) }) {
				t.Fatalf("a transfer (%v) touched %q, which keysOf does not declare", execErr, k)
			}
		}
		if execErr == nil {
			passed++
			if kv.Len() != len(declared) {
				t.Fatalf("a passing transfer wrote %d keys, keysOf declares %d", kv.Len(), len(declared))
			}
			for _, w := range kv.Sorted() {
				a.checkState.Set(w.Key, w.Value)
			}
		}
	}
	if passed == 0 {
		t.Fatal("no transfer passed: the test compared nothing")
	}
}

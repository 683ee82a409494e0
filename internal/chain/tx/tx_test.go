package tx_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

func signed(t testing.TB, chainID string, nonce uint64) (*tx.Tx, ed25519.PrivateKey) {
	t.Helper()
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	to := address.FromPubKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)).Public().(ed25519.PublicKey))
	x := &tx.Tx{ChainID: chainID, Nonce: nonce, Fee: 1000, Msg: bank.NewSendMsg(to, 5*coin.Unit)}
	x.Sign(priv)
	return x, priv
}

func TestEncodeDecodeVerify(t *testing.T) {
	x, priv := signed(t, "aitbc-devnet", 3)
	b, err := x.Encode()
	if err != nil {
		t.Fatal(err)
	}
	y, err := tx.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := y.Verify(); err != nil {
		t.Fatalf("signature of decoded tx: %v", err)
	}
	if y.Sender() != address.FromPubKey(priv.Public().(ed25519.PublicKey)) || y.Nonce != 3 || y.Fee != 1000 {
		t.Fatalf("decoded fields differ: %+v", y)
	}
	b2, _ := y.Encode()
	if !bytes.Equal(b, b2) {
		t.Fatal("re-encoding changed the bytes")
	}
	to, amt, err := bank.DecodeSend(y.Msg)
	if err != nil || amt != 5*coin.Unit || to.IsZero() {
		t.Fatalf("DecodeSend = %v %v %v", to, amt, err)
	}
}

func TestSignatureBindsEveryField(t *testing.T) {
	x, _ := signed(t, "aitbc-devnet", 1)
	mutations := map[string]func(*tx.Tx){
		"chain id": func(t *tx.Tx) { t.ChainID = "aitbc-other" },
		"nonce":    func(t *tx.Tx) { t.Nonce++ },
		"fee":      func(t *tx.Tx) { t.Fee++ },
		"msg type": func(t *tx.Tx) { t.Msg.Type = "bank/other" },
		"msg body": func(t *tx.Tx) { t.Msg.Body = append([]byte(nil), t.Msg.Body...); t.Msg.Body[len(t.Msg.Body)-1]++ },
		"pubkey": func(t *tx.Tx) {
			other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
			t.PubKey = other.Public().(ed25519.PublicKey)
		},
		"sig": func(t *tx.Tx) { t.Sig = append([]byte(nil), t.Sig...); t.Sig[0] ^= 1 },
	}
	for name, mut := range mutations {
		y := *x
		mut(&y)
		if err := y.Verify(); !errors.Is(err, tx.ErrBadSignature) {
			t.Errorf("%s changed but signature still verifies (err=%v)", name, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	x, _ := signed(t, "aitbc-devnet", 1)
	good, _ := x.Encode()
	noncanon := append([]byte(nil), good...)
	// Re-encode the nonce (1) as a two-byte uint8 (0x18 0x01): same value, non-canonical form.
	idx := bytes.Index(noncanon, []byte{0x6c, 'a', 'i', 't', 'b', 'c', '-', 'd', 'e', 'v', 'n', 'e', 't', 0x01})
	if idx < 0 {
		t.Fatal("test setup: nonce not found")
	}
	noncanon = append(noncanon[:idx+13], append([]byte{0x18, 0x01}, noncanon[idx+14:]...)...)
	short := *x
	short.Sig = short.Sig[:10]
	shortSig, _ := short.Encode()
	big := make([]byte, tx.MaxSize+1)
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"empty":         {nil, tx.ErrMalformed},
		"garbage":       {[]byte("hello world"), tx.ErrMalformed},
		"truncated":     {good[:len(good)-5], tx.ErrMalformed},
		"trailing byte": {append(append([]byte(nil), good...), 0), tx.ErrMalformed},
		"non-canonical": {noncanon, tx.ErrMalformed},
		"short sig":     {shortSig, tx.ErrMalformed},
		"too large":     {big, tx.ErrTooLarge},
	} {
		if _, err := tx.Decode(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
}

func TestHashParse(t *testing.T) {
	h := tx.Hash([]byte("x"))
	s := tx.HashString(h)
	for _, in := range []string{s, s[2:], "0X" + s[2:]} {
		if got, err := tx.ParseHash(in); err != nil || got != h {
			t.Errorf("ParseHash(%q) = %x, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0x12", "zz" + s[4:]} {
		if _, err := tx.ParseHash(in); err == nil {
			t.Errorf("ParseHash(%q) accepted", in)
		}
	}
}

// FuzzDecode checks that any input either fails to decode or round-trips to
// the same bytes (so every accepted transaction has one encoding).
func FuzzDecode(f *testing.F) {
	x, _ := signed(f, "aitbc-devnet", 1)
	good, _ := x.Encode()
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x86, 0x60, 0x00, 0x00, 0x40, 0x82, 0x60, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		y, err := tx.Decode(b)
		if err != nil {
			return
		}
		out, err := y.Encode()
		if err != nil {
			t.Fatalf("decoded tx does not encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip changed bytes:\n in %x\nout %x", b, out)
		}
		_ = y.Verify()
		_, _, _ = bank.DecodeSend(y.Msg)
	})
}

func TestMalformedBodyNeitherPanicsNorSigns(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	x := &tx.Tx{ChainID: "c", Nonce: 0, Fee: 1, Msg: tx.Msg{Type: "bank/send", Body: []byte{0xff, 0x00}}}
	x.Sign(priv)
	if x.Sig != nil {
		t.Fatal("signed a transaction with a malformed body")
	}
	if _, err := x.Encode(); err == nil {
		t.Fatal("encoded a transaction with a malformed body")
	}
	if err := x.Verify(); !errors.Is(err, tx.ErrBadSignature) {
		t.Fatalf("verify: %v", err)
	}
}

// TestSenderFollowsThePublicKey: Decode remembers the sender, but a
// transaction whose key is replaced afterwards (re-signed by another key)
// must report the new one.
func TestSenderFollowsThePublicKey(t *testing.T) {
	x, priv := signed(t, "aitbc-devnet", 1)
	b, _ := x.Encode()
	y, err := tx.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := address.FromPubKey(priv.Public().(ed25519.PublicKey)); y.Sender() != want {
		t.Fatalf("decoded sender %s, want %s", y.Sender(), want)
	}
	y.PubKey[0] ^= 1 // changed in place
	if y.Sender() != address.FromPubKey(y.PubKey) {
		t.Fatal("sender not recomputed after the key changed in place")
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	y.Sign(other)
	if want := address.FromPubKey(other.Public().(ed25519.PublicKey)); y.Sender() != want {
		t.Fatalf("after re-signing: sender %s, want %s", y.Sender(), want)
	}
}

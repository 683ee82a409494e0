package keystore_test

import (
	"fmt"
	"os"

	"github.com/aitbc/aitbc/internal/keystore"
)

// A recovery phrase always gives the same address: BIP-39 seed with an
// empty passphrase, SLIP-0010 ed25519 at m/44'/8006'/0'/0'/0'. These
// addresses were also computed by an independent implementation; if they
// ever change, every backed-up wallet would restore to a different account.
func ExampleAddressFromMnemonic() {
	for _, phrase := range []string{
		"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art",
		"legal winner thank year wave sausage worth useful legal winner thank yellow",
	} {
		a, err := keystore.AddressFromMnemonic(phrase)
		if err != nil {
			panic(err)
		}
		fmt.Println(a)
	}
	// Output:
	// aitbc1d33a8jkdevvufnsp57pw99lu67z9r80s98m9r5
	// aitbc18ck5g72njk5de7gyh6z694nnxcc7yf5m2r0kj0
}

// The devnet makes its funded wallet this way: created on the first start,
// found (and its password checked) on every later one.
func ExampleStore_EnsureWallet() {
	home, _ := os.MkdirTemp("", "aitbc-example")
	defer os.RemoveAll(home)
	ks, err := keystore.ForHome(home, keystore.WithKDF(keystore.InsecureTestKDF()))
	if err != nil {
		panic(err)
	}
	first, _ := ks.EnsureWallet("genesis-ops", "123")
	again, _ := ks.EnsureWallet("genesis-ops", "123")
	_, err = ks.EnsureWallet("genesis-ops", "not-123")
	fmt.Println(first == again, err)
	// Output: true keystore: wrong password
}

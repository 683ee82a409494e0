package keystore

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
)

// FuzzDecodeFile feeds arbitrary bytes to the keystore file decoder: it
// must never panic, and a file it accepts must re-encode to a file it
// accepts with the same header.
func FuzzDecodeFile(f *testing.F) {
	ent := bytes.Repeat([]byte{7}, 32)
	priv, _ := keyFromEntropy(ent)
	addr := address.FromPubKey(priv.Public().(ed25519.PublicKey))
	good, err := seal("w", addr, time.Unix(1700000000, 0), ent, "p", InsecureTestKDF(), make([]byte, saltLen), make([]byte, 24))
	if err != nil {
		f.Fatal(err)
	}
	data, _ := good.marshal()
	f.Add(data)
	f.Add([]byte("{}"))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte("null"))
	f.Add(bytes.Replace(data, []byte(`"n": 16`), []byte(`"n": 1073741824`), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeFile(b)
		if err != nil {
			return
		}
		out, err := p.f.marshal()
		if err != nil {
			t.Fatal(err)
		}
		q, err := decodeFile(out)
		if err != nil {
			t.Fatalf("re-encoded file refused: %v", err)
		}
		if !bytes.Equal(p.f.additionalData(), q.f.additionalData()) || q.addr != p.addr {
			t.Fatal("header changed in a round trip")
		}
		// Opening must not panic either (cheap KDF settings only, to keep
		// the fuzzer fast).
		if p.f.KDF.N*p.f.KDF.R*p.f.KDF.P <= 1<<13 {
			_, _ = p.open("p")
		}
	})
}

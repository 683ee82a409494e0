package bridge_test

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/aitbc/aitbc/internal/btcnode"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
)

// TestChainCustodyIsBtcnodesMultisig: the chain module builds the bridge's
// m-of-n script itself (the chain imports no Bitcoin client), and the
// daemons sign with btcnode's Multisig; for deposit and change keys of a
// 2-of-3 and a 1-of-1 set the two give the same script and address, or
// the chain would hand out addresses the operators cannot spend from.
func TestChainCustodyIsBtcnodesMultisig(t *testing.T) {
	for _, set := range []struct{ m, n int }{{2, 3}, {1, 1}} {
		p := cb.Params{Network: "regtest", Threshold: set.m}
		for i := range set.n {
			_, xpub, err := cb.AccountKey(bytes.Repeat([]byte{byte(i + 1)}, 32), "regtest")
			if err != nil {
				t.Fatal(err)
			}
			p.XPubs = append(p.XPubs, xpub)
		}
		for _, at := range []struct{ chain, index uint32 }{{cb.DepositChain, 0}, {cb.DepositChain, 7}, {cb.ChangeChain, 0}} {
			c, err := p.Custody(at.chain, at.index)
			if err != nil {
				t.Fatal(err)
			}
			ms, err := btcnode.NewMultisig(set.m, append([]*btcec.PublicKey(nil), c.Keys...), btcnode.Params())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c.Script, ms.Script) || c.Addr.EncodeAddress() != ms.Addr.EncodeAddress() {
				t.Fatalf("%d-of-%d at %d/%d: chain %s %x, btcnode %s %x", set.m, set.n, at.chain, at.index, c.Addr, c.Script, ms.Addr, ms.Script)
			}
		}
	}
}

package rpc_test

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/cometbft/cometbft/types"

	"github.com/aitbc/aitbc/internal/rpc"
)

func proofFor(txs types.Txs, i int) (rpc.TxProof, string) {
	p := txs.Proof(i)
	out := rpc.TxProof{Index: p.Proof.Index, Total: p.Proof.Total, LeafHash: hex.EncodeToString(p.Proof.LeafHash), Raw: base64.StdEncoding.EncodeToString(p.Data)}
	for _, a := range p.Proof.Aunts {
		out.Aunts = append(out.Aunts, hex.EncodeToString(a))
	}
	return out, hex.EncodeToString(txs.Hash())
}

func TestVerifyProof(t *testing.T) {
	txs := types.Txs{[]byte("a"), []byte("bb"), []byte("ccc"), []byte("dddd"), []byte("eeeee")}
	for i := range txs {
		p, root := proofFor(txs, i)
		if err := rpc.VerifyProof(p, root); err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
	}
	p, root := proofFor(txs, 2)
	bad := map[string]func(*rpc.TxProof, *string){
		"other tx bytes": func(p *rpc.TxProof, _ *string) { p.Raw = base64.StdEncoding.EncodeToString([]byte("zzz")) },
		"other root":     func(_ *rpc.TxProof, r *string) { *r = hex.EncodeToString(make([]byte, 32)) },
		"tampered aunt": func(p *rpc.TxProof, _ *string) {
			p.Aunts = append([]string{hex.EncodeToString(make([]byte, 32))}, p.Aunts[1:]...)
		},
		"wrong index":    func(p *rpc.TxProof, _ *string) { p.Index = 3 },
		"index past end": func(p *rpc.TxProof, _ *string) { p.Index = 9 },
		"dropped aunt":   func(p *rpc.TxProof, _ *string) { p.Aunts = p.Aunts[:len(p.Aunts)-1] },
		"root not hex":   func(_ *rpc.TxProof, r *string) { *r = "xyz" },
		"raw not base64": func(p *rpc.TxProof, _ *string) { p.Raw = "!!" },
	}
	for name, mut := range bad {
		q := p
		q.Aunts = append([]string(nil), p.Aunts...)
		r := root
		mut(&q, &r)
		if err := rpc.VerifyProof(q, r); !errors.Is(err, rpc.ErrProof) {
			t.Errorf("%s: err = %v, want ErrProof", name, err)
		}
	}
}

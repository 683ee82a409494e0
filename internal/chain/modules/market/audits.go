package market

import (
	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// RecordFraud counts a fraud the audits module confirmed against a, a
// miner (and, when it is one, a provider): a dispute opened and lost, so
// its reputation (Score's disputes part) falls as a lost payout dispute
// makes it fall.
func (k *Keeper) RecordFraud(kv *state.Cache, a address.Address) error {
	return k.updateFacts(kv, a, func(f *Facts) { f.Disputes++; f.DisputesLost++ })
}

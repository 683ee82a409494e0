package pools

import "github.com/aitbc/aitbc/internal/chain/coin"

// PoolSplit shares what a pool earned in an epoch (its members' job pay
// and rewards): feeBps to the operator, the rest between members by the
// output tokens each settled for the pool in the epoch. What rounding
// leaves, or everything after the fee when nobody recorded work, goes to
// the operator: operator = accrued − Σ shares.
func PoolSplit(accrued coin.Amount, feeBps uint64, tokens []uint64) (operator coin.Amount, shares []coin.Amount) {
	shares = make([]coin.Amount, len(tokens))
	rest := accrued - accrued.MulDiv(feeBps, 10_000)
	var total uint64
	for _, t := range tokens {
		total += t
	}
	operator = accrued
	if total == 0 {
		return operator, shares
	}
	for i, t := range tokens {
		shares[i] = rest.MulDiv(t, total)
		operator -= shares[i]
	}
	return operator, shares
}

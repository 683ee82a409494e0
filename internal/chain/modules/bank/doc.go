// Package bank is the chain module that owns balances, transfers and the
// token supply: how much was minted (at genesis, later by rewards), how
// much was burned, and what is in circulation. Other modules move funds
// only through it, with the few methods each declares in its own Bank
// interface; money a module holds sits in its module accounts, which
// ordinary transfers cannot pay into. Clients build transfers with
// NewSendMsg.
//
// Invariants (checked after every block in tests, and by aitbc chain
// audit): the circulating supply equals the sum of every balance, module
// accounts included, and equals minted minus burned.
package bank

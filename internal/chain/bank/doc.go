// Package bank is the chain module that owns balances, transfers and the
// token supply (including the burned amount). Other modules move funds
// through its Keeper; clients build transfers with NewSendMsg.
package bank

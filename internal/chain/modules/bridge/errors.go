package bridge

import "github.com/aitbc/aitbc/internal/chain/errs"

// Errors of the "bridge" codespace: one per refusal, so that a client can
// tell the user exactly what was wrong (and nothing was changed).
var (
	ErrDisabled       = errs.Register("bridge", 2, "bridge_disabled", "this chain has no Bitcoin bridge")
	ErrParams         = errs.Register("bridge", 3, "invalid_bridge_params", "invalid bridge parameters")
	ErrNotOperator    = errs.Register("bridge", 4, "not_bridge_operator", "the signer is not one of the bridge's operators")
	ErrDust           = errs.Register("bridge", 5, "below_dust", "amount below the bridge's minimum (dust limit)")
	ErrBTCAddress     = errs.Register("bridge", 6, "invalid_btc_address", "not a valid Bitcoin address for the bridge's network")
	ErrFunds          = errs.Register("bridge", 7, "insufficient_btc", "the account holds less btc than that")
	ErrUnknownAddress = errs.Register("bridge", 8, "unknown_deposit_address", "not one of the bridge's deposit addresses")
	ErrMinted         = errs.Register("bridge", 9, "deposit_minted", "this deposit was already minted")
	ErrAttested       = errs.Register("bridge", 10, "already_attested", "the operator has already attested this deposit")
	ErrMismatch       = errs.Register("bridge", 11, "attestation_mismatch", "the attestation disagrees with the other operators' on this deposit")
	ErrNoWithdrawal   = errs.RegisterNotFound("bridge", 12, "withdrawal_not_found", "no such withdrawal")
	ErrPaid           = errs.Register("bridge", 13, "withdrawal_paid", "the withdrawal's payment is already recorded")
	ErrHalted         = errs.Register("bridge", 14, "bridge_halted", "the bridge is halted (a Bitcoin reorganisation deeper than its confirmations)")
	ErrNoAddress      = errs.RegisterNotFound("bridge", 15, "no_deposit_address", "the account has no deposit address yet")
	ErrNoDeposit      = errs.RegisterNotFound("bridge", 16, "deposit_not_found", "no such deposit")
	ErrInvalid        = errs.Register("bridge", 17, "invalid_bridge_msg", "invalid bridge message")
	ErrAddressesFull  = errs.Register("bridge", 18, "deposit_addresses_exhausted", "the bridge's key has no deposit address left to give")
	ErrAlreadyHalted  = errs.Register("bridge", 19, "bridge_already_halted", "the bridge is already halted")
	ErrAmountTooLarge = errs.Register("bridge", 20, "btc_amount_too_large", "amount above the most bitcoin there can be")
	ErrHasAddress     = errs.Register("bridge", 21, "deposit_address_exists", "the account already has a deposit address")
	ErrQuery          = errs.Register("bridge", 22, "invalid_bridge_query", "invalid bridge query argument")
)

// Errors of the payouts signed by m of the operators (custody.go, payout.go).
var (
	ErrNotProposer    = errs.Register("bridge", 23, "not_payout_proposer", "the signer is not the withdrawal's designated payout proposer at this height")
	ErrProposed       = errs.Register("bridge", 24, "payout_proposed", "the withdrawal already has a payout proposal")
	ErrPayoutTx       = errs.Register("bridge", 25, "invalid_payout_tx", "the payout transaction is malformed (encoding, version, lock time, sequence, scripts, counts)")
	ErrPayoutMismatch = errs.Register("bridge", 26, "payout_mismatch", "the payout does not pay the withdrawal's amount to its address with change to the bridge, or is not the proposal")
	ErrNotBridgeInput = errs.Register("bridge", 27, "not_bridge_input", "an input is not an output the bridge holds (a minted deposit or a payout's change)")
	ErrInputLocked    = errs.Register("bridge", 28, "bridge_input_locked", "an input is already spent by another withdrawal's payout proposal")
	ErrPayoutFee      = errs.Register("bridge", 29, "payout_fee", "the payout's fee is not the withdrawal's fee")
	ErrNoProposal     = errs.RegisterNotFound("bridge", 30, "no_payout_proposal", "the withdrawal has no payout proposal")
	ErrBadShare       = errs.Register("bridge", 31, "bad_signature_share", "a signature share does not verify against the operator's key and the payout")
	ErrShared         = errs.Register("bridge", 32, "share_given", "the operator has already signed this payout")
	ErrUnsigned       = errs.Register("bridge", 33, "payout_unsigned", "the payout has fewer signature shares than the threshold")
)

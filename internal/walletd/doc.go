// Package walletd is the AITBC wallet daemon: a Service that manages the
// encrypted wallets of one home directory (package keystore) and signs and
// submits transactions through a chain node, an HTTP Server that offers the
// Service on 127.0.0.1:8002 behind an API key, and a Client for that API.
//
// Service and Client have the same methods, so a caller (the CLI) can use
// the daemon when one runs and the keystore directly when none does.
//
// Signing: SignAndSubmit fetches the chain id and minimum fee (cached), the
// account's next nonce from the node (its mempool view), takes the larger
// of it and the nonce this Service would use next (so quick consecutive
// sends get consecutive nonces without waiting for blocks), signs and
// submits. A nonce the node refuses (invalid_nonce, nonce_gap) makes it
// resynchronise from the node and retry once; so does fee_too_low when the
// fee was the chain minimum (the minimum may have changed).
//
// Unlock keeps a decrypted key in memory until its timeout or Lock, and
// wipes it then; while unlocked, signing calls need no password. The
// daemon never logs or returns a private key or a password. Backup returns
// the recovery phrase, and only to a caller that gives the password.
//
// Who imports it: the CLI (wallet commands, `aitbc wallet daemon`) and the
// devnet (which runs the daemon in-process). It depends on keystore, the
// chain's tx/bank/coin types and the node's rpc types, never on the node.
package walletd

// Package keystore keeps AITBC wallets on disk: one encrypted JSON file per
// wallet, <home>/wallets/<name>.json, holding the wallet's BIP-39 entropy.
//
// # What is stored
//
// The secret of a wallet is its BIP-39 entropy (256 bits, 24 words, for a
// wallet made here; a restored wallet keeps whatever length its phrase had,
// 12 to 24 words). Everything else is derived from it, so `backup` can print
// the phrase and `restore` recreates the same address on any machine:
//
//	entropy → mnemonic (BIP-39 English word list)
//	        → seed = BIP-39 seed(mnemonic, passphrase "")          (PBKDF2-SHA512, 2048 rounds)
//	        → SLIP-0010 ed25519 key at m/44'/8006'/0'/0'/0'         (every level hardened)
//	        → ed25519 private key → public key → address (package address)
//
// 8006 is AITBC's coin type in the BIP-44 path; it is not registered in
// SLIP-0044 and is chosen here (it is also the node's REST port). The path
// is fixed: one account per wallet. Because it follows BIP-39 and SLIP-0010
// exactly, any SLIP-0010 implementation given the same phrase and path finds
// the same key (see the test vectors in derive_test.go).
//
// # File format (version 1)
//
//	{
//	  "version": 1,
//	  "name": "customer-1",
//	  "address": "aitbc1...",
//	  "created": "2026-01-02T03:04:05Z",
//	  "secret": "bip39-entropy",
//	  "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1},
//	  "salt": "<base64, 32 bytes>",
//	  "cipher": "xchacha20-poly1305",
//	  "nonce": "<base64, 24 bytes>",
//	  "check": "<base64, 32 bytes>",
//	  "ciphertext": "<base64>"
//	}
//
// scrypt(password, salt, N, r, p) gives 64 bytes: the first 32 are the
// XChaCha20-Poly1305 key, the last 32 key an HMAC-SHA256 whose output over a
// fixed label is "check". The check tells a wrong password (check differs)
// from a damaged file (check matches but the AEAD fails); it costs an
// attacker one scrypt per guess, exactly as the AEAD does. The AEAD's
// additional data is every header field above except nonce, check and
// ciphertext, so changing the name, address, version, KDF parameters or
// salt makes decryption fail. A changed salt or KDF parameter changes the
// derived key and therefore reads as a wrong password: the two cannot be
// told apart. The file's name must match the name inside it.
//
// Files are written atomically (a temporary file in the same directory,
// fsync, then a link or rename into place, then an fsync of the directory),
// with mode 0600 in a directory of mode 0700.
//
// # Safety
//
// The store never logs, and never returns a private key or a password;
// Key formats itself without its secret. Decrypted secrets are wiped
// (overwritten with zeros) as soon as they are no longer needed and Key.Wipe
// wipes a key; in Go this is best effort, since the runtime may have copied
// the bytes. Passwords are taken as strings and cannot be wiped.
//
// Who imports it: the wallet daemon (internal/walletd), the devnet (to make
// its genesis wallet) and tests. The CLI reaches wallets through walletd.
package keystore

// Package rpc is the node's REST API (port 8006): the server that serves a
// running node's state, and the Client that the CLI, the wallet daemon and
// other services use to reach any node.
package rpc

import (
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/httpx"
)

// Health is GET /api/v1/health.
type Health struct {
	Status  string `json:"status"`
	ChainID string `json:"chain_id"`
	Height  int64  `json:"height"`
	NodeID  string `json:"node_id"`
}

// ChainInfo is GET /api/v1/chain: identity, parameters, supply and the
// module accounts (money the chain's modules hold: escrow, deposits, stake).
type ChainInfo struct {
	ChainID        string          `json:"chain_id"`
	Height         int64           `json:"height"`
	MinFee         coin.Amount     `json:"min_fee"`
	BurnBps        uint64          `json:"burn_bps"`     // share of each fee burned, in basis points
	TreasuryBps    uint64          `json:"treasury_bps"` // share of each fee to the treasury; the proposer gets the rest
	Supply         coin.Amount     `json:"supply"`       // circulating: every balance, module accounts included
	Burned         coin.Amount     `json:"burned"`
	Minted         coin.Amount     `json:"minted"` // created after genesis
	GenesisTotal   coin.Amount     `json:"genesis_supply"`
	Denom          string          `json:"denom"`
	ModuleAccounts []ModuleAccount `json:"module_accounts"`
}

// ModuleAccount is a module's account and what it holds.
type ModuleAccount struct {
	Name    string          `json:"name"` // "jobs.escrow"
	Address address.Address `json:"address"`
	Balance coin.Amount     `json:"balance"`
}

// Account is GET /api/v1/account/{address}.
type Account struct {
	Address       address.Address `json:"address"`
	Balance       coin.Amount     `json:"balance"`
	Nonce         uint64          `json:"nonce"` // the nonce the next transaction must carry
	Height        int64           `json:"height"`
	ModuleAccount string          `json:"module_account,omitempty"` // the module account's name, if it is one
}

// SubmitRequest is POST /api/v1/transaction/submit.
type SubmitRequest struct {
	Tx string `json:"tx"` // base64 of the canonical CBOR bytes
}

// SubmitResult is the answer to a submission that passed CheckTx.
type SubmitResult struct {
	TxHash string `json:"tx_hash"`
	Status string `json:"status"` // "pending"
}

// SubmitBatchRequest is POST /api/v1/transactions/submit: up to
// MaxSubmitBatch transactions, admitted one by one in this order.
type SubmitBatchRequest struct {
	Txs []string `json:"txs"` // each the base64 of a transaction's canonical CBOR bytes
}

// MaxSubmitBatch is the most transactions one batch submission carries.
const MaxSubmitBatch = 1000

// SubmitBatchResult answers a batch submission: one entry per transaction,
// in request order, each either accepted ("pending") or refused with the
// error a single submission would have returned.
type SubmitBatchResult struct {
	Accepted int                `json:"accepted"`
	Rejected int                `json:"rejected"`
	Results  []SubmitBatchEntry `json:"results"`
}

// SubmitBatchEntry is the outcome of one transaction of a batch.
type SubmitBatchEntry struct {
	TxHash string             `json:"tx_hash,omitempty"`
	Status string             `json:"status"` // "pending" or "rejected"
	Error  *httpx.ErrorDetail `json:"error,omitempty"`
}

// SubmitOutcome is a backend's answer for one transaction of a batch.
type SubmitOutcome struct {
	Hash string
	Err  error
}

// TxGetRequest is POST /api/v1/transaction/get.
type TxGetRequest struct {
	TxHash string `json:"tx_hash"`
}

// Transaction describes a transaction and where it stands.
type Transaction struct {
	Hash      string          `json:"tx_hash"`
	Status    string          `json:"status"` // pending, committed, failed
	Height    int64           `json:"height,omitempty"`
	Index     uint32          `json:"index,omitempty"`
	Code      uint32          `json:"code,omitempty"`
	Codespace string          `json:"codespace,omitempty"`
	Error     string          `json:"error,omitempty"` // reason when failed
	From      address.Address `json:"from"`
	Nonce     uint64          `json:"nonce"`
	Fee       coin.Amount     `json:"fee"`
	Type      string          `json:"type"`
	Body      any             `json:"body,omitempty"` // decoded message for known types
	Time      *time.Time      `json:"time,omitempty"`
	Raw       string          `json:"raw,omitempty"` // base64 of the tx bytes
}

// TxProof is GET /api/v1/transaction/{hash}/proof: a Merkle proof that the
// transaction is in the block whose header carries DataHash.
type TxProof struct {
	TxHash   string   `json:"tx_hash"`
	Height   int64    `json:"height"`
	Index    int64    `json:"index"`
	Total    int64    `json:"total"`
	LeafHash string   `json:"leaf_hash"` // hex
	Aunts    []string `json:"aunts"`     // hex, leaf to root
	DataHash string   `json:"data_hash"` // the block header's data hash (hex)
	Raw      string   `json:"raw"`       // base64 tx bytes
}

// Block is GET /api/v1/block/{height} and /api/v1/block/latest.
type Block struct {
	Height        int64     `json:"height"`
	Hash          string    `json:"hash"`
	Time          time.Time `json:"time"`
	Proposer      string    `json:"proposer"`
	NumTxs        int       `json:"num_txs"`
	Txs           []string  `json:"txs"` // hashes
	AppHash       string    `json:"app_hash"`
	DataHash      string    `json:"data_hash"`
	LastBlockHash string    `json:"last_block_hash"`
	ChainID       string    `json:"chain_id"`
}

// Head is GET /rpc/head.
type Head struct {
	Height int64     `json:"height"`
	Hash   string    `json:"hash"`
	Time   time.Time `json:"time"`
}

// SyncStatus is GET /api/v1/sync/status.
type SyncStatus struct {
	CatchingUp        bool      `json:"catching_up"`
	LatestBlockHeight int64     `json:"latest_block_height"`
	LatestBlockTime   time.Time `json:"latest_block_time"`
	LatestAppHash     string    `json:"latest_app_hash"`
	EarliestHeight    int64     `json:"earliest_block_height"`
	// NetworkHeight is the highest height committed by this node or any
	// connected peer, as the peers announce it; BlocksBehind is how far
	// this node is below it.
	NetworkHeight int64      `json:"network_height"`
	BlocksBehind  int64      `json:"blocks_behind"`
	Peers         int        `json:"peers"`
	PeerList      []PeerInfo `json:"peer_list"`
	Validator     bool       `json:"validator"`
}

// PeerInfo is one connected peer in SyncStatus.
type PeerInfo struct {
	NodeID   string `json:"node_id"`
	Moniker  string `json:"moniker"`
	Address  string `json:"address"`  // the peer's P2P address as seen from this node
	Outbound bool   `json:"outbound"` // this node dialled it
	Height   int64  `json:"height"`   // the last height the peer announced as committed
}

// TxList is GET /api/v1/account/{address}/transactions.
type TxList struct {
	Address      address.Address `json:"address"`
	Transactions []Transaction   `json:"transactions"`
}

// BlockTxs is GET /api/v1/block/{height}/transactions: a page of a
// block's transactions, each decoded as GET /api/v1/transaction/{hash}
// shows it (without the raw bytes), in block order.
type BlockTxs struct {
	Height       int64         `json:"height"`
	Total        int           `json:"total"`  // transactions in the block
	Offset       int           `json:"offset"` // index of the first entry
	Transactions []Transaction `json:"transactions"`
}

// MaxBlockTxsPage is the most transactions one BlockTxs page holds.
const MaxBlockTxsPage = 500

// ValidatorSet is GET /api/v1/validators: the validators and how many of
// the last Window committed blocks each signed and proposed.
type ValidatorSet struct {
	Height     int64       `json:"height"`
	Window     int         `json:"window"` // blocks looked at: the last Window up to Height
	Validators []Validator `json:"validators"`
}

// Validator is one validator of a ValidatorSet. Its consensus address is
// also an account address (the same derivation from its ed25519 key).
type Validator struct {
	Address  address.Address `json:"address"`
	ConsAddr string          `json:"consensus_address"` // hex, as in block headers
	PubKey   string          `json:"pubkey"`            // hex ed25519
	Power    int64           `json:"power"`
	Name     string          `json:"name,omitempty"`
	Signed   int             `json:"signed"`   // of the window's blocks, how many commits carry its signature
	Proposed int             `json:"proposed"` // of the window's blocks, how many it proposed
	ThisNode bool            `json:"this_node,omitempty"`
}

// MaxValidatorWindow is the most blocks GET /api/v1/validators looks at.
const MaxValidatorWindow = 1000

package web

import (
	"context"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/modules/pools"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/rpc"
)

// chainSnapshot is the chain's identity and supply, read at most once a
// second.
type chainSnapshot struct {
	Info rpc.ChainInfo
}

func (s *Server) chain(ctx context.Context) (rpc.ChainInfo, error) {
	v, err := s.chainInfo.get(ctx, func(ctx context.Context) (chainSnapshot, error) {
		ci, err := s.cfg.Node.Chain(ctx)
		return chainSnapshot{ci}, err
	})
	return v.Info, err
}

// ---- home and explorer home

type homeData struct {
	Height      int64
	ChainID     string
	Miners      int
	Coordinator bool
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) error {
	d := homeData{Coordinator: s.cfg.Coordinator != nil}
	ci, err := s.chain(r.Context())
	if err != nil {
		return err
	}
	d.Height, d.ChainID = ci.Height, ci.ChainID
	if reg, err := s.minerRegistry(r.Context()); err == nil {
		d.Miners = len(reg.Chain.Miners)
	}
	return s.page(w, r, http.StatusOK, "home.html", "AITBC", "", d)
}

type explorerData struct {
	Height       int64
	Info         rpc.ChainInfo
	Blocks       []BlockRow
	Txs          []TxRow
	AvgBlockTime time.Duration
	Charts       []template.HTML // drawn by stats, escaped there
	Window       string
}

func (s *Server) explorerHome(w http.ResponseWriter, r *http.Request) error {
	_, _, height := s.feed.latest(0, 0)
	return s.sharedPage(w, r, "explorer", height, func(ctx context.Context) (string, string, string, any, error) {
		ci, err := s.chain(ctx)
		if err != nil {
			return "", "", "", nil, err
		}
		blocks, txs, height := s.feed.latest(20, 20)
		d := explorerData{Height: max(height, ci.Height), Info: ci, Blocks: blocks, Txs: txs}
		st := s.stats()
		d.AvgBlockTime, d.Charts, d.Window = st.AvgBlockTime, st.Rendered, st.Window
		return "explorer.html", "Explorer", "explorer", d, nil
	})
}

// ---- blocks

type blocksData struct {
	Blocks []BlockRow
	Older  int64 // "before" of the next page; 0 at genesis
}

const blocksPerPage = 25

// blockList returns blocksPerPage blocks below before (0: from the head),
// newest first: from the feed where it holds them, else from the node.
func (s *Server) blockList(ctx context.Context, before int64) (blocksData, error) {
	if before <= 0 {
		_, _, height := s.feed.latest(0, 0)
		if height == 0 { // the feed has not read the chain yet
			head, err := s.cfg.Node.Head(ctx)
			if err != nil {
				return blocksData{}, err
			}
			height = head.Height
		}
		before = height + 1
	}
	var d blocksData
	for h := before - 1; h >= 1 && len(d.Blocks) < blocksPerPage; h-- {
		row, ok := s.feed.kept(h)
		if !ok {
			b, err := s.cfg.Node.Block(ctx, h)
			if err != nil {
				if IsNotFound(err) {
					break // pruned below here
				}
				return d, err
			}
			row = blockRow(b, nil)
		}
		d.Blocks = append(d.Blocks, row)
	}
	if n := len(d.Blocks); n > 0 && d.Blocks[n-1].Height > 1 {
		d.Older = d.Blocks[n-1].Height
	}
	return d, nil
}

func (s *Server) blocksPage(w http.ResponseWriter, r *http.Request) error {
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	d, err := s.blockList(r.Context(), before)
	if err != nil {
		return err
	}
	if wantCSV(r) {
		rows := [][]string{}
		for _, b := range d.Blocks {
			rows = append(rows, []string{strconv.FormatInt(b.Height, 10), b.Hash, b.Time.Format(time.RFC3339Nano), strconv.Itoa(b.NumTxs), b.Proposer})
		}
		return writeCSV(w, "blocks.csv", []string{"height", "hash", "time", "num_txs", "proposer"}, rows)
	}
	return s.page(w, r, http.StatusOK, "blocks.html", "Blocks", "explorer", d)
}

// blockData is a block with its transactions, decoded.
type blockData struct {
	Block rpc.Block
	Txs   []TxRow
	Total int
	More  bool // the block has more transactions than the page shows
}

func parseHeight(s string) (int64, error) {
	h, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || h < 1 {
		return 0, errf(ErrNotFound, "no block %q: a height is a positive whole number", s)
	}
	return h, nil
}

func (s *Server) block(ctx context.Context, h int64) (blockData, error) {
	if d, ok := s.blocks.get(h); ok {
		return d, nil
	}
	b, err := s.cfg.Node.Block(ctx, h)
	if err != nil {
		return blockData{}, err
	}
	d := blockData{Block: b, Total: b.NumTxs}
	if b.NumTxs > 0 {
		page, err := s.cfg.Node.BlockTransactions(ctx, h, 0, rpc.MaxBlockTxsPage)
		if err != nil {
			return d, err
		}
		for _, t := range page.Transactions {
			d.Txs = append(d.Txs, txRow(t))
		}
		d.More = page.Total > len(page.Transactions)
	}
	s.blocks.put(h, d)
	return d, nil
}

func (s *Server) blockPage(w http.ResponseWriter, r *http.Request) error {
	h, err := parseHeight(r.PathValue("height"))
	if err != nil {
		return err
	}
	d, err := s.block(r.Context(), h)
	if err != nil {
		return err
	}
	if wantCSV(r) {
		return writeCSV(w, fmt.Sprintf("block-%d.csv", h), txCSVHeader, txCSVRows(d.Txs))
	}
	// A committed block's page never changes.
	return s.sharedPage(w, r, fmt.Sprintf("block/%d", h), h, func(context.Context) (string, string, string, any, error) {
		return "block.html", fmt.Sprintf("Block %d", h), "explorer", d, nil
	})
}

// ---- transactions

var txCSVHeader = []string{"tx_hash", "height", "index", "time", "type", "status", "from", "to", "amount", "fee", "job_id", "error"}

func txCSVRows(txs []TxRow) [][]string {
	rows := [][]string{}
	for _, t := range txs {
		rows = append(rows, []string{t.Hash, strconv.FormatInt(t.Height, 10), strconv.Itoa(int(t.Index)), t.Time.Format(time.RFC3339Nano),
			t.Type, t.Status, t.From, t.To, t.Amount, t.Fee, t.JobID, t.Error})
	}
	return rows
}

func (s *Server) txsPage(w http.ResponseWriter, r *http.Request) error {
	_, txs, _ := s.feed.latest(0, keepTxs)
	if wantCSV(r) {
		return writeCSV(w, "transactions.csv", txCSVHeader, txCSVRows(txs))
	}
	return s.page(w, r, http.StatusOK, "txs.html", "Transactions", "explorer", txs)
}

// txData is one transaction, decoded, with what it did.
type txData struct {
	Tx      rpc.Transaction
	Row     TxRow
	Fields  []field  // the body, as the module describes it
	Effects []string // what the transaction moved, from its body and the chain's records
}

type field struct {
	Name, Value string
	Link        string // an explorer page for the value, if it names one
}

func (s *Server) txData(ctx context.Context, hash string) (txData, error) {
	if _, err := tx.ParseHash(hash); err != nil {
		return txData{}, errf(ErrNotFound, "no transaction %q: a hash is 64 hex digits", hash)
	}
	if d, ok := s.txs.get(strings.ToLower(hash)); ok {
		return d, nil
	}
	d, err := s.readTx(ctx, hash)
	if err == nil && (d.Tx.Status == "committed" || d.Tx.Status == "failed") {
		s.txs.put(strings.ToLower(hash), d) // a committed transaction never changes
	}
	return d, err
}

func (s *Server) readTx(ctx context.Context, hash string) (txData, error) {
	t, err := s.cfg.Node.Tx(ctx, hash)
	if err != nil {
		return txData{}, err
	}
	d := txData{Tx: t, Row: txRow(t)}
	keys := make([]string, 0, len(d.Row.body))
	for k := range d.Row.body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := fmt.Sprint(d.Row.body[k])
		if f, ok := d.Row.body[k].(float64); ok {
			v = strconv.FormatFloat(f, 'f', -1, 64)
		}
		d.Fields = append(d.Fields, field{Name: k, Value: v, Link: linkFor(k, v)})
	}
	d.Effects = s.effects(ctx, d.Row)
	return d, nil
}

// linkFor links a body field to the explorer page of what it names.
func linkFor(name, v string) string {
	switch {
	case name == "job_id":
		return "/explorer/job/" + v
	case strings.HasPrefix(v, address.HRP+"1"):
		if _, err := address.Parse(v); err == nil {
			return "/explorer/address/" + v
		}
	}
	return ""
}

// effects says what a committed transaction moved. The chain records no
// per-transaction events, so these come from the message itself and, for
// a settlement, the job's own record; each line names its source.
func (s *Server) effects(ctx context.Context, t TxRow) []string {
	if t.Status == "failed" {
		return []string{"Nothing moved but the fee: the transaction failed (" + t.Error + ")."}
	}
	if t.Status != "committed" {
		return []string{"Not committed yet: nothing has moved."}
	}
	var out []string
	switch t.Type {
	case "bank/send":
		out = append(out, fmt.Sprintf("%s sent %s AITBC to %s.", t.From, t.Amount, t.To))
	case "jobs/create", "jobs/create_for":
		out = append(out, fmt.Sprintf("%s AITBC locked in escrow (jobs.escrow) for job %s.", t.Amount, t.JobID))
	case "jobs/deposit":
		out = append(out, fmt.Sprintf("%s AITBC deposited with coordinator %s (held in jobs.deposits).", t.Amount, t.To))
	case "jobs/withdraw":
		out = append(out, fmt.Sprintf("Withdrawal of %s AITBC announced; paid after the release delay.", t.Amount))
	case "jobs/assign":
		out = append(out, fmt.Sprintf("Job %s assigned to miner %s at its registered price.", t.JobID, t.To))
	case "jobs/settle":
		if j, err := jobs.QueryJob(ctx, s.cfg.Node, t.JobID); err == nil && j.Status == "settled" {
			out = append(out, fmt.Sprintf("Miner %s paid %s AITBC; %s AITBC protocol fee (to the block's fee split); %s AITBC commission to the coordinator; %s AITBC refunded to %s (from the job's record).",
				t.To, j.Paid, j.Fee, j.Commission, j.Refund, j.Customer))
		} else {
			out = append(out, fmt.Sprintf("Settlement of job %s for %d output tokens.", t.JobID, t.Tokens))
		}
	case "miners/register":
		out = append(out, fmt.Sprintf("%s AITBC staked (held in miners.stake).", t.Amount))
	case "miners/heartbeat":
		out = append(out, "The miner's heartbeat was recorded.")
	case staking.TypeStake:
		out = append(out, fmt.Sprintf("%s AITBC staked to operator %s (held in %s).", t.Amount, t.To, staking.BondedAccount))
	case staking.TypeUnstake:
		line := fmt.Sprintf("%s AITBC of the stake to operator %s started unbonding: it earns nothing from now on", t.Amount, t.To)
		if snap, err := s.stakeSnap(ctx); err == nil {
			line += fmt.Sprintf(" and is paid back at the end of block %d (an unbonding period of %d blocks)", t.Height+snap.Params.UnbondingBlocks, snap.Params.UnbondingBlocks)
		}
		out = append(out, line+".")
	case staking.TypeCommission:
		if v, ok := t.body["commission_bps"].(float64); ok {
			out = append(out, fmt.Sprintf("The operator's commission becomes %s after the next epoch's payout.", bpsPct(uint64(v))))
		}
	}
	if ci, err := s.chain(ctx); err == nil {
		out = append(out, fmt.Sprintf("Fee %s AITBC: of the block's fees %s are burned, %s go to the treasury and the rest to the block's proposer.",
			t.Fee, bps(ci.BurnBps), bps(ci.TreasuryBps)))
	}
	return out
}

func bps(b uint64) string { return strconv.FormatFloat(float64(b)/100, 'f', -1, 64) + "%" }

func (s *Server) txPage(w http.ResponseWriter, r *http.Request) error {
	d, err := s.txData(r.Context(), r.PathValue("hash"))
	if err != nil {
		return err
	}
	return s.page(w, r, http.StatusOK, "tx.html", "Transaction "+short(d.Tx.Hash), "explorer", d)
}

// ---- addresses

type addressData struct {
	Account  rpc.Account
	Module   string // module account name
	Miner    *miners.View
	Txs      []TxRow
	JobIDs   []string
	Listings []Listing
	Market   bool // the market module is on this chain
	Stake    stakeView
	Pools    poolsView
}

func parseAddress(s string) (address.Address, error) {
	a, err := address.Parse(strings.TrimSpace(s))
	if err != nil {
		return a, errf(ErrNotFound, "no address %q: %v", s, err)
	}
	return a, nil
}

func (s *Server) addressData(ctx context.Context, a address.Address) (addressData, error) {
	_, _, height := s.feed.latest(0, 0)
	return s.addresses.get(ctx, a.String(), height, func(ctx context.Context) (addressData, error) { return s.readAddress(ctx, a) })
}

func (s *Server) readAddress(ctx context.Context, a address.Address) (addressData, error) {
	acc, err := s.cfg.Node.Account(ctx, a)
	if err != nil {
		return addressData{}, err
	}
	d := addressData{Account: acc, Module: acc.ModuleAccount, Market: s.cfg.Market != nil}
	list, err := s.cfg.Node.Transactions(ctx, a, 100)
	if err != nil {
		return d, err
	}
	seen := map[string]bool{}
	for _, t := range list.Transactions {
		row := txRow(t)
		d.Txs = append(d.Txs, row)
		if row.JobID != "" && !seen[row.JobID] {
			seen[row.JobID] = true
			d.JobIDs = append(d.JobIDs, row.JobID)
		}
	}
	if m, err := miners.Query(ctx, s.cfg.Node, a); err == nil {
		d.Miner = &m
	} else if !IsNotFound(err) {
		return d, err
	}
	d.Stake = s.readStake(ctx, a, list.Transactions)
	d.Pools = s.readPools(ctx, a, list.Transactions)
	if s.cfg.Market != nil {
		all, err := s.cfg.Market.Listings(ctx, ListingFilter{})
		if err != nil {
			return d, err
		}
		for _, l := range all {
			if l.Provider == a {
				d.Listings = append(d.Listings, l)
			}
		}
	}
	return d, nil
}

func (s *Server) addressPage(w http.ResponseWriter, r *http.Request) error {
	a, err := parseAddress(r.PathValue("address"))
	if err != nil {
		return err
	}
	d, err := s.addressData(r.Context(), a)
	if err != nil {
		return err
	}
	if wantCSV(r) {
		return writeCSV(w, "transactions-"+a.String()+".csv", txCSVHeader, txCSVRows(d.Txs))
	}
	return s.page(w, r, http.StatusOK, "address.html", "Address "+short(a.String()), "explorer", d)
}

// ---- jobs

// jobData is a job's on-chain record with the receipt its settlement
// carried, and what the browser needs to check that receipt itself.
type jobData struct {
	Job         jobs.View
	SettleTx    string
	Receipt     *coordinator.ReceiptView
	ReceiptB64  string // the receipt's canonical CBOR
	MinerPubKey string // hex, from the miners' registry
	ChainID     string
	Private     bool   // a private job: the chain holds Commitment, not token counts and price (private.go)
	Commitment  string // hex
}

func (s *Server) jobData(ctx context.Context, id string) (jobData, error) {
	if _, err := jobs.ParseID(id); err != nil {
		return jobData{}, errf(ErrNotFound, "no job %q: a job id is 32 hex digits", id)
	}
	if d, ok := s.jobs.get(id); ok {
		return d, nil
	}
	d, err := s.readJob(ctx, id)
	ended := d.Job.Status == "settled" || d.Job.Status == "expired" || d.Job.Status == "canceled"
	complete := (d.Job.Status != "settled" || d.Receipt != nil || d.Private && d.SettleTx != "") && (d.Job.Miner == nil || d.MinerPubKey != "")
	if err == nil && ended && complete {
		s.jobs.put(id, d) // a job that has ended never changes
	}
	return d, err
}

func (s *Server) readJob(ctx context.Context, id string) (jobData, error) {
	j, err := jobs.QueryJob(ctx, s.cfg.Node, id)
	if err != nil {
		return jobData{}, err
	}
	d := jobData{Job: j}
	if ci, err := s.chain(ctx); err == nil {
		d.ChainID = ci.ChainID
	}
	if j.Miner != nil {
		if m, err := miners.Query(ctx, s.cfg.Node, *j.Miner); err == nil {
			d.MinerPubKey = m.PubKey
		}
	}
	if private, err := s.privateJob(ctx, &d); err != nil || private {
		return d, err
	}
	if j.Settled > 0 {
		hash, raw, err := s.settlementOf(ctx, j)
		if err != nil {
			return d, err
		}
		if rv, err := coordinator.NewReceiptView(raw); err == nil {
			d.SettleTx, d.Receipt, d.ReceiptB64 = hash, rv, base64.StdEncoding.EncodeToString(raw)
		}
	}
	return d, nil
}

// settlementOf finds the job's settlement in the block that settled it
// and returns its hash and the receipt's canonical bytes.
func (s *Server) settlementOf(ctx context.Context, j jobs.View) (string, []byte, error) {
	for off := 0; ; off += rpc.MaxBlockTxsPage {
		page, err := s.cfg.Node.BlockTransactions(ctx, j.Settled, off, rpc.MaxBlockTxsPage)
		if err != nil {
			return "", nil, err
		}
		for _, t := range page.Transactions {
			row := txRow(t)
			if row.Type != jobs.TypeSettle || row.Status != "committed" || row.JobID != j.ID {
				continue
			}
			full, err := s.cfg.Node.Tx(ctx, t.Hash)
			if err != nil {
				return "", nil, err
			}
			raw, err := base64.StdEncoding.DecodeString(full.Raw)
			if err != nil {
				return "", nil, err
			}
			x, err := tx.Decode(raw)
			if err != nil {
				return "", nil, err
			}
			var m jobs.MsgSettle
			if err := x.Msg.DecodeBody(&m); err != nil {
				return "", nil, err
			}
			rb, err := m.Receipt.Encode()
			return t.Hash, rb, err
		}
		if len(page.Transactions) == 0 || off+len(page.Transactions) >= page.Total {
			return "", nil, nil
		}
	}
}

func (s *Server) jobPage(w http.ResponseWriter, r *http.Request) error {
	d, err := s.jobData(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.page(w, r, http.StatusOK, "job.html", "Job "+short(d.Job.ID), "explorer", d)
}

// ---- validators

type validatorSnapshot struct{ Set rpc.ValidatorSet }

func (s *Server) validatorSet(ctx context.Context) (rpc.ValidatorSet, error) {
	v, err := s.validators.get(ctx, func(ctx context.Context) (validatorSnapshot, error) {
		vs, err := s.cfg.Node.Validators(ctx, 100)
		return validatorSnapshot{vs}, err
	})
	return v.Set, err
}

func (s *Server) validatorsPage(w http.ResponseWriter, r *http.Request) error {
	vs, err := s.validatorSet(r.Context())
	if err != nil {
		return err
	}
	if wantCSV(r) {
		rows := [][]string{}
		for _, v := range vs.Validators {
			rows = append(rows, []string{v.Address.String(), v.ConsAddr, v.Name, strconv.FormatInt(v.Power, 10),
				strconv.Itoa(v.Signed), strconv.Itoa(vs.Window), strconv.Itoa(v.Proposed)})
		}
		return writeCSV(w, "validators.csv", []string{"address", "consensus_address", "name", "power", "signed", "window", "proposed"}, rows)
	}
	return s.page(w, r, http.StatusOK, "validators.html", "Validators", "explorer", vs)
}

// ---- miners leaderboard

// registrySnapshot is the miners' registry with the coordinator's live
// view of them, read at most once a second.
type registrySnapshot struct {
	Chain     miners.List
	Connected map[address.Address]coordinator.MinerView
	CoordErr  string
}

func (s *Server) minerRegistry(ctx context.Context) (registrySnapshot, error) {
	return s.registry.get(ctx, func(ctx context.Context) (registrySnapshot, error) {
		l, err := miners.QueryAll(ctx, s.cfg.Node)
		if err != nil {
			return registrySnapshot{}, err
		}
		snap := registrySnapshot{Chain: l, Connected: map[address.Address]coordinator.MinerView{}}
		if s.cfg.Coordinator == nil {
			snap.CoordErr = "no coordinator configured"
			return snap, nil
		}
		ms, err := s.cfg.Coordinator.Miners(ctx)
		if err != nil {
			_, _, snap.CoordErr = classify(err)
			return snap, nil
		}
		for _, m := range ms {
			if a, err := address.Parse(m.Address); err == nil {
				snap.Connected[a] = m
			}
		}
		return snap, nil
	})
}

// MinerRow is one miner of the leaderboard: the registry's record, the
// coordinator's live figures and what the explorer's window of blocks
// shows.
type MinerRow struct {
	Rank         int         `json:"rank"`
	Address      string      `json:"address"`
	Models       []string    `json:"models"`
	GPU          string      `json:"gpu"`
	GPUMemoryMB  uint64      `json:"gpu_memory_mb"`
	PricePer1k   coin.Amount `json:"price_per_1k_tokens"`
	Stake        coin.Amount `json:"stake"`
	Status       string      `json:"status"`
	JobsSettled  uint64      `json:"jobs_settled"` // lifetime, from the registry
	TokensOut    uint64      `json:"tokens_out"`   // lifetime, from the registry
	Assigned     int         `json:"assigned_in_window"`
	Settled      int         `json:"settled_in_window"`
	SuccessRate  *float64    `json:"success_rate,omitempty"` // settled/assigned in the window; absent with no assignment
	TokensPerSec *float64    `json:"tokens_per_sec,omitempty"`
	FirstTokenMs *float64    `json:"first_token_ms,omitempty"` // the coordinator's moving average from dispatch to the first streamed token
	Connected    bool        `json:"connected"`
	Slots        int         `json:"slots,omitempty"`
	Running      int         `json:"running,omitempty"`
	Heartbeat    time.Time   `json:"last_heartbeat"`
	Score        *uint32     `json:"reputation_score,omitempty"` // the market module's, 0-100 (the miners page and its JSON)
	Bonded       coin.Amount `json:"bonded_stake"`               // the staking module's: stake delegated to it (the miners page and its JSON)
	Commission   *uint64     `json:"commission_bps,omitempty"`   // absent while nobody has staked to it
}

type leaderboard struct {
	Rows     []MinerRow
	Window   string
	CoordErr string
	Sort     string // the ranked order: one of minerSorts
	StakeErr string // why the staking module could not be read
}

// minerSorts are the leaderboard's orders, the first the default: the
// market module's reputation score, bonded stake, success rate in the
// window, the coordinator's tokens per second and time to first token
// (smaller first), jobs settled.
var minerSorts = []string{"reputation", "stake", "success", "tokens_per_sec", "first_token", "jobs"}

// ranked is the leaderboard with the market module's scores and the
// staking module's bonded stake, in the order asked for (reputation when
// by is not one of minerSorts). Ties keep the jobs-settled order; a
// miner without the figure comes after those with one.
func (s *Server) ranked(ctx context.Context, by string) (leaderboard, error) {
	lb, err := s.leaderboard(ctx)
	if err != nil {
		return lb, err
	}
	lb = s.withScores(ctx, lb)
	rows := slices.Clone(lb.Rows)
	if snap, err := s.stakeSnap(ctx); err != nil {
		_, _, lb.StakeErr = classify(err)
	} else {
		for i := range rows {
			if o, ok := snap.Ops[rows[i].Address]; ok {
				c := o.CommissionBps
				rows[i].Bonded, rows[i].Commission = o.Bonded, &c
			}
		}
	}
	lb.Sort = sortMiners(rows, by)
	lb.Rows = rows
	return lb, nil
}

// sortMiners orders rows by one of minerSorts (the first when by is
// none of them) and numbers their ranks; it returns the order used.
func sortMiners(rows []MinerRow, by string) string {
	if !slices.Contains(minerSorts, by) {
		by = minerSorts[0]
	}
	// opt orders present before absent, then larger first.
	opt := func(ha, hb bool, a, b float64) int {
		switch {
		case ha != hb:
			if ha {
				return -1
			}
			return 1
		case a > b:
			return -1
		case a < b:
			return 1
		}
		return 0
	}
	slices.SortStableFunc(rows, func(a, b MinerRow) int {
		switch by {
		case "reputation":
			return opt(a.Score != nil, b.Score != nil, float64(deref32(a.Score)), float64(deref32(b.Score)))
		case "stake":
			return opt(true, true, float64(a.Bonded), float64(b.Bonded))
		case "success":
			return opt(a.SuccessRate != nil, b.SuccessRate != nil, derefF(a.SuccessRate), derefF(b.SuccessRate))
		case "tokens_per_sec":
			return opt(a.TokensPerSec != nil, b.TokensPerSec != nil, derefF(a.TokensPerSec), derefF(b.TokensPerSec))
		case "first_token": // sooner is better
			return opt(a.FirstTokenMs != nil, b.FirstTokenMs != nil, -derefF(a.FirstTokenMs), -derefF(b.FirstTokenMs))
		}
		return 0 // jobs: the leaderboard's own order
	})
	for i := range rows {
		rows[i].Rank = i + 1
	}
	return by
}

func deref32(p *uint32) uint32 {
	if p == nil {
		return 0
	}
	return *p
}

func derefF(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

func (s *Server) leaderboard(ctx context.Context) (leaderboard, error) {
	reg, err := s.minerRegistry(ctx)
	if err != nil {
		return leaderboard{}, err
	}
	st := s.stats()
	out := leaderboard{Window: st.Window, CoordErr: reg.CoordErr}
	for _, m := range reg.Chain.Miners {
		row := MinerRow{Address: m.Address.String(), Models: m.Models, GPU: m.GPU, GPUMemoryMB: m.GPUMemoryMB, PricePer1k: m.PricePer1k,
			Stake: m.Stake, Status: m.Status, JobsSettled: m.JobsSettled, TokensOut: m.TokensOut, Heartbeat: m.LastHeartbeat,
			Assigned: st.Assigned[m.Address.String()], Settled: st.SettledBy[m.Address.String()]}
		if row.Assigned > 0 {
			r := float64(min(row.Settled, row.Assigned)) / float64(row.Assigned)
			row.SuccessRate = &r
		}
		if c, ok := reg.Connected[m.Address]; ok {
			row.Connected, row.Slots, row.Running = true, c.Slots, c.Running
			if c.TokensPerSec > 0 {
				tps := c.TokensPerSec
				row.TokensPerSec = &tps
			}
			if c.FirstTokenMs != nil {
				ftt := *c.FirstTokenMs
				row.FirstTokenMs = &ftt
			}
		}
		out.Rows = append(out.Rows, row)
	}
	// Ranked by work paid for, then by output, then by address for a
	// stable order.
	slices.SortStableFunc(out.Rows, func(a, b MinerRow) int {
		switch {
		case a.JobsSettled != b.JobsSettled:
			return cmpDesc(a.JobsSettled, b.JobsSettled)
		case a.TokensOut != b.TokensOut:
			return cmpDesc(a.TokensOut, b.TokensOut)
		}
		return strings.Compare(a.Address, b.Address)
	})
	for i := range out.Rows {
		out.Rows[i].Rank = i + 1
	}
	return out, nil
}

func cmpDesc(a, b uint64) int {
	if a > b {
		return -1
	}
	return 1
}

// withScores adds the market module's reputation score to each row, read
// once a block; a miner the module cannot score keeps none.
func (s *Server) withScores(ctx context.Context, lb leaderboard) leaderboard {
	if s.cfg.Market == nil {
		return lb
	}
	_, _, height := s.feed.latest(0, 0)
	scores, err := s.repScores.get(ctx, "all", height, func(ctx context.Context) (map[string]uint32, error) {
		out := map[string]uint32{}
		for _, row := range lb.Rows {
			a, err := address.Parse(row.Address)
			if err != nil {
				continue
			}
			pr, err := s.cfg.Market.Provider(ctx, a)
			if err != nil {
				return nil, err
			}
			out[row.Address] = pr.Reputation.Score
		}
		return out, nil
	})
	if err != nil {
		return lb
	}
	rows := slices.Clone(lb.Rows)
	for i := range rows {
		if sc, ok := scores[rows[i].Address]; ok {
			rows[i].Score = &sc
		}
	}
	lb.Rows = rows
	return lb
}

func (s *Server) minersPage(w http.ResponseWriter, r *http.Request) error {
	lb, err := s.ranked(r.Context(), r.URL.Query().Get("sort"))
	if err != nil {
		return err
	}
	if wantCSV(r) {
		rows := [][]string{}
		for _, m := range lb.Rows {
			rows = append(rows, []string{strconv.Itoa(m.Rank), m.Address, strings.Join(m.Models, " "), m.GPU, strconv.FormatUint(m.GPUMemoryMB, 10),
				m.PricePer1k.String(), m.Stake.String(), m.Status, strconv.FormatUint(m.JobsSettled, 10), strconv.FormatUint(m.TokensOut, 10),
				strconv.Itoa(m.Assigned), strconv.Itoa(m.Settled), optFloat(m.SuccessRate), optFloat(m.TokensPerSec), optFloat(m.FirstTokenMs), strconv.FormatBool(m.Connected),
				optScore(m.Score), m.Bonded.String(), optBps(m.Commission)})
		}
		return writeCSV(w, "miners.csv", []string{"rank", "address", "models", "gpu", "gpu_memory_mb", "price_per_1k_tokens", "stake", "status",
			"jobs_settled", "tokens_out", "assigned_in_window", "settled_in_window", "success_rate", "tokens_per_sec", "first_token_ms", "connected", "reputation_score",
			"bonded_stake", "commission_bps"}, rows)
	}
	return s.page(w, r, http.StatusOK, "miners.html", "Miners", "explorer", lb)
}

func optBps(p *uint64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatUint(*p, 10)
}

func optFloat(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', 3, 64)
}

// ---- supply

type supplyData struct {
	Info  rpc.ChainInfo
	Audit module.Audit
}

// supplyData reads the chain's figures and its audit once a block: the
// audit walks every balance and record, too much to do per view.
func (s *Server) supplyData(ctx context.Context) (supplyData, error) {
	_, _, height := s.feed.latest(0, 0)
	return s.supply.get(ctx, "supply", height, func(ctx context.Context) (supplyData, error) {
		ci, err := s.cfg.Node.Chain(ctx)
		if err != nil {
			return supplyData{}, err
		}
		au, err := s.cfg.Node.Audit(ctx)
		return supplyData{Info: ci, Audit: au}, err
	})
}

func (s *Server) supplyPage(w http.ResponseWriter, r *http.Request) error {
	d, err := s.supplyData(r.Context())
	if err != nil {
		return err
	}
	return s.page(w, r, http.StatusOK, "supply.html", "Supply", "explorer", d)
}

// ---- search

// searchTarget is where a query leads: the page of the one thing it
// names, or "" when nothing matches.
func (s *Server) searchTarget(ctx context.Context, q string) (string, error) {
	q = strings.TrimSpace(q)
	if q == "" || len(q) > 200 {
		return "", nil
	}
	miss := func(err error) bool { return err != nil && (IsNotFound(err) || isBadRequest(err)) }
	switch {
	case isDigits(q):
		h, err := strconv.ParseInt(q, 10, 64)
		if err != nil || h < 1 {
			return "", nil
		}
		if _, err := s.cfg.Node.Block(ctx, h); miss(err) {
			return "", nil
		} else if err != nil {
			return "", err
		}
		return fmt.Sprintf("/explorer/block/%d", h), nil
	case strings.HasPrefix(strings.ToLower(q), address.HRP+"1"):
		a, err := address.Parse(strings.ToLower(q))
		if err != nil {
			return "", nil
		}
		return "/explorer/address/" + a.String(), nil
	}
	hexq := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(q, "0x"), "0X"))
	if isHex(hexq) {
		switch len(hexq) {
		case 32: // a job id
			if _, err := jobs.QueryJob(ctx, s.cfg.Node, hexq); miss(err) {
				break
			} else if err != nil {
				return "", err
			}
			return "/explorer/job/" + hexq, nil
		case 64: // a transaction, or a receipt anchored by a settlement
			if _, err := s.cfg.Node.Tx(ctx, "0x"+hexq); err == nil {
				return "/explorer/tx/0x" + hexq, nil
			} else if !miss(err) {
				return "", err
			}
			if a, err := jobs.QueryReceipt(ctx, s.cfg.Node, hexq); err == nil && a.Anchored {
				return "/explorer/job/" + a.JobID, nil
			}
		}
	}
	if pools.CheckName(q) == nil { // a pool name
		if _, err := s.pool(ctx, q); err == nil {
			return "/explorer/pool/" + q, nil
		} else if !miss(err) {
			return "", err
		}
	}
	if s.cfg.Market != nil { // a service (listing) id
		if l, err := s.cfg.Market.Listing(ctx, q); err == nil {
			return "/marketplace/service/" + l.ID, nil
		} else if !miss(err) {
			return "", err
		}
	}
	return "", nil
}

func isBadRequest(err error) bool {
	st, _, _ := classify(err)
	return st == http.StatusBadRequest
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}

type searchData struct{ Query string }

func (s *Server) searchPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query().Get("q")
	target, err := s.searchTarget(r.Context(), q)
	if err != nil {
		return err
	}
	if target != "" {
		http.Redirect(w, r, target, http.StatusSeeOther)
		return nil
	}
	return s.page(w, r, http.StatusOK, "search.html", "Nothing found", "explorer", searchData{Query: q})
}

func optScore(p *uint32) string {
	if p == nil {
		return ""
	}
	return strconv.FormatUint(uint64(*p), 10)
}

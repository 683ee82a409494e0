package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/rpc"
)

// blockSource is what the browser reads from a node.
type blockSource interface {
	Head(ctx context.Context) (rpc.Head, error)
	Block(ctx context.Context, height int64) (rpc.Block, error)
	BlockTransactions(ctx context.Context, height int64, offset, limit int) (rpc.BlockTxs, error)
}

// receiptSource is what it reads from a coordinator.
type receiptSource interface {
	Receipts(ctx context.Context, limit int, jobID string) ([]coordinator.ReceiptView, error)
}

// Browse is the report of `aitbc browser`: the newest blocks,
// transactions and receipts, newest first (each list only when asked).
type Browse struct {
	Height       int64                     `json:"height"`
	Blocks       []rpc.Block               `json:"blocks,omitempty"`
	Transactions []rpc.Transaction         `json:"transactions,omitempty"`
	Receipts     []coordinator.ReceiptView `json:"receipts,omitempty"`
	// ScannedBlocks is how many blocks were read looking for transactions:
	// at most maxTxScan, so a quiet chain answers quickly with fewer.
	ScannedBlocks int `json:"scanned_blocks,omitempty"`
}

// maxBrowse bounds each list; maxTxScan the blocks read to fill the
// transaction list.
const (
	maxBrowse = 100
	maxTxScan = 500
)

// BrowseChain collects the newest blocks and transactions (and, with
// receipts set, the caller's newest receipts).
func BrowseChain(ctx context.Context, node blockSource, receipts receiptSource, blocks, txs, nReceipts int) (Browse, error) {
	head, err := node.Head(ctx)
	if err != nil {
		return Browse{}, err
	}
	b := Browse{Height: head.Height}
	for h := head.Height; h >= 1 && len(b.Blocks) < blocks; h-- {
		blk, err := node.Block(ctx, h)
		if err != nil {
			return b, fmt.Errorf("block %d: %w", h, err)
		}
		b.Blocks = append(b.Blocks, blk)
	}
	for h := head.Height; h >= 1 && len(b.Transactions) < txs && b.ScannedBlocks < maxTxScan; h-- {
		b.ScannedBlocks++
		page, err := node.BlockTransactions(ctx, h, 0, min(txs-len(b.Transactions), rpc.MaxBlockTxsPage))
		if err != nil {
			return b, fmt.Errorf("block %d transactions: %w", h, err)
		}
		// Newest first: the block's last transaction is its newest.
		for i := len(page.Transactions) - 1; i >= 0 && len(b.Transactions) < txs; i-- {
			b.Transactions = append(b.Transactions, page.Transactions[i])
		}
	}
	if nReceipts > 0 {
		if b.Receipts, err = receipts.Receipts(ctx, nReceipts, ""); err != nil {
			return b, fmt.Errorf("receipts: %w", err)
		}
	}
	return b, nil
}

func printBrowse(w io.Writer, b Browse, blocks, txs, receipts int) {
	fmt.Fprintf(w, "height %d\n", b.Height)
	if blocks > 0 {
		fmt.Fprintf(w, "newest %d blocks:\n", len(b.Blocks))
		for _, blk := range b.Blocks {
			fmt.Fprintf(w, "  %-8d %s  %s  %d txs  proposer %s\n", blk.Height, blk.Hash, blk.Time.Local().Format(time.DateTime), blk.NumTxs, blk.Proposer)
		}
	}
	if txs > 0 {
		fmt.Fprintf(w, "newest %d transactions (%d blocks scanned):\n", len(b.Transactions), b.ScannedBlocks)
		for _, t := range b.Transactions {
			fmt.Fprintf(w, "  %s  height %-8d %-18s %-9s from %s fee %s\n", t.Hash, t.Height, t.Type, t.Status, t.From, t.Fee)
		}
	}
	if receipts > 0 {
		fmt.Fprintf(w, "newest %d receipts:\n", len(b.Receipts))
		for _, r := range b.Receipts {
			fmt.Fprintf(w, "  %s  job %s  miner %s  %s  %d→%d tokens  price %s\n", r.Hash, r.JobID, r.Miner, r.Model, r.TokensIn, r.TokensOut, r.Price)
		}
	}
}

func newBrowserCmd(g *Globals) *cobra.Command {
	var blocks, txs, receipts int
	cmd := &cobra.Command{
		Use:   "browser",
		Short: "The newest blocks, transactions and receipts (the seeds' explorer in the terminal)",
		Long: `Shows the newest --block-limit blocks, --tx-limit transactions and
--receipt-limit receipts, newest first; with none of them, the 5 newest
blocks. Transactions are looked for in the newest 500 blocks at most.
Receipts are your tenant's (the coordinator API key, as for receipts).`,
		Example: `  aitbc browser --block-limit 5
  aitbc browser --tx-limit 5
  aitbc browser --receipt-limit 5 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, f := range []struct {
				name string
				v    int
			}{{"block-limit", blocks}, {"tx-limit", txs}, {"receipt-limit", receipts}} {
				if f.v < 0 || f.v > maxBrowse {
					return usagef("--%s must be 0-%d", f.name, maxBrowse)
				}
			}
			if blocks == 0 && txs == 0 && receipts == 0 {
				blocks = 5
			}
			var rs receiptSource
			if receipts > 0 {
				c, err := g.coordinator()
				if err != nil {
					return err
				}
				rs = c
			}
			b, err := BrowseChain(cmd.Context(), g.node(), rs, blocks, txs, receipts)
			if err != nil {
				return err
			}
			return g.Print(b, func(w io.Writer) { printBrowse(w, b, blocks, txs, receipts) })
		},
	}
	f := cmd.Flags()
	f.IntVar(&blocks, "block-limit", 0, "newest blocks to show (0-100)")
	f.IntVar(&txs, "tx-limit", 0, "newest transactions to show (0-100)")
	f.IntVar(&receipts, "receipt-limit", 0, "newest receipts to show (0-100)")
	return cmd
}

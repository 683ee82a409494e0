package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/testnet"
)

// nodeSet is the set of nodes a cross-node command asks: --nodes, or every
// node of the testnet in --testnet, or else the one --node.
type nodeSet struct {
	urls    []string
	testnet string
	// crossNode: with neither flag, use ./testnet when it holds a testnet
	// (the seeds' `transactions --cross-node` names no nodes).
	crossNode bool
}

// defaultTestnet is where `aitbc testnet init` writes by default.
const defaultTestnet = "./testnet"

// namedNode is one node of a set.
type namedNode struct {
	Name     string `json:"name"`
	URL      string `json:"url"`
	cometRPC string
}

func (s *nodeSet) bind(cmd *cobra.Command) {
	def := "every node of --testnet, else --node"
	if s.crossNode {
		def = "every node of --testnet, else of ./testnet if it exists, else --node"
	}
	cmd.Flags().StringSliceVar(&s.urls, "nodes", nil, "node REST URLs to ask, comma-separated (default: "+def+")")
	cmd.Flags().StringVar(&s.testnet, "testnet", "", "testnet directory (from `aitbc testnet init`) whose nodes to ask")
}

func (s *nodeSet) resolve(g *Globals) ([]namedNode, error) {
	switch {
	case len(s.urls) > 0 && s.testnet != "":
		return nil, usagef("give --nodes or --testnet, not both")
	case len(s.urls) > 0:
		var out []namedNode
		for i, u := range s.urls {
			u = strings.TrimSpace(u)
			if u == "" {
				continue
			}
			if !strings.Contains(u, "://") {
				u = "http://" + u
			}
			out = append(out, namedNode{Name: fmt.Sprintf("node%d", i), URL: strings.TrimRight(u, "/")})
		}
		if len(out) == 0 {
			return nil, usagef("--nodes is empty")
		}
		return out, nil
	case s.testnet != "":
		m, err := testnet.LoadManifest(s.testnet)
		if err != nil {
			return nil, err
		}
		var out []namedNode
		for _, n := range m.Nodes {
			out = append(out, namedNode{Name: n.Name, URL: n.RESTURL, cometRPC: n.CometRPCURL})
		}
		return out, nil
	}
	if s.crossNode {
		if _, err := os.Stat(filepath.Join(defaultTestnet, testnet.ManifestFile)); err == nil {
			s.testnet = defaultTestnet
			return s.resolve(g)
		}
	}
	return []namedNode{{Name: "node", URL: g.Node}}, nil
}

// txOnNode is what one node says about one transaction.
type txOnNode struct {
	Node      string `json:"node"`
	URL       string `json:"url"`
	Status    string `json:"status"` // committed, failed, pending, missing, unreachable
	Height    int64  `json:"height,omitempty"`
	BlockHash string `json:"block_hash,omitempty"`
	Error     string `json:"error,omitempty"`
}

// propagation is the answer of `transaction verify-propagation`.
type propagation struct {
	TxHash     string     `json:"tx_hash"`
	Nodes      []txOnNode `json:"nodes"`
	Committed  int        `json:"committed_on"` // nodes where it is in a block (committed or failed)
	Total      int        `json:"nodes_total"`
	Agree      bool       `json:"agree"`      // every node that has it: same height and block hash
	Propagated bool       `json:"propagated"` // in a block on every node, all agreeing
}

func lookupOn(ctx context.Context, n namedNode, hash string) txOnNode {
	r := txOnNode{Node: n.Name, URL: n.URL}
	c := rpc.NewClient(n.URL)
	c.HTTP.Timeout = 10 * time.Second
	t, err := c.Tx(ctx, hash)
	switch {
	case httpx.IsCode(err, "tx_not_found"):
		r.Status = "missing"
		return r
	case err != nil:
		r.Status, r.Error = "unreachable", oneLine(err)
		var api *httpx.APIError
		if errors.As(err, &api) {
			r.Status = "error"
		}
		return r
	}
	r.Status, r.Height = t.Status, t.Height
	if t.Height > 0 {
		if b, err := c.Block(ctx, t.Height); err == nil {
			r.BlockHash = b.Hash
		} else {
			r.Error = "block: " + oneLine(err)
		}
	}
	return r
}

func checkPropagation(ctx context.Context, nodes []namedNode, hash string) propagation {
	p := propagation{TxHash: hash, Nodes: make([]txOnNode, len(nodes)), Total: len(nodes), Agree: true}
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Nodes[i] = lookupOn(ctx, n, hash)
		}()
	}
	wg.Wait()
	var h int64
	var bh string
	for _, r := range p.Nodes {
		if r.Height == 0 {
			continue
		}
		p.Committed++
		if h == 0 {
			h, bh = r.Height, r.BlockHash
		}
		if r.Height != h || (r.BlockHash != "" && bh != "" && r.BlockHash != bh) {
			p.Agree = false
		}
	}
	p.Propagated = p.Agree && p.Committed == p.Total
	return p
}

func newVerifyPropagationCmd(g *Globals) *cobra.Command {
	set := nodeSet{crossNode: true}
	var txID string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "verify-propagation",
		Short: "Check that a transaction is in the same block on every node",
		Long: `Asks every node (--testnet DIR, --nodes URL,..., or ./testnet when it exists) for the transaction and the
hash of the block that holds it, and reports for each node whether it has it and
at which height. Exits non-zero unless the transaction is in a block on every
node, at the same height with the same block hash. --wait keeps asking until
that is so or the time is up.`,
		Example: `  aitbc transaction verify-propagation --tx-id 0x5f2c... --testnet ./testnet
  aitbc transaction verify-propagation --tx-id 0x5f2c... --nodes http://127.0.0.1:8006,http://127.0.0.1:8106 --wait 10s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if txID == "" {
				return usagef("--tx-id is required")
			}
			nodes, err := set.resolve(g)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			deadline := time.Now().Add(wait)
			var p propagation
			for {
				p = checkPropagation(ctx, nodes, txID)
				if p.Propagated || !time.Now().Before(deadline) || !p.Agree {
					break
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(250 * time.Millisecond):
				}
			}
			if err := g.Print(p, func(w io.Writer) { printPropagation(w, p) }); err != nil {
				return err
			}
			switch {
			case !p.Agree:
				return fmt.Errorf("nodes disagree about transaction %s: different heights or block hashes", txID)
			case !p.Propagated:
				return fmt.Errorf("transaction %s is in a block on %d of %d nodes", txID, p.Committed, p.Total)
			}
			return nil
		},
	}
	set.bind(cmd)
	cmd.Flags().StringVar(&txID, "tx-id", "", "transaction hash (0x...)")
	waitFlag(cmd.Flags(), &wait, 30*time.Second, "keep asking up to this long until every node has it (true: 30s)")
	return cmd
}

func printPropagation(w io.Writer, p propagation) {
	fmt.Fprintf(w, "transaction %s\n", p.TxHash)
	for _, r := range p.Nodes {
		line := fmt.Sprintf("  %-8s %-28s %-11s", r.Node, r.URL, r.Status)
		if r.Height > 0 {
			line += fmt.Sprintf(" height %-8d block %s", r.Height, r.BlockHash)
		}
		if r.Error != "" {
			line += "  " + r.Error
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	switch {
	case p.Propagated:
		fmt.Fprintf(w, "propagated: in the same block on all %d nodes\n", p.Total)
	case !p.Agree:
		fmt.Fprintf(w, "NOT CONSISTENT: nodes put it at different heights or in different blocks\n")
	default:
		fmt.Fprintf(w, "not propagated: in a block on %d of %d nodes\n", p.Committed, p.Total)
	}
}

// crossNode is the --cross-node mode of `aitbc transactions`: the same
// listing asked of every node, side by side.
type crossNode struct {
	on        bool
	set       nodeSet
	period    time.Duration
	maxBlocks int
}

// bindCrossNode adds --cross-node, --period, --nodes, --testnet and
// --max-blocks to the transactions command.
func bindCrossNode(cmd *cobra.Command) *crossNode {
	c := &crossNode{set: nodeSet{crossNode: true}}
	cmd.Flags().BoolVar(&c.on, "cross-node", false, "ask every node (--testnet or --nodes) and show at which height each has each transaction")
	cmd.Flags().DurationVar(&c.period, "period", time.Hour, "with --cross-node: how far back to look")
	cmd.Flags().IntVar(&c.maxBlocks, "max-blocks", 5000, "with --cross-node: most blocks read back per node")
	c.set.bind(cmd)
	return c
}

// crossNodeTx is one transaction of a cross-node listing.
type crossNodeTx struct {
	TxHash  string           `json:"tx_hash"`
	Time    time.Time        `json:"time"`
	Heights map[string]int64 `json:"heights"` // node name → height; 0 or absent: not there
}

// crossNodeNode is one node's state in a cross-node listing.
type crossNodeNode struct {
	namedNode
	Height int64  `json:"height"`
	Seen   int    `json:"transactions_seen"`
	Error  string `json:"error,omitempty"`
}

// crossNodeReport is the answer of `transactions --cross-node`.
type crossNodeReport struct {
	Period       string          `json:"period"`
	Account      string          `json:"account,omitempty"`
	Nodes        []crossNodeNode `json:"nodes"`
	Transactions []crossNodeTx   `json:"transactions"`
	Consistent   bool            `json:"consistent"` // every tx on every reachable node at the same height
	Missing      int             `json:"missing"`    // (tx, node) pairs where a node lacks a tx
	Mismatched   int             `json:"mismatched"` // txs at different heights on different nodes
}

type seenTx struct {
	hash   string
	height int64
	time   time.Time
}

// blocksSince lists the transactions of the blocks of the last period, at
// most maxBlocks blocks and limit transactions, newest first.
func blocksSince(ctx context.Context, c *rpc.Client, since time.Time, maxBlocks, limit int) (int64, []seenTx, error) {
	top, err := c.Block(ctx, 0)
	if err != nil {
		return 0, nil, err
	}
	var out []seenTx
	b := top
	for n := 0; n < maxBlocks && len(out) < limit; n++ {
		if b.Time.Before(since) {
			break
		}
		for i := len(b.Txs) - 1; i >= 0 && len(out) < limit; i-- {
			out = append(out, seenTx{hash: b.Txs[i], height: b.Height, time: b.Time})
		}
		if b.Height <= 1 {
			break
		}
		if b, err = c.Block(ctx, b.Height-1); err != nil {
			if httpx.IsCode(err, "block_not_found") { // pruned below
				break
			}
			return top.Height, out, err
		}
	}
	return top.Height, out, nil
}

func accountSince(ctx context.Context, c *rpc.Client, addr address.Address, since time.Time, limit int) (int64, []seenTx, error) {
	s, err := c.Sync(ctx)
	if err != nil {
		return 0, nil, err
	}
	list, err := c.Transactions(ctx, addr, limit)
	if err != nil {
		return s.LatestBlockHeight, nil, err
	}
	var out []seenTx
	for _, t := range list.Transactions {
		if t.Time != nil && t.Time.Before(since) {
			continue
		}
		st := seenTx{hash: t.Hash, height: t.Height}
		if t.Time != nil {
			st.time = *t.Time
		}
		out = append(out, st)
	}
	return s.LatestBlockHeight, out, nil
}

func (c *crossNode) run(ctx context.Context, g *Globals, who *addressFlag, limit int) error {
	if c.period <= 0 {
		return usagef("--period must be positive")
	}
	nodes, err := c.set.resolve(g)
	if err != nil {
		return err
	}
	var addr *address.Address
	rep := crossNodeReport{Period: c.period.String(), Consistent: true, Transactions: []crossNodeTx{}}
	if who.name != "" || who.addr != "" {
		a, label, err := who.resolve(ctx, g)
		if err != nil {
			return err
		}
		addr, rep.Account = &a, label
	}
	since := time.Now().Add(-c.period)
	rep.Nodes = make([]crossNodeNode, len(nodes))
	seen := make([][]seenTx, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := rpc.NewClient(n.URL)
			cl.HTTP.Timeout = 10 * time.Second
			var h int64
			var err error
			if addr != nil {
				h, seen[i], err = accountSince(ctx, cl, *addr, since, limit)
			} else {
				h, seen[i], err = blocksSince(ctx, cl, since, c.maxBlocks, limit)
			}
			rep.Nodes[i] = crossNodeNode{namedNode: n, Height: h, Seen: len(seen[i])}
			if err != nil {
				rep.Nodes[i].Error = oneLine(err)
			}
		}()
	}
	wg.Wait()

	// The union of what the nodes listed, newest first.
	byHash := map[string]*crossNodeTx{}
	for i, list := range seen {
		for _, s := range list {
			t := byHash[s.hash]
			if t == nil {
				t = &crossNodeTx{TxHash: s.hash, Time: s.time, Heights: map[string]int64{}}
				byHash[s.hash] = t
			}
			t.Heights[nodes[i].Name] = s.height
		}
	}
	for _, t := range byHash {
		rep.Transactions = append(rep.Transactions, *t)
	}
	sort.Slice(rep.Transactions, func(i, j int) bool {
		a, b := rep.Transactions[i], rep.Transactions[j]
		if !a.Time.Equal(b.Time) {
			return a.Time.After(b.Time)
		}
		return a.TxHash < b.TxHash
	})
	if len(rep.Transactions) > limit {
		rep.Transactions = rep.Transactions[:limit]
	}
	// A node may hold a transaction outside the window it read (it is
	// behind, or the limit cut its list): ask it directly.
	for ti := range rep.Transactions {
		t := &rep.Transactions[ti]
		var first int64
		for ni, n := range nodes {
			if rep.Nodes[ni].Error != "" {
				continue
			}
			if _, ok := t.Heights[n.Name]; !ok {
				if r := lookupOn(ctx, n, t.TxHash); r.Height > 0 {
					t.Heights[n.Name] = r.Height
				}
			}
			h, ok := t.Heights[n.Name]
			switch {
			case !ok || h == 0:
				rep.Missing++
				rep.Consistent = false
			case first == 0:
				first = h
			case h != first:
				rep.Mismatched++
				rep.Consistent = false
			}
		}
	}
	for _, n := range rep.Nodes {
		if n.Error != "" {
			rep.Consistent = false
		}
	}
	return g.Print(rep, func(w io.Writer) { printCrossNode(w, rep, nodes) })
}

func printCrossNode(w io.Writer, rep crossNodeReport, nodes []namedNode) {
	what := "transactions"
	if rep.Account != "" {
		what = rep.Account + "'s transactions"
	}
	fmt.Fprintf(w, "%s of the last %s on %d nodes (newest first)\n", what, rep.Period, len(nodes))
	for _, n := range rep.Nodes {
		if n.Error != "" {
			fmt.Fprintf(w, "  %-8s %-28s %s\n", n.Name, n.URL, n.Error)
			continue
		}
		fmt.Fprintf(w, "  %-8s %-28s height %-8d %d transactions in the window\n", n.Name, n.URL, n.Height, n.Seen)
	}
	if len(rep.Transactions) == 0 {
		fmt.Fprintln(w, "no transactions in that period")
	} else {
		header := fmt.Sprintf("%-66s", "TX")
		for _, n := range nodes {
			header += fmt.Sprintf(" %9s", n.Name)
		}
		fmt.Fprintln(w, header)
		for _, t := range rep.Transactions {
			line := fmt.Sprintf("%-66s", t.TxHash)
			for _, n := range nodes {
				if h := t.Heights[n.Name]; h > 0 {
					line += fmt.Sprintf(" %9d", h)
				} else {
					line += fmt.Sprintf(" %9s", "-")
				}
			}
			fmt.Fprintln(w, line)
		}
	}
	if rep.Consistent {
		fmt.Fprintf(w, "consistent: all %d transactions on every node at the same height\n", len(rep.Transactions))
	} else {
		fmt.Fprintf(w, "NOT consistent: %d missing (tx, node) pairs, %d transactions at different heights, %d nodes unreachable\n",
			rep.Missing, rep.Mismatched, countErr(rep.Nodes))
	}
}

func countErr(ns []crossNodeNode) int {
	n := 0
	for _, v := range ns {
		if v.Error != "" {
			n++
		}
	}
	return n
}

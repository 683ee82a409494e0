package fault

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
)

// cli runs `aitbc <args> --output json` against the network and decodes
// its standard output into out; it returns the exit error, if any.
func (n *network) cli(out any, args ...string) error {
	n.t.Helper()
	cmd := exec.Command(aitbcBin, append(args, "--output", "json")...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if out != nil {
		if derr := json.Unmarshal(stdout.Bytes(), out); derr != nil {
			n.t.Fatalf("aitbc %s: output is not JSON (%v): %s %s", strings.Join(args, " "), derr, stdout.String(), stderr.String())
		}
	}
	return err
}

// checkCLI runs the cross-node commands a user would run against this
// network and checks what they say: node status of every node, the
// propagation of an acknowledged transfer, and the cross-node listing.
func (n *network) checkCLI(lg *loadGen) {
	n.t.Helper()
	dir := n.m.Dir()
	var status []struct {
		Name      string `json:"name"`
		Reachable bool   `json:"reachable"`
		Sync      struct {
			Height     int64 `json:"latest_block_height"`
			CatchingUp bool  `json:"catching_up"`
			Validator  bool  `json:"validator"`
			Peers      int   `json:"peers"`
		} `json:"sync"`
	}
	if err := n.cli(&status, "node", "status", "--testnet", dir); err != nil {
		n.t.Fatalf("aitbc node status --testnet: %v", err)
	}
	for i, s := range status {
		if !s.Reachable || s.Sync.CatchingUp || s.Sync.Validator != n.m.Nodes[i].Validator || s.Sync.Peers == 0 {
			n.t.Fatalf("aitbc node status: %s %+v", s.Name, s)
		}
	}
	acked := lg.ackedTxs()
	if len(acked) == 0 {
		n.t.Fatal("no acknowledged transfer to look up")
	}
	a := acked[len(acked)/2]
	var p struct {
		Propagated bool `json:"propagated"`
		Nodes      []struct {
			Node   string `json:"node"`
			Height int64  `json:"height"`
		} `json:"nodes"`
	}
	if err := n.cli(&p, "transaction", "verify-propagation", "--testnet", dir, "--tx-id", a.hash); err != nil || !p.Propagated {
		n.t.Fatalf("aitbc transaction verify-propagation: %v %+v", err, p)
	}
	for _, r := range p.Nodes {
		if r.Height != a.height {
			n.t.Fatalf("verify-propagation: %s has %s at %d, acknowledged at %d", r.Node, a.hash, r.Height, a.height)
		}
	}
	var x struct {
		Consistent   bool `json:"consistent"`
		Transactions []struct {
			TxHash string `json:"tx_hash"`
		} `json:"transactions"`
	}
	if err := n.cli(&x, "transactions", "--cross-node", "--testnet", dir, "--period", "1h", "--limit", "200"); err != nil || !x.Consistent || len(x.Transactions) == 0 {
		n.t.Fatalf("aitbc transactions --cross-node: %v consistent %v, %d transactions", err, x.Consistent, len(x.Transactions))
	}
	for _, args := range [][]string{
		{"transaction", "verify-propagation", "--testnet", dir, "--tx-id", a.hash},
		{"transactions", "--cross-node", "--testnet", dir, "--period", "1h", "--limit", "3"},
		{"node", "status", "--testnet", dir},
	} {
		out, err := exec.Command(aitbcBin, args...).CombinedOutput()
		if err != nil {
			n.t.Fatalf("aitbc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		n.t.Logf("$ aitbc %s\n%s", strings.Join(args, " "), out)
	}
	n.t.Logf("CLI: node status --testnet shows %d nodes up and in sync; verify-propagation finds %s at height %d on every node; transactions --cross-node lists %d transactions, consistent",
		len(status), a.hash[:18]+"…", a.height, len(x.Transactions))
}

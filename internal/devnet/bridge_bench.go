package devnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"

	"github.com/btcsuite/btcd/btcutil"

	"github.com/aitbc/aitbc/internal/bridge"
	"github.com/aitbc/aitbc/internal/btcnode"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/keystore"
)

// BridgeBench configures BenchBridge.
type BridgeBench struct {
	Deposits      int           // deposits to time (10)
	Confirmations int64         // the bridge's N (1)
	BlockTime     time.Duration // AITBC block time (1 s)
	Poll          time.Duration // the daemon's poll interval (200 ms, as a devnet's)
	Progress      io.Writer
}

// BridgeBenchResult is the time from a deposit's Nth confirmation (the
// block mined) to its btc minted on AITBC (the mint committed and seen
// by a client).
type BridgeBenchResult struct {
	Deposits      int           `json:"deposits"`
	Confirmations int64         `json:"confirmations"`
	BlockTime     time.Duration `json:"block_time_ns"`
	Poll          time.Duration `json:"poll_ns"`
	Median        time.Duration `json:"median_ns"`
	P90           time.Duration `json:"p90_ns"`
	Max           time.Duration `json:"max_ns"`
	Method        string        `json:"method"`
}

// BenchBridge starts a throwaway devnet --btc (a real btcd regtest node,
// the bridge daemon), and times deposits one at a time: the deposit is
// sent, N blocks mined, and the clock runs from the Nth block until the
// depositor's btc balance shows the amount.
func BenchBridge(ctx context.Context, b BridgeBench) (BridgeBenchResult, error) {
	if b.Deposits <= 0 {
		b.Deposits = 10
	}
	if b.Confirmations <= 0 {
		b.Confirmations = 1
	}
	if b.BlockTime <= 0 {
		b.BlockTime = time.Second
	}
	if b.Poll <= 0 {
		b.Poll = 200 * time.Millisecond
	}
	if b.Progress == nil {
		b.Progress = io.Discard
	}
	home, err := os.MkdirTemp("", "aitbc-bench-bridge-")
	if err != nil {
		return BridgeBenchResult{}, err
	}
	defer os.RemoveAll(home)
	p2p, err := freeAddr()
	if err != nil {
		return BridgeBenchResult{}, err
	}
	d, err := Start(ctx, Config{Home: home, BlockTime: b.BlockTime, Miners: -1, RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0",
		CoordinatorListen: "off", CometRPCListen: "off", P2PListen: "tcp://" + p2p,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())}, BTC: true, BTCManual: true, BTCConfirmations: b.Confirmations})
	if err != nil {
		return BridgeBenchResult{}, err
	}
	defer d.Close()
	node := d.Node.Client()
	dm, err := bridge.New(ctx, bridge.Config{XPrv: d.BTC.XPrv, StateFile: d.BTC.StateFile, Poll: b.Poll, BTC: d.BTC.Node.Client, Chain: node, Operator: d.BTC.Operator})
	if err != nil {
		return BridgeBenchResult{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = dm.Run(rctx) }()

	genesis := walletSender(d, GenesisWallet)
	a, err := bridge.DepositAddress(ctx, node, genesis, d.Genesis)
	if err != nil {
		return BridgeBenchResult{}, err
	}
	to, err := btcutil.DecodeAddress(a.Address, btcnode.Params())
	if err != nil {
		return BridgeBenchResult{}, err
	}
	var lat []time.Duration
	var want uint64
	for i := range b.Deposits {
		sat := int64(100_000 + i)
		if _, err := d.BTC.Wallet.Send(to, sat, 2_000); err != nil {
			return BridgeBenchResult{}, err
		}
		if _, err := d.BTC.Node.Mine(int(b.Confirmations)); err != nil {
			return BridgeBenchResult{}, err
		}
		t0 := time.Now()
		want += uint64(sat)
		for {
			v, err := bank.QueryBalances(ctx, node, d.Genesis)
			if err != nil {
				return BridgeBenchResult{}, err
			}
			if v.Balances[cb.Denom] == want {
				break
			}
			if time.Since(t0) > time.Minute {
				return BridgeBenchResult{}, errors.New("bench bridge: a deposit was not minted within a minute")
			}
			select {
			case <-ctx.Done():
				return BridgeBenchResult{}, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		lat = append(lat, time.Since(t0))
		fmt.Fprintf(b.Progress, "deposit %d: minted %s after its confirmation %d\n", i+1, lat[i].Round(time.Millisecond), b.Confirmations)
	}
	slices.Sort(lat)
	return BridgeBenchResult{Deposits: b.Deposits, Confirmations: b.Confirmations, BlockTime: b.BlockTime, Poll: b.Poll,
		Median: lat[len(lat)/2], P90: lat[len(lat)*9/10], Max: lat[len(lat)-1],
		Method: fmt.Sprintf("one devnet validator (%s blocks), btcd regtest, the bridge daemon polling every %s; each deposit sent, %d block(s) mined, then the clock runs until the depositor's btc balance (read every 20 ms) shows it", b.BlockTime, b.Poll, b.Confirmations)}, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func walletSender(d *Devnet, name string) bridge.Submitter {
	s := d.Wallets.Service()
	return func(ctx context.Context, msg tx.Msg) (string, error) {
		sub, err := s.SignAndSubmit(ctx, name, d.cfg.GenesisPassword, msg, 0)
		return sub.TxHash, err
	}
}

package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/btcsuite/btcd/rpcclient"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
)

// DialBTC returns an RPC client of a Bitcoin node at rawURL
// (http://user:password@host:port; https for TLS).
func DialBTC(rawURL string) (*rpcclient.Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		// the URL itself is not repeated: it carries the password
		return nil, errors.New("bitcoin RPC URL: want http://user:password@host:port")
	}
	pass, _ := u.User.Password()
	return rpcclient.New(&rpcclient.ConnConfig{Host: u.Host, User: u.User.Username(), Pass: pass, HTTPPostMode: true, DisableTLS: u.Scheme == "http"}, nil)
}

// Submitter signs and submits a message for an account.
type Submitter func(ctx context.Context, msg tx.Msg) (string, error)

// DepositAddress returns account's deposit address, asking the chain for
// one first (bridge/address, signed by the account through submit) when
// it has none; waitTx waits for that transaction's block.
func DepositAddress(ctx context.Context, chain Chain, submit Submitter, account address.Address) (cb.AddressView, error) {
	v, err := cb.QueryAddress(ctx, chain, account)
	if err == nil || !httpx.IsCode(err, cb.ErrNoAddress.Name) {
		return v, err
	}
	h, err := submit(ctx, cb.NewAddressMsg())
	if err != nil && !httpx.IsCode(err, cb.ErrHasAddress.Name) {
		return v, err
	}
	if err == nil {
		t, err := chain.WaitTx(ctx, h, 100*time.Millisecond)
		if err != nil {
			return v, err
		}
		if t.Status != "committed" && t.Code != cb.ErrHasAddress.Code {
			return v, fmt.Errorf("bridge/address %s: %s", h, t.Error)
		}
	}
	return cb.QueryAddress(ctx, chain, account)
}

// ErrFailed is a transaction refused in its block.
var ErrFailed = errors.New("transaction failed")

// Withdraw burns sat satoshis of account's btc for a payment to to, waits
// for the block, and returns the withdrawal as the chain recorded it.
func Withdraw(ctx context.Context, chain Chain, submit Submitter, account address.Address, to string, sat uint64) (cb.WithdrawalView, string, error) {
	h, err := submit(ctx, cb.NewWithdrawMsg(to, sat))
	if err != nil {
		return cb.WithdrawalView{}, "", err
	}
	t, err := chain.WaitTx(ctx, h, 100*time.Millisecond)
	if err != nil {
		return cb.WithdrawalView{}, h, err
	}
	if t.Status != "committed" {
		return cb.WithdrawalView{}, h, fmt.Errorf("%w: %s (%s %d)", ErrFailed, t.Error, t.Codespace, t.Code)
	}
	// the account's withdrawal made in that block (ids only grow)
	var found cb.WithdrawalView
	var from uint64
	for {
		var page []cb.WithdrawalView
		if err := chain.GetJSON(ctx, fmt.Sprintf("/api/v1/bridge/withdrawals?status=all&owner=%s&from=%d&limit=%d", account, from, cb.MaxPage), &page); err != nil {
			return found, h, err
		}
		for _, w := range page {
			if w.Height == t.Height && w.To == to && w.Amount == sat {
				found = w
			}
			from = w.ID + 1
		}
		if len(page) < cb.MaxPage {
			return found, h, nil
		}
	}
}

// AccountWithdrawals lists account's withdrawals, oldest first (at most
// limit).
func AccountWithdrawals(ctx context.Context, chain module.Getter, account address.Address, limit int) ([]cb.WithdrawalView, error) {
	var out []cb.WithdrawalView
	var from uint64
	for len(out) < limit {
		var page []cb.WithdrawalView
		if err := chain.GetJSON(ctx, fmt.Sprintf("/api/v1/bridge/withdrawals?status=all&owner=%s&from=%d&limit=%d", account, from, cb.MaxPage), &page); err != nil {
			return out, err
		}
		for _, w := range page {
			from = w.ID + 1
			if len(out) < limit {
				out = append(out, w)
			}
		}
		if len(page) < cb.MaxPage {
			break
		}
	}
	return out, nil
}

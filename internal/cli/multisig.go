package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/faucet"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/multisig"
	"github.com/aitbc/aitbc/internal/chain/modules/pools"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	"github.com/aitbc/aitbc/internal/chain/modules/treasury"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// addressOrWallet reads an address (aitbc1...) or the name of a wallet.
func (g *Globals) addressOrWallet(ctx context.Context, s string) (address.Address, error) {
	s = strings.TrimSpace(s)
	if a, err := address.Parse(s); err == nil {
		return a, nil
	}
	return g.walletAddress(ctx, s)
}

func newMultisigCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "multisig", Short: "m-of-n accounts: create one, propose a transfer or any message, sign, show",
		Example: `  aitbc multisig create --name ops --threshold 2 --signers alice,bob,carol --wallet alice
  aitbc multisig propose --name ops --to aitbc1... --amount 100 --wallet alice
  aitbc multisig propose --name ops --type staking/stake --body '{"operator":"aitbc1...","amount":"5"}' --wallet alice
  aitbc multisig sign --name ops --proposal 0 --wallet bob
  aitbc multisig show --name ops --output json`}
	var name, wallet, password string
	flags := func(c *cobra.Command, withWallet bool) {
		c.Flags().StringVar(&name, "name", "", "the multisig account's name (required)")
		if withWallet {
			c.Flags().StringVar(&wallet, "wallet", "", "wallet that signs the transaction (required)")
			c.Flags().StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD)")
		}
	}
	need := func(withWallet bool) error {
		if err := multisig.CheckName(name); err != nil {
			return usagef("--name: %v", err)
		}
		if withWallet && wallet == "" {
			return usagef("--wallet is required")
		}
		return nil
	}
	printTx := func(h string, extra map[string]any) error {
		extra["tx_hash"] = h
		return g.Print(extra, func(w io.Writer) { fmt.Fprintln(w, h) })
	}

	var threshold uint32
	var signers string
	create := &cobra.Command{
		Use:     "create",
		Short:   "Create an m-of-n account; prints the transaction hash",
		Example: `  aitbc multisig create --name treasury-ops --threshold 2 --signers alice,bob,aitbc1... --wallet alice`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need(true); err != nil {
				return err
			}
			ctx := cmd.Context()
			var list []address.Address
			for _, s := range strings.Split(signers, ",") {
				if strings.TrimSpace(s) == "" {
					continue
				}
				a, err := g.addressOrWallet(ctx, s)
				if err != nil {
					return fmt.Errorf("--signers %q: %w", s, err)
				}
				list = append(list, a)
			}
			if threshold == 0 || int(threshold) > len(list) {
				return usagef("--threshold must be 1 to the number of --signers (%d)", len(list))
			}
			h, err := g.submit(ctx, wallet, password, multisig.NewCreateMsg(name, threshold, list))
			if err != nil {
				return err
			}
			return printTx(h, map[string]any{"address": multisig.Address(name)})
		},
	}
	flags(create, true)
	create.Flags().Uint32Var(&threshold, "threshold", 0, "signatures needed (required)")
	create.Flags().StringVar(&signers, "signers", "", "comma-separated addresses or wallet names (required)")

	var to, amount, msgFile, msgType, msgBody string
	propose := &cobra.Command{
		Use:   "propose",
		Short: "Propose a message from the account (a transfer, or any message); prints the transaction hash",
		Long: `Proposes a message that the multisig account will send once --threshold of
its signers have signed (the proposer's signature counts). A transfer is
--to and --amount; any other message is --type with a JSON --body, or --msg
with a file holding {"type": ..., "body": {...}}. The body's fields are the
ones the explorer shows for that message type:

  bank/send            {"to": ADDR, "amount": "10"}
  staking/stake        {"operator": ADDR, "amount": "5"}   (also staking/unstake)
  staking/commission   {"commission_bps": 500}
  market/create        {"service_id", "name", "type", "unit", "price", "description",
                        "parameters": {...}, "model", "gpu", "gpu_memory_mb", "capacity", "auto_accept"}
  market/bid           {"service_id", "price", "units", "auto_accept"}
  market/accept|reject|withdraw|claim|close   {"id": ID}
  market/settle        {"id": AGREEMENT, "amount": "3"}
  pools/create         {"name", "fee_bps"};  pools/join {"name"};  pools/leave {}
  jobs/deposit         {"coordinator": ADDR, "amount": "50"}   (also jobs/withdraw)
  faucet/drip          {"to": ADDR, "amount": "0"}
  treasury/spend       {"to": ADDR, "amount": "100", "memo": "..."}

Any other type goes as its canonical CBOR body in hex: {"type": T, "cbor": HEX}.
Amounts are AITBC as decimal strings; addresses are aitbc1... . An unknown
field is refused before anything is sent; the chain checks the message
itself when the last signature executes it (and refuses that signature if
the message fails).`,
		Example: `  aitbc multisig propose --name treasury-ops --to aitbc1... --amount 100 --wallet alice
  aitbc multisig propose --name treasury-ops --type staking/stake \
      --body '{"operator":"aitbc1...","amount":"500"}' --wallet alice
  aitbc multisig propose --name treasury-ops --msg listing.json --wallet alice --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need(true); err != nil {
				return err
			}
			ctx := cmd.Context()
			var msg tx.Msg
			switch {
			case msgFile != "" || msgType != "" || msgBody != "":
				if to != "" || amount != "" {
					return usagef("give --to and --amount for a transfer, or --msg / --type and --body for another message, not both")
				}
				p, err := readProposalMsg(msgFile, msgType, msgBody)
				if err != nil {
					return err
				}
				if msg, err = msgFromJSON(p); err != nil {
					return usagef("%v", err)
				}
			default:
				toAddr, err := g.addressOrWallet(ctx, to)
				if err != nil {
					return fmt.Errorf("--to: %w", err)
				}
				amt, err := coin.Parse(strings.TrimSpace(amount))
				if err != nil || amt == 0 {
					return usagef("--amount must be a positive amount of AITBC, not %q", amount)
				}
				msg = bank.NewSendMsg(toAddr, amt)
			}
			v, err := multisig.Query(ctx, g.node(), name)
			if err != nil {
				return err
			}
			h, err := g.submit(ctx, wallet, password, multisig.NewProposeMsg(name, msg))
			if err != nil {
				return err
			}
			// The proposal's number is the account's next one, unless
			// another lands first: ` + "`multisig show`" + ` lists them.
			return printTx(h, map[string]any{"proposal": len(v.Proposals), "type": msg.Type})
		},
	}
	flags(propose, true)
	propose.Flags().StringVar(&to, "to", "", "recipient address or wallet, for a transfer")
	propose.Flags().StringVar(&amount, "amount", "", "AITBC, for a transfer")
	propose.Flags().StringVar(&msgFile, "msg", "", `file with the message: {"type": ..., "body": {...}} ("-" reads standard input)`)
	propose.Flags().StringVar(&msgType, "type", "", "message type, e.g. staking/stake (with --body)")
	propose.Flags().StringVar(&msgBody, "body", "", "the message's body as JSON (with --type)")

	var proposal string
	sign := &cobra.Command{
		Use:     "sign",
		Short:   "Sign a proposal; it executes when the threshold is reached",
		Example: `  aitbc multisig sign --name treasury-ops --proposal 0 --wallet bob`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need(true); err != nil {
				return err
			}
			id, err := strconv.ParseUint(proposal, 10, 64)
			if err != nil {
				return usagef("--proposal must be a proposal number (multisig show lists them), not %q", proposal)
			}
			h, err := g.submit(cmd.Context(), wallet, password, multisig.NewSignMsg(name, id))
			if err != nil {
				return err
			}
			return printTx(h, map[string]any{"proposal": id})
		},
	}
	flags(sign, true)
	sign.Flags().StringVar(&proposal, "proposal", "", "proposal number (required)")

	show := &cobra.Command{
		Use:     "show",
		Short:   "Show an account: address, threshold, signers, balance and proposals",
		Example: "  aitbc multisig show --name treasury-ops\n  aitbc multisig show --name treasury-ops --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need(false); err != nil {
				return err
			}
			v, err := multisig.Query(cmd.Context(), g.node(), name)
			if err != nil {
				return err
			}
			return g.Print(v, func(w io.Writer) {
				fmt.Fprintf(w, "name       %s\naddress    %s\nthreshold  %d of %d\nbalance    %s AITBC\n", v.Name, v.Address, v.Threshold, len(v.Signers), v.Balance)
				for _, s := range v.Signers {
					fmt.Fprintf(w, "signer     %s\n", s)
				}
				for _, p := range v.Proposals {
					fmt.Fprintf(w, "proposal %d  %-8s %s  %d of %d signatures, expires at block %d\n", p.ID, p.Status, p.Type, len(p.Approvals), v.Threshold, p.Expires)
				}
			})
		},
	}
	flags(show, false)
	cmd.AddCommand(create, propose, sign, show)
	return cmd
}

// readProposalMsg reads --msg FILE, or --type and --body.
func readProposalMsg(file, typ, body string) (proposalMsg, error) {
	var p proposalMsg
	if file != "" {
		if typ != "" || body != "" {
			return p, usagef("give --msg, or --type and --body, not both")
		}
		var r io.Reader
		if file == "-" {
			r = os.Stdin
		} else {
			f, err := os.Open(file)
			if err != nil {
				return p, err
			}
			defer f.Close()
			r = f
		}
		b, err := io.ReadAll(io.LimitReader(r, maxMsgFile+1))
		if err != nil {
			return p, err
		}
		if len(b) > maxMsgFile {
			return p, usagef("--msg %s is over %d KiB", file, maxMsgFile>>10)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return p, usagef("--msg %s: %v", file, err)
		}
		return p, nil
	}
	if typ == "" {
		return p, usagef("--body needs --type")
	}
	if len(body) > maxMsgFile {
		return p, usagef("--body is over %d KiB", maxMsgFile>>10)
	}
	p.Type = typ
	if body != "" {
		if !json.Valid([]byte(body)) {
			return p, usagef("--body is not valid JSON")
		}
		p.Body = json.RawMessage(body)
	}
	return p, nil
}

// maxMsgFile bounds `multisig propose --msg FILE`: a message is a few
// hundred bytes; a larger file is a mistake.
const maxMsgFile = 64 << 10

// proposalMsg is a message to propose, as --msg FILE.json holds it:
// {"type": "staking/stake", "body": {"operator": "aitbc1...", "amount": "5"}},
// or, for a type msgFromJSON does not know, {"type": T, "cbor": "<hex of
// the canonical CBOR body>"}.
type proposalMsg struct {
	Type string          `json:"type"`
	Body json.RawMessage `json:"body,omitempty"`
	CBOR string          `json:"cbor,omitempty"`
}

// msgBuilders turn a JSON body into a message, by type. The field names
// are those the explorer and `aitbc transaction` show for the message.
var msgBuilders = map[string]func(dec func(any) error) (tx.Msg, error){
	bank.TypeSend: func(dec func(any) error) (tx.Msg, error) {
		var b struct {
			To     address.Address `json:"to"`
			Amount coin.Amount     `json:"amount"`
		}
		if err := dec(&b); err != nil {
			return tx.Msg{}, err
		}
		return bank.NewSendMsg(b.To, b.Amount), required("to", b.To)
	},
	staking.TypeStake: func(dec func(any) error) (tx.Msg, error) {
		var b stakeBody
		err := dec(&b)
		if err == nil {
			err = required("operator", b.Operator)
		}
		return staking.NewStakeMsg(b.Operator, b.Amount), err
	},
	staking.TypeUnstake: func(dec func(any) error) (tx.Msg, error) {
		var b stakeBody
		err := dec(&b)
		if err == nil {
			err = required("operator", b.Operator)
		}
		return staking.NewUnstakeMsg(b.Operator, b.Amount), err
	},
	staking.TypeCommission: func(dec func(any) error) (tx.Msg, error) {
		var b struct {
			Bps uint64 `json:"commission_bps"`
		}
		err := dec(&b)
		return staking.NewCommissionMsg(b.Bps), err
	},
	market.TypeCreate: func(dec func(any) error) (tx.Msg, error) {
		var b struct {
			ID          string            `json:"service_id"`
			Name        string            `json:"name"`
			Type        string            `json:"type"`
			Unit        string            `json:"unit"`
			Price       coin.Amount       `json:"price"`
			Description string            `json:"description"`
			Params      map[string]string `json:"parameters"`
			Model       string            `json:"model"`
			GPU         string            `json:"gpu"`
			GPUMemoryMB uint64            `json:"gpu_memory_mb"`
			Capacity    uint32            `json:"capacity"`
			AutoAccept  bool              `json:"auto_accept"`
		}
		err := dec(&b)
		s := market.ListingSpec{ID: b.ID, Name: b.Name, Type: b.Type, Unit: b.Unit, Price: b.Price, Description: b.Description,
			Model: b.Model, GPU: b.GPU, GPUMemoryMB: b.GPUMemoryMB, Capacity: b.Capacity, AutoAccept: b.AutoAccept}
		for _, k := range slices.Sorted(maps.Keys(b.Params)) {
			s.Params = append(s.Params, market.Param{Key: k, Value: b.Params[k]})
		}
		return market.NewCreateMsg(s), err
	},
	market.TypeBid: func(dec func(any) error) (tx.Msg, error) {
		var b struct {
			Service    string      `json:"service_id"`
			Price      coin.Amount `json:"price"`
			Units      uint64      `json:"units"`
			AutoAccept bool        `json:"auto_accept"`
		}
		err := dec(&b)
		return market.NewBidMsg(b.Service, b.Price, b.Units, b.AutoAccept), err
	},
	market.TypeAccept:   refBody(market.NewAcceptMsg),
	market.TypeReject:   refBody(market.NewRejectMsg),
	market.TypeWithdraw: refBody(market.NewWithdrawMsg),
	market.TypeClaim:    refBody(market.NewClaimMsg),
	market.TypeClose:    refBody(market.NewCloseMsg),
	market.TypeSettle: func(dec func(any) error) (tx.Msg, error) {
		var b struct {
			ID     string      `json:"id"`
			Amount coin.Amount `json:"amount"`
		}
		err := dec(&b)
		return market.NewSettleMsg(b.ID, b.Amount), err
	},
	pools.TypeCreate: func(dec func(any) error) (tx.Msg, error) {
		var b struct {
			Name string `json:"name"`
			Fee  uint64 `json:"fee_bps"`
		}
		err := dec(&b)
		return pools.NewCreateMsg(b.Name, b.Fee), err
	},
	pools.TypeJoin: func(dec func(any) error) (tx.Msg, error) {
		var b struct {
			Name string `json:"name"`
		}
		err := dec(&b)
		return pools.NewJoinMsg(b.Name), err
	},
	pools.TypeLeave: func(dec func(any) error) (tx.Msg, error) {
		var b struct{}
		return pools.NewLeaveMsg(), dec(&b)
	},
	jobs.TypeDeposit: func(dec func(any) error) (tx.Msg, error) {
		var b depositBody
		err := dec(&b)
		if err == nil {
			err = required("coordinator", b.Coordinator)
		}
		return jobs.NewDepositMsg(b.Coordinator, b.Amount), err
	},
	jobs.TypeWithdraw: func(dec func(any) error) (tx.Msg, error) {
		var b depositBody
		err := dec(&b)
		if err == nil {
			err = required("coordinator", b.Coordinator)
		}
		return jobs.NewWithdrawMsg(b.Coordinator, b.Amount), err
	},
	treasury.TypeSpend: func(dec func(any) error) (tx.Msg, error) {
		var b struct {
			To     address.Address `json:"to"`
			Amount coin.Amount     `json:"amount"`
			Memo   string          `json:"memo"`
		}
		err := dec(&b)
		if err == nil {
			err = required("to", b.To)
		}
		return treasury.NewSpendMsg(b.To, b.Amount, b.Memo), err
	},
	faucet.TypeDrip: func(dec func(any) error) (tx.Msg, error) {
		var b struct {
			To     address.Address `json:"to"`
			Amount coin.Amount     `json:"amount"`
		}
		err := dec(&b)
		if err == nil {
			err = required("to", b.To)
		}
		return faucet.NewDripMsg(b.To, b.Amount), err
	},
}

// required refuses a missing address field: its zero value is an
// address no key controls.
func required(field string, a address.Address) error {
	if a.IsZero() {
		return fmt.Errorf("%q (an aitbc1 address) is required", field)
	}
	return nil
}

type stakeBody struct {
	Operator address.Address `json:"operator"`
	Amount   coin.Amount     `json:"amount"`
}

type depositBody struct {
	Coordinator address.Address `json:"coordinator"`
	Amount      coin.Amount     `json:"amount"`
}

func refBody(build func(string) tx.Msg) func(dec func(any) error) (tx.Msg, error) {
	return func(dec func(any) error) (tx.Msg, error) {
		var b struct {
			ID string `json:"id"`
		}
		err := dec(&b)
		return build(b.ID), err
	}
}

// ErrMsgJSON is a message to propose that cannot be built.
var ErrMsgJSON = errors.New("message")

// msgFromJSON builds the message p describes. The chain checks the message
// itself when the proposal executes; this catches what can be caught
// before paying a fee: an unknown type, an unknown or malformed field.
func msgFromJSON(p proposalMsg) (tx.Msg, error) {
	if p.Type == "" {
		return tx.Msg{}, fmt.Errorf("%w: no type", ErrMsgJSON)
	}
	if p.CBOR != "" {
		if len(p.Body) > 0 {
			return tx.Msg{}, fmt.Errorf("%w: give a body or cbor, not both", ErrMsgJSON)
		}
		b, err := hex.DecodeString(p.CBOR)
		if err != nil {
			return tx.Msg{}, fmt.Errorf("%w: cbor: %v", ErrMsgJSON, err)
		}
		return tx.Msg{Type: p.Type, Body: b}, nil
	}
	build, ok := msgBuilders[p.Type]
	if !ok {
		return tx.Msg{}, fmt.Errorf("%w: no JSON form for type %q (give its body as \"cbor\"); known: %s", ErrMsgJSON, p.Type, strings.Join(slices.Sorted(maps.Keys(msgBuilders)), ", "))
	}
	body := p.Body
	if len(body) == 0 {
		body = json.RawMessage("{}")
	}
	m, err := build(func(v any) error {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		return dec.Decode(v)
	})
	if err != nil {
		return tx.Msg{}, fmt.Errorf("%w: %s body: %v", ErrMsgJSON, p.Type, err)
	}
	return m, nil
}

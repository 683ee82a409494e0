package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/rentals"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/rpc"
)

// rentOpts are the flags of `aitbc rent`.
type rentOpts struct {
	wallet, password, serviceID, leaseID, maxAmount string
	agentID                                         string
	duration                                        time.Duration
}

// signer returns a marketRun that signs with the options' wallet and
// waits for the transaction's block (the same path as the marketplace's
// actions, so a refusal exits 1 with the chain's code).
func (o *rentOpts) signer(g *Globals) *marketRun {
	return &marketRun{g: g, o: &marketOpts{wallet: o.wallet, password: o.password}, node: g.node()}
}

func (o *rentOpts) seconds() (uint64, error) {
	if o.duration <= 0 || o.duration%time.Second != 0 {
		return 0, usagef("--duration must be a positive whole number of seconds (or e.g. 1h), not %s", o.duration)
	}
	return uint64(o.duration / time.Second), nil
}

func (o *rentOpts) max() (coin.Amount, error) {
	if o.maxAmount == "" {
		return 0, nil
	}
	return amountFlag("max-amount", o.maxAmount)
}

func leaseLine(w io.Writer, v rentals.View) {
	fmt.Fprintf(w, "lease_id %s | %s | service %s | %s AITBC/hour | %s", v.ID, v.Status, v.Service, v.Price, v.GPU)
	if v.GPUMemoryMB > 0 {
		fmt.Fprintf(w, " %d MB", v.GPUMemoryMB)
	}
	fmt.Fprintf(w, " | locked %s drawn %s refunded %s remaining %s", v.Locked, v.Drawn, v.Refunded, v.Remaining)
	if v.Status == "active" {
		fmt.Fprintf(w, " | paid until %s (%s left)", v.End.Local().Format(time.DateTime), time.Duration(v.SecondsLeft)*time.Second)
	} else {
		fmt.Fprintf(w, " | closed at block %d: %s", v.Closed, v.Reason)
	}
	fmt.Fprintln(w)
}

// openedLease finds the lease the customer's rentals/open made in block
// height: the chain numbers leases, the transaction does not return one.
func openedLease(ctx context.Context, g *Globals, customer address.Address, height int64) (rentals.View, error) {
	list, err := rentals.QueryList(ctx, g.node(), rentals.Filter{Customer: customer.String()})
	if err != nil {
		return rentals.View{}, err
	}
	for _, v := range list.Leases {
		if v.Opened == height {
			return v, nil
		}
	}
	return rentals.View{}, fmt.Errorf("rent: the lease opened in block %d is not among %s's leases", height, customer)
}

func newRentCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rent",
		Short: "Rent a miner's GPU by the hour: a lease on a gpu-rental listing, drawn per block from escrow on chain",
		Long: `A lease holds a place of a gpu-rental (or gpu-compute) listing for the time
paid for, at the listing's hourly price. Opening it locks the whole price in
the chain's rentals.escrow account; every block pays the provider for the time
that passed, so the lease can never run overdrawn. It closes by itself when
its paid-up time is over, or when you (or the provider) end it, and the unused
part comes back at once. Its place on the listing is free again from the block
it closes in.`,
		Example: `  aitbc rent open --service-id gpu-cloud --duration 1h --wallet researcher-1
  aitbc rent status --wallet researcher-1
  aitbc rent extend --lease-id rent-1 --duration 30m --wallet researcher-1
  aitbc rent end --lease-id rent-1 --wallet researcher-1 --output json`,
	}
	var o rentOpts
	withWallet := func(c *cobra.Command, who string) {
		c.Flags().StringVar(&o.wallet, "wallet", "", who+" (required)")
		c.Flags().StringVar(&o.password, "password", "", "wallet password (or AITBC_PASSWORD)")
	}

	open := &cobra.Command{
		Use:   "open",
		Short: "Lease a gpu-rental listing for --duration at its hourly price (the whole price is locked now)",
		Example: `  aitbc rent open --service-id gpu-cloud --duration 3600 --wallet researcher-1
  aitbc rent open --service-id gpu-cloud --duration 2h --max-amount 100 --wallet researcher-1 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need("service-id", o.serviceID); err != nil {
				return err
			}
			secs, err := o.seconds()
			if err != nil {
				return err
			}
			maxAmt, err := o.max()
			if err != nil {
				return err
			}
			out, err := openLease(cmd.Context(), g, &o, secs, maxAmt)
			if err != nil {
				return err
			}
			return g.Print(out, func(w io.Writer) { printOpened(w, out, o.wallet) })
		},
	}
	open.Flags().StringVar(&o.serviceID, "service-id", "", "the gpu-rental listing (required)")
	secondsFlag(open.Flags(), &o.duration, "duration", time.Hour, "how long (seconds, or e.g. 90m)")
	open.Flags().StringVar(&o.maxAmount, "max-amount", "", "refuse if the lease would lock more AITBC than this")
	open.Flags().StringVar(&o.agentID, "agent-id", "", "name of the coordinator's slot allocation (default: the lease id)")
	withWallet(open, "the renter's wallet")

	extend := &cobra.Command{
		Use:     "extend",
		Short:   "Pay for --duration more of an active lease",
		Example: `  aitbc rent extend --lease-id rent-1 --duration 30m --wallet researcher-1`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need("lease-id", o.leaseID); err != nil {
				return err
			}
			secs, err := o.seconds()
			if err != nil {
				return err
			}
			maxAmt, err := o.max()
			if err != nil {
				return err
			}
			res, _, err := o.signer(g).submit(cmd.Context(), rentals.NewExtendMsg(o.leaseID, secs, maxAmt))
			if err != nil {
				return err
			}
			return printLeaseAfter(cmd.Context(), g, o.leaseID, res)
		},
	}
	extend.Flags().StringVar(&o.leaseID, "lease-id", "", "the lease (required)")
	secondsFlag(extend.Flags(), &o.duration, "duration", time.Hour, "time to add (seconds, or e.g. 30m)")
	extend.Flags().StringVar(&o.maxAmount, "max-amount", "", "refuse if the extension would lock more AITBC than this")
	withWallet(extend, "the renter's wallet")

	end := &cobra.Command{
		Use:     "end",
		Short:   "End a lease now, as its renter or its provider: the time used is paid, the rest refunded",
		Example: `  aitbc rent end --lease-id rent-1 --wallet researcher-1`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need("lease-id", o.leaseID); err != nil {
				return err
			}
			res, _, err := o.signer(g).submit(cmd.Context(), rentals.NewEndMsg(o.leaseID))
			if err != nil {
				return err
			}
			return printLeaseAfter(cmd.Context(), g, o.leaseID, res)
		},
	}
	end.Flags().StringVar(&o.leaseID, "lease-id", "", "the lease (required)")
	withWallet(end, "the renter's or the provider's wallet")

	var provider bool
	var all bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show a lease, a wallet's leases (as renter, or --provider), a listing's, or every active lease",
		Example: `  aitbc rent status --lease-id rent-1
  aitbc rent status --wallet researcher-1 --output json
  aitbc rent status --wallet gpu-provider --provider
  aitbc rent status --service-id gpu-cloud --all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if o.leaseID != "" {
				v, err := rentals.Query(ctx, g.node(), o.leaseID)
				if err != nil {
					return err
				}
				return g.Print(v, func(w io.Writer) { leaseLine(w, v) })
			}
			f := rentals.Filter{Service: o.serviceID, ActiveOnly: !all}
			if o.wallet != "" {
				a, err := g.walletAddress(ctx, o.wallet)
				if err != nil {
					return err
				}
				if provider {
					f.Provider = a.String()
				} else {
					f.Customer = a.String()
				}
				if o.serviceID != "" {
					return usagef("--wallet and --service-id: one at a time")
				}
			}
			list, err := rentals.QueryList(ctx, g.node(), f)
			if err != nil {
				return err
			}
			return g.Print(list, func(w io.Writer) {
				if len(list.Leases) == 0 {
					fmt.Fprintln(w, "no leases")
				}
				for _, v := range list.Leases {
					leaseLine(w, v)
				}
				if list.Truncated {
					fmt.Fprintf(w, "(the newest %d only)\n", len(list.Leases))
				}
			})
		},
	}
	status.Flags().StringVar(&o.leaseID, "lease-id", "", "one lease")
	status.Flags().StringVar(&o.wallet, "wallet", "", "a wallet's leases (its name or address)")
	status.Flags().BoolVar(&provider, "provider", false, "the leases of --wallet as provider")
	status.Flags().StringVar(&o.serviceID, "service-id", "", "a listing's leases")
	status.Flags().BoolVar(&all, "all", false, "closed leases too")

	allocate := &cobra.Command{
		Use:   "allocate",
		Short: "Have the coordinator hold an active lease's miner slot for the renter (rent open does it; this retries)",
		Example: `  aitbc rent allocate --lease-id rent-1 --wallet researcher-1
  aitbc rent allocate --lease-id rent-1 --agent-id gpu-worker-1 --wallet researcher-1 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need("lease-id", o.leaseID); err != nil {
				return err
			}
			if err := need("wallet", o.wallet); err != nil {
				return err
			}
			a, err := reserveLease(cmd.Context(), g, &o, o.leaseID)
			if err != nil {
				return err
			}
			return g.Print(a, func(w io.Writer) { allocLine(w, a) })
		},
	}
	allocate.Flags().StringVar(&o.leaseID, "lease-id", "", "the lease (required)")
	allocate.Flags().StringVar(&o.agentID, "agent-id", "", "name of the allocation (default: the lease id)")
	withWallet(allocate, "the renter's wallet")

	cmd.AddCommand(open, extend, end, status, allocate)
	return cmd
}

// printLeaseAfter prints lease id as the block of res left it.
func printLeaseAfter(ctx context.Context, g *Globals, id string, res rpc.Transaction) error {
	v, err := rentals.Query(ctx, g.node(), id)
	if err != nil {
		return err
	}
	return printLeaseTx(g, v, res)
}

// leaseTx is a signing verb's --output json: the lease after the block,
// and the transaction (its fee is what the lease's books do not show).
type leaseTx struct {
	rentals.View
	TxHash string      `json:"tx_hash"`
	Height int64       `json:"height"`
	Fee    coin.Amount `json:"fee"`
	// Allocation is the slot the coordinator holds for the renter (rent
	// open), or AllocationError why it holds none.
	Allocation      *coordinator.Allocation `json:"allocation,omitempty"`
	AllocationError string                  `json:"allocation_error,omitempty"`

	tx rpc.Transaction
}

// openLease opens a lease on o.serviceID for secs seconds and has the
// coordinator hold the leased miner's slot for the renter. The lease is
// paid whatever the coordinator says: its refusal is reported in
// AllocationError, not as a failure.
func openLease(ctx context.Context, g *Globals, o *rentOpts, secs uint64, maxAmt coin.Amount) (leaseTx, error) {
	res, cust, err := o.signer(g).submit(ctx, rentals.NewOpenMsg(o.serviceID, secs, maxAmt))
	if err != nil {
		return leaseTx{}, err
	}
	v, err := openedLease(ctx, g, cust, res.Height)
	if err != nil {
		return leaseTx{}, err
	}
	out := leaseTx{View: v, TxHash: res.Hash, Height: res.Height, Fee: res.Fee, tx: res}
	if a, err := reserveLease(ctx, g, o, v.ID); err != nil {
		out.AllocationError = err.Error()
	} else {
		out.Allocation = &a
	}
	return out, nil
}

func printOpened(w io.Writer, out leaseTx, wallet string) {
	leaseLine(w, out.View)
	if out.Allocation == nil {
		fmt.Fprintf(w, "note: the coordinator holds no slot for it (%s): run aitbc rent allocate --lease-id %s --wallet %s\n", out.AllocationError, out.ID, wallet)
	} else {
		allocLine(w, *out.Allocation)
	}
	txLine(w, out.tx)
}

// allocateByLease is `resource allocate --wallet`: the seeds' allocation
// as a paid lease (one GPU, that is one place of a gpu-rental listing, per
// lease), with the coordinator holding the slot for agent.
func allocateByLease(ctx context.Context, g *Globals, o *rentOpts, agent string, gpus int, memoryMB uint64, d time.Duration) error {
	if agent == "" {
		return usagef("--agent-id is required")
	}
	if gpus != 1 {
		return usagef("--gpu %d: a lease holds one GPU (one place of a gpu-rental listing); open one lease per GPU", gpus)
	}
	o.agentID, o.duration = agent, d
	secs, err := o.seconds()
	if err != nil {
		return err
	}
	if o.serviceID == "" {
		if o.serviceID, err = rentableListing(ctx, g, memoryMB); err != nil {
			return err
		}
	}
	out, err := openLease(ctx, g, o, secs, 0)
	if err != nil {
		return err
	}
	return g.Print(out, func(w io.Writer) { printOpened(w, out, o.wallet) })
}

// rentableListing picks the cheapest active gpu-rental listing, available
// now, with a free place and at least memoryMB of GPU memory: what
// `resource allocate --wallet` leases when no --service-id is given.
func rentableListing(ctx context.Context, g *Globals, memoryMB uint64) (string, error) {
	sl, err := market.QueryServices(ctx, g.node(), market.ServiceFilter{Type: market.TypeGPURental, AvailableNow: true, MinMemoryMB: memoryMB})
	if err != nil {
		return "", err
	}
	list := sl.Services
	best := -1
	for i, sv := range list {
		if sv.Status != "active" || sv.Unit != market.UnitHour {
			continue
		}
		if sv.Capacity > 0 {
			n, err := rentals.QueryList(ctx, g.node(), rentals.Filter{Service: sv.ID, ActiveOnly: true})
			if err != nil {
				return "", err
			}
			if uint64(len(n.Leases))+uint64(sv.Live) >= uint64(sv.Capacity) {
				continue
			}
		}
		if best < 0 || sv.Price < list[best].Price {
			best = i
		}
	}
	if best < 0 {
		return "", fmt.Errorf("no active gpu-rental listing with a free place and %d MB of GPU memory (aitbc marketplace --action search --query GPU)", memoryMB)
	}
	return list[best].ID, nil
}

// reserveLease asks the coordinator, as the renter's tenant, to hold the
// leased miner's slot for it.
func reserveLease(ctx context.Context, g *Globals, o *rentOpts, id string) (coordinator.Allocation, error) {
	w, err := g.wallets(ctx)
	if err != nil {
		return coordinator.Allocation{}, err
	}
	c, _, err := g.tenantFor(ctx, w, o.wallet, o.password)
	if err != nil {
		return coordinator.Allocation{}, err
	}
	return c.AllocateLease(ctx, id, o.agentID)
}

func allocLine(w io.Writer, a coordinator.Allocation) {
	fmt.Fprintf(w, "coordinator: slot held for agent %s on miner %s until %s; this wallet's jobs (ai-submit, its API key on /v1/chat/completions) run there first\n",
		a.AgentID, a.Miner, a.Expires.Local().Format(time.DateTime))
}

func printLeaseTx(g *Globals, v rentals.View, res rpc.Transaction) error {
	out := leaseTx{View: v, TxHash: res.Hash, Height: res.Height, Fee: res.Fee, tx: res}
	return g.Print(out, func(w io.Writer) { leaseLine(w, v); txLine(w, res) })
}

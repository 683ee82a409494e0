package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
)

// A provider's miners (docs/MARKETPLACE.md, "A provider's miners"): the
// provider names a miner (add-miner), the miner names the provider
// (set-provider, or aitbc miner start --provider); with both, the miner
// runs the jobs the provider's agreements pay for.

func init() {
	marketActions["add-miner"] = marketAction{"name --miner as one that runs your jobs, signed by the provider --wallet (the miner consents with set-provider or miner start --provider)", (*marketRun).addMiner}
	marketActions["remove-miner"] = marketAction{"stop naming --miner: it no longer runs your jobs (--wallet: the provider)", (*marketRun).removeMiner}
	marketActions["set-provider"] = marketAction{"the miner's half: the miner --wallet works for --provider (none: for nobody)", (*marketRun).setProvider}
	marketActions["miners"] = marketAction{"the miners of provider --wallet: named, consenting, active, and those serving its jobs", (*marketRun).providerMiners}
}

// ProviderMiners is what add-miner, remove-miner and miners print.
type ProviderMiners struct {
	Provider address.Address    `json:"provider"`
	Miners   []market.MinerLink `json:"miners"`
	Serving  []address.Address  `json:"serving_miners"`
	Tx       string             `json:"tx,omitempty"`
	Height   int64              `json:"height,omitempty"`
}

func (r *marketRun) minerFlag() (address.Address, error) {
	if err := need("miner", r.o.miner); err != nil {
		return address.Address{}, err
	}
	a, err := address.Parse(strings.TrimSpace(r.o.miner))
	if err != nil {
		return address.Address{}, usagef("--miner: %v", err)
	}
	return a, nil
}

func (r *marketRun) addMiner(ctx context.Context) error    { return r.linkMiner(ctx, true) }
func (r *marketRun) removeMiner(ctx context.Context) error { return r.linkMiner(ctx, false) }

func (r *marketRun) linkMiner(ctx context.Context, add bool) error {
	m, err := r.minerFlag()
	if err != nil {
		return err
	}
	msg := market.NewRemoveMinerMsg(m)
	if add {
		msg = market.NewAddMinerMsg(m)
	}
	res, prov, err := r.submit(ctx, msg)
	if err != nil {
		return err
	}
	return r.printMiners(ctx, prov, res.Hash, res.Height)
}

func (r *marketRun) providerMiners(ctx context.Context) error {
	if err := need("wallet", r.o.wallet); err != nil {
		return err
	}
	prov, err := r.addr(ctx, r.o.wallet)
	if err != nil {
		return err
	}
	return r.printMiners(ctx, prov, "", 0)
}

func (r *marketRun) printMiners(ctx context.Context, prov address.Address, hash string, height int64) error {
	pv, err := market.QueryProvider(ctx, r.node, prov)
	if err != nil {
		return err
	}
	out := ProviderMiners{Provider: prov, Miners: pv.Miners, Serving: pv.Serving, Tx: hash, Height: height}
	return r.g.Print(out, func(w io.Writer) {
		for _, l := range out.Miners {
			fmt.Fprintf(w, "miner %s | %s | %s\n", l.Miner, yesNo(l.Consented, "names this provider", "has not named this provider"), yesNo(l.Active, "active", "not an active miner"))
		}
		fmt.Fprintf(w, "%s: %d miners named, %d serving its jobs\n", prov, len(out.Miners), len(out.Serving))
		if hash != "" {
			fmt.Fprintf(w, "tx %s committed in block %d\n", hash, height)
		}
	})
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// setProvider sends the miner's half, miners/set_provider, signed by the
// miner's wallet.
func (r *marketRun) setProvider(ctx context.Context) error {
	if err := need("provider", r.o.provider); err != nil {
		return err
	}
	var p *address.Address
	if v := strings.TrimSpace(r.o.provider); v != "none" {
		a, err := r.addr(ctx, v)
		if err != nil {
			return usagef("--provider: %v", err)
		}
		p = &a
	}
	res, m, err := r.submit(ctx, miners.NewSetProviderMsg(p))
	if err != nil {
		return err
	}
	v, err := miners.Query(ctx, r.node, m)
	if err != nil {
		return err
	}
	return r.g.Print(v, func(w io.Writer) {
		if v.Provider == nil {
			fmt.Fprintf(w, "miner %s works for no provider\n", m)
		} else {
			fmt.Fprintf(w, "miner %s works for provider %s\n", m, *v.Provider)
		}
		txLine(w, res)
	})
}

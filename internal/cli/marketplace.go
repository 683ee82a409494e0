package cli

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// marketFlags declares every flag the marketplace verbs read.
func marketFlags(f *pflag.FlagSet, o *marketOpts) {
	f.StringVar(&o.name, "name", "", "service name (create)")
	f.StringVar(&o.typ, "type", "", "service type: ai-inference, ai-training, gpu-rental, data-processing, gpu-compute")
	f.StringVar(&o.price, "price", "", "price per unit in AITBC (create, reprice, pricing)")
	f.StringVar(&o.wallet, "wallet", "", "wallet that signs, or whose records are shown")
	f.StringVar(&o.password, "password", "", "wallet password (or AITBC_PASSWORD; not needed while the daemon holds the wallet unlocked)")
	f.StringVar(&o.description, "description", "", "service description (create)")
	f.StringVar(&o.parameters, "parameters", "", "service parameters k:v,k:v (create)")
	f.StringVar(&o.unit, "unit", "", "price unit: job, hour, 1k-tokens (create; default: per hour for gpu-rental, else per job)")
	f.UintVar(&o.capacity, "capacity", 0, "live agreements the service takes at once, 0 unlimited (create)")
	f.BoolVar(&o.autoAccept, "auto-accept", false, "create: accept bids at the price at once; bid: become an agreement at once where the listing allows")
	f.StringVar(&o.model, "model", "", "model an ai-inference service runs (create, order, quote)")
	f.StringVar(&o.query, "query", "", "words to search for (search)")
	f.StringVar(&o.serviceID, "service-id", "", "service id (svc-N)")
	f.StringVar(&o.bidID, "bid-id", "", "bid id (bid-N); an agreement's id is its bid's")
	f.StringVar(&o.amount, "amount", "", "AITBC: a bid's price per unit, a settlement, an order's max price per unit")
	f.Uint64Var(&o.units, "units", 1, "units a bid or order buys: jobs, hours or thousands of tokens")
	f.StringVar(&o.period, "period", "", "time window: 5m, 1h, 24h, 7d, 30d (default: all)")
	f.StringVar(&o.strategy, "strategy", "", "pricing strategy: dynamic")
	f.StringVar(&o.minPrice, "min-price", "", "dynamic pricing's lowest price (default: half the price)")
	f.StringVar(&o.maxPrice, "max-price", "", "dynamic pricing's highest price (default: twice the price)")
	f.StringVar(&o.metric, "metric", "", "metric to optimize (optimize)")
	f.StringVar(&o.txID, "transaction-id", "", "transaction hash (debug)")
	f.StringVar(&o.jobID, "job-id", "", "job id, 32 hex digits (rate)")
	f.UintVar(&o.stars, "stars", 0, "rating, 1-5 (rate)")
	f.StringVar(&o.review, "review", "", "a short review (rate) or the reason of a dispute")
	f.StringVar(&o.payoutID, "payout-id", "", "payout id (dispute, resolve)")
	f.BoolVar(&o.refund, "refund", false, "resolve: refund the payout to the customer (the provider concedes)")
	f.Uint64Var(&o.maxTokens, "max-tokens", 0, "tokens a job produces at most (quote)")
	f.UintVar(&o.minScore, "min-score", 0, "lowest provider reputation an order accepts, 0-100")
	f.StringVar(&o.miner, "miner", "", "miner address (add-miner, remove-miner)")
	f.StringVar(&o.provider, "provider", "", "provider address or wallet the miner works for, or none (set-provider)")
	// The seed's load-test flags, read by the verbs that measure.
	o.flags = map[string]*string{}
	for _, n := range []string{"duration", "transactions-per-second", "jobs-per-minute", "transactions", "concurrent"} {
		o.flags[n] = f.String(n, "", "load test parameter")
	}
}

// newMarketplaceCmd is the seeds' spelling: aitbc marketplace --action <verb>.
func newMarketplaceCmd(g *Globals) *cobra.Command {
	o := &marketOpts{}
	var action string
	cmd := &cobra.Command{
		Use:   "marketplace --action <action>",
		Short: "The on-chain marketplace: services, bids, agreements, payments, ratings, disputes and their books",
		Long: `Every action reads or writes the marketplace module on chain; signing
actions wait for their block and print the record they made. Actions:

` + marketHelp() + `
aitbc market <action> is the same with the action as a word.`,
		Example: `  aitbc marketplace --action create --name "AI Image Generation Service" --type ai-inference --price 100 --wallet marketplace-provider
  aitbc marketplace --action search --query "AI Image Generation" | grep service_id | head -1 | cut -d" " -f2
  aitbc marketplace --action bid --service-id svc-1 --amount 120 --wallet customer-1
  aitbc marketplace --action accept-bid --service-id svc-1 --bid-id bid-5 --wallet marketplace-provider
  aitbc marketplace --action settle-payment --service-id svc-1 --amount 120 --wallet customer-1
  aitbc marketplace --action reconcile`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if action == "" {
				return usagef("--action is required; one of: %v", marketVerbs())
			}
			return runMarket(cmd.Context(), g, o, action)
		},
	}
	cmd.Flags().StringVar(&action, "action", "", "what to do (see the list above)")
	marketFlags(cmd.Flags(), o)
	return cmd
}

// newMarketCmd is the idiomatic spelling: aitbc market <verb>.
func newMarketCmd(g *Globals) *cobra.Command {
	o := &marketOpts{}
	cmd := &cobra.Command{
		Use:   "market <verb>",
		Short: "The on-chain marketplace (as marketplace --action, with the action as a word)",
		Long:  "Verbs:\n\n" + marketHelp(),
		Example: `  aitbc market list
  aitbc market quote --type ai-inference --model llama2 --max-tokens 500
  aitbc market order --type ai-inference --amount 5 --units 2 --wallet customer-1
  aitbc market add-miner --miner aitbc1... --wallet marketplace-provider
  aitbc market set-provider --provider aitbc1... --wallet my-miner`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: marketVerbs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMarket(cmd.Context(), g, o, args[0])
		},
	}
	marketFlags(cmd.Flags(), o)
	return cmd
}

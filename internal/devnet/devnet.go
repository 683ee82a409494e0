// Package devnet runs the whole AITBC system in one process on an embedded
// default: a single-validator chain with a funded genesis-ops wallet, the
// node REST API, the wallet daemon, the coordinator and miners on the
// built-in engine serving tolstoy-1m. All state lives under one home
// directory, so stopping and starting again keeps the chain, the wallets
// and the coordinator's jobs.
//
// The services themselves are built and stopped by internal/system; this
// package adds what makes a devnet: its wallets, its genesis, genesis-ops'
// tenant and deposit, and the banner.
//
// Imported by the devnet command, the benchmarks and end-to-end tests.
package devnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/exchange"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/miner/backend"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/walletd"
	"github.com/aitbc/aitbc/internal/web"
)

// Wallet names the devnet creates, all with the genesis password.
const (
	GenesisWallet     = "genesis-ops"
	CoordinatorWallet = "devnet-coordinator"
	// MakerWallet is the devnet market maker's wallet (docs/EXCHANGE.md).
	MakerWallet = "market-maker"
)

// MinerWallet names the wallet of the devnet's miner i.
func MinerWallet(i int) string { return fmt.Sprintf("devnet-miner-%d", i) }

// Genesis amounts.
const (
	GenesisBalance = 1_000_000_000 * coin.Unit // genesis-ops
	ServiceBalance = 10_000 * coin.Unit        // the coordinator and each miner, for fees and stake
	DevnetDeposit  = 100_000 * coin.Unit       // genesis-ops' deposit with the coordinator
)

// Config configures a devnet. Zero values take the defaults in the
// comments, which are the seed documents' ports. A listen address of
// "127.0.0.1:0" picks a free port (tests).
type Config struct {
	Home              string        // state directory (required)
	ChainID           string        // aitbc-devnet
	BlockTime         time.Duration // 2s
	GenesisPassword   string        // 123
	RPCListen         string        // node REST: 127.0.0.1:8006
	CometRPCListen    string        // CometBFT RPC: tcp://127.0.0.1:26657 ("off" disables)
	P2PListen         string        // tcp://127.0.0.1:8005
	WalletListen      string        // wallet daemon: 127.0.0.1:8002
	CoordinatorListen string        // coordinator: 127.0.0.1:8000 ("off": no coordinator, and so no miners)
	WebListen         string        // web pages: "" or "off" none (aitbc devnet serves them on 127.0.0.1:8016)
	WebLimits         httpx.Limits  // the pages' server limits (zero: system.DefaultWebLimits)
	// ExchangeListen is the exchange API's address: "" or "off" none
	// (aitbc devnet serves it on 127.0.0.1:8001). With it runs the market
	// maker, quoting around MakerPrice (msat per AITBC; 0: 1 BTC =
	// 100,000 AITBC) from the wallet MakerWallet, which genesis-ops funds.
	ExchangeListen string
	MakerPrice     uint64
	// CoordinatorLimits are the coordinator's per-tenant limits and
	// CoordinatorHTTP its server's (zero: the defaults). Benchmarks lift
	// them: one tenant there offers the load of many.
	CoordinatorLimits coordinator.Limits
	CoordinatorHTTP   httpx.Limits
	// Store is the coordinators' store: "" an SQLite file in the home, or a
	// postgres:// URL, which Coordinators > 1 needs (they share it).
	Store string
	// Coordinators is how many coordinators share the work (1). The first
	// listens on CoordinatorListen, the others on the ports after it
	// (":0": each a free port); miners list them all, each starting at a
	// different one (docs/COORDINATOR.md, "Scaling out").
	Coordinators    int
	Miners          int         // in-process miners on the built-in engine: 1 (negative: none)
	MinerSlots      int         // concurrent jobs per miner: 2
	ModelsDir       string      // Ollama's model store the built-in engine also serves (engine.OllamaStore): none
	MinerPrice      coin.Amount // per 1k output tokens: 1 AITBC
	LogLevel        string      // CometBFT log level: error, info, debug
	CheckInvariants bool        // audit every block; halt on a broken invariant (tests)
	Keystore        []keystore.Option
	// WrapRunner, when set, wraps miner i's runner (tests slow a miner
	// down or watch it).
	WrapRunner func(i int, r miner.Runner) miner.Runner
	Log        *slog.Logger
	// NoHosting turns off hosting providers: a miner run for each wallet
	// of the devnet's daemon that lists a service no miner serves
	// (hosting.go).
	NoHosting bool
	// BTC adds the Bitcoin side (aitbc devnet --btc, bridge.go): a regtest
	// node, a test Bitcoin wallet, the bridge in genesis and its daemon.
	// BTCManual leaves out the daemon and the automatic mining (tests run
	// them).
	BTC, BTCManual bool
	// BTCConfirmations is the bridge's N (1).
	BTCConfirmations int64
	// BTCOperators is how many bridge operators the genesis names, each
	// with its own AITBC wallet, Bitcoin key and daemon (1);
	// BTCThreshold how many must attest a deposit and sign a payout (1).
	BTCOperators, BTCThreshold int
	// OracleListen is the metrics oracle's address (oracle.go): "" or
	// "off" none (aitbc devnet serves it on 127.0.0.1:8010). Its wallet
	// OracleWallet is the agents module's oracle in genesis; OracleEpoch
	// is its epoch (DevnetOracleEpoch), OracleHTTP its server's limits.
	OracleListen string
	OracleEpoch  time.Duration
	OracleHTTP   httpx.Limits
	// SpanMiners span servers hold even shares of the default model's
	// layers (aitbc devnet --span-miners, spans.go), the first on
	// SpanListen (127.0.0.1:8031), the others on the ports after it.
	SpanMiners int
	SpanListen string
	// Audits, when set, is the audits module's genesis parameters (spot
	// checks; nil: its defaults, no checks).
	Audits *audits.Params
	// WrapSpan, when set, wraps span server i's API (tests kill one
	// mid-generation).
	WrapSpan func(i int, h http.Handler) http.Handler
	// SpotCheckBps, when above 0 (aitbc devnet --spot-check), sets the
	// audits module's spot_check_bps in a new devnet's genesis (over
	// Audits or the defaults) and runs a bonded verifier in process
	// (verifier.go), so that spot checks are done out of the box.
	SpotCheckBps uint64
}

func (c *Config) defaults() {
	if c.ChainID == "" {
		c.ChainID = "aitbc-devnet"
	}
	if c.BlockTime == 0 {
		c.BlockTime = 2 * time.Second
	}
	if c.GenesisPassword == "" {
		c.GenesisPassword = "123"
	}
	if c.RPCListen == "" {
		c.RPCListen = "127.0.0.1:8006"
	}
	if c.CometRPCListen == "" {
		c.CometRPCListen = "tcp://127.0.0.1:26657"
	}
	if c.CometRPCListen == "off" {
		c.CometRPCListen = ""
	}
	if c.P2PListen == "" {
		c.P2PListen = "tcp://127.0.0.1:8005"
	}
	if c.WalletListen == "" {
		c.WalletListen = "127.0.0.1:8002"
	}
	if c.CoordinatorListen == "" {
		c.CoordinatorListen = "127.0.0.1:8000"
	}
	if c.Miners == 0 {
		c.Miners = 1
	}
	if c.Coordinators <= 0 {
		c.Coordinators = 1
	}
	if c.MinerSlots == 0 {
		c.MinerSlots = 2
	}
	if c.MinerPrice == 0 {
		c.MinerPrice = coin.Unit
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// ChainHome is where the chain keeps its data under a devnet home.
func ChainHome(home string) string { return filepath.Join(home, "chain") }

// APIKeyFile holds the API key of the devnet's genesis-ops tenant.
func APIKeyFile(home string) string { return filepath.Join(home, "coordinator", "api-key") }

// Devnet is a running devnet: a system.System with the devnet's wallets,
// genesis, tenant and deposit.
type Devnet struct {
	cfg         Config
	sys         *system.System
	Node        *system.Node
	Wallets     *walletd.Server
	Coordinator *coordinator.Service
	Miners      []*miner.Miner
	Registry    *prometheus.Registry // the node REST API's metrics
	Genesis     address.Address
	APIKey      string // genesis-ops' coordinator API key

	RPCAddr, WalletAddr, CoordinatorAddr, WebAddr net.Addr
	ExchangeAddr                                  net.Addr

	miners []*system.Miner
	webLn  net.Listener // the pages' port, bound first, until StartWeb takes it
	exLn   net.Listener // the exchange API's port, likewise

	// More coordinators on the shared store (Config.Coordinators), each in
	// a system of its own (a system runs one coordinator).
	extra []*system.System
	// Coordinators are every coordinator's service, the first being
	// Coordinator; CoordinatorURLs their base URLs.
	Coordinators    []*coordinator.Service
	CoordinatorURLs []string

	host    *hoster // the miners the devnet runs for its providers (hosting.go)
	builtin backend.Backend
	BTC     *BTC       // with Config.BTC
	oracle  *oracleRun // with Config.OracleListen (oracle.go)
	// reporters are the serving agents that report to the oracle, and
	// modelHash the default model's (oracle.go). reportersMu guards
	// reporters and oracle: hosted miners join from the hosting loop.
	reportersMu sync.Mutex
	reporters   []agentReporter
	modelHash   string
	// verifier: with Config.SpotCheckBps (verifier.go)
	verifier *verifierRun
	// announce: the coordinators' announcement on chain (announce.go)
	announce *announceRun

	// SpanURLs are the span servers' base URLs (Config.SpanMiners).
	SpanURLs []string
	spans    *spanMiners
}

// Start brings the devnet up and returns once every service answers.
// Stop it with Close. On error nothing is left running: every service
// already started is stopped, every port released.
func Start(ctx context.Context, cfg Config) (*Devnet, error) {
	cfg.defaults()
	if cfg.Home == "" {
		return nil, errors.New("devnet: home directory required")
	}
	d := &Devnet{cfg: cfg, sys: system.New(cfg.Log), Registry: prometheus.NewRegistry()}
	if err := d.start(ctx); err != nil {
		if d.host != nil {
			d.host.stop()
		}
		d.closeAnnounce()
		d.closeSpans()
		d.closeBTC()
		d.closeExtra()
		_ = d.sys.Close()
		if d.webLn != nil { // bound, not yet handed to the web server
			_ = d.webLn.Close()
		}
		if d.exLn != nil {
			_ = d.exLn.Close()
		}
		return nil, err
	}
	return d, nil
}

func (d *Devnet) start(ctx context.Context) error {
	cfg, log, sys := d.cfg, d.cfg.Log, d.sys
	d.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// The home first: a second devnet on it stops here, before it opens
	// or binds anything.
	if err := sys.LockHome(cfg.Home); err != nil {
		return fmt.Errorf("devnet: %w", err)
	}
	// The pages' port next: it is served last, once the coordinator runs,
	// but a busy port must stop the devnet before anything starts.
	if web := cfg.WebListen; web != "" && web != "off" {
		ln, err := net.Listen("tcp", web)
		if err != nil {
			return fmt.Errorf("devnet: web on %s: %w", web, err)
		}
		d.webLn = ln
	}
	if x := cfg.ExchangeListen; x != "" && x != "off" {
		ln, err := net.Listen("tcp", x)
		if err != nil {
			return fmt.Errorf("devnet: exchange API on %s: %w", x, err)
		}
		d.exLn = ln
	}

	// Wallets next: genesis funds their addresses.
	ks, err := keystore.ForHome(cfg.Home, cfg.Keystore...)
	if err != nil {
		return err
	}
	names := []string{GenesisWallet, CoordinatorWallet}
	for i := 0; i < cfg.Miners; i++ {
		names = append(names, MinerWallet(i))
	}
	for i := 0; i < cfg.SpanMiners; i++ {
		names = append(names, SpanWallet(i))
	}
	if cfg.BTC {
		names = append(names, d.bridgeWallets()...)
	}
	if d.oracleOn() {
		names = append(names, OracleWallet)
	}
	if d.verifierOn() {
		names = append(names, VerifierWallet)
	}
	addrs := map[string]address.Address{}
	for _, n := range names {
		a, err := ks.EnsureWallet(n, cfg.GenesisPassword)
		if err != nil {
			return fmt.Errorf("devnet: wallet %s: %w (start with the --genesis-password it was created with)", n, err)
		}
		addrs[n] = a
	}
	d.Genesis = addrs[GenesisWallet]

	chainHome := ChainHome(cfg.Home)
	spec := system.ChainSpec{ChainID: cfg.ChainID}
	for _, n := range names {
		bal := ServiceBalance
		if n == GenesisWallet {
			bal = GenesisBalance
		}
		spec.Accounts = append(spec.Accounts, system.GenesisAccount{Name: n, Address: addrs[n], Balance: bal})
	}
	if cfg.BTC {
		if err := d.bridgeGenesis(&spec, addrs); err != nil {
			return err
		}
	}
	if d.oracleOn() {
		if err := d.oracleGenesis(&spec, addrs[OracleWallet]); err != nil {
			return err
		}
	}
	if err := d.auditsGenesis(&spec); err != nil { // verifier.go
		return err
	}
	if err := privateGenesis(cfg.Home, &spec); err != nil { // private.go
		return err
	}
	created, err := system.InitChain(chainHome, spec)
	if err != nil {
		return err
	}
	if created {
		log.Info("new devnet chain", "chain_id", cfg.ChainID, "home", chainHome)
	}
	// The node signs POST /api/v1/faucet drips with a key of its own (it
	// holds no money: the faucet pays a drip's fee).
	faucetKey, err := system.FaucetKey(chainHome)
	if err != nil {
		return err
	}
	n, err := sys.StartNode(ctx, system.NodeConfig{
		Home: chainHome, Moniker: "devnet", BlockTime: cfg.BlockTime, FaucetKey: faucetKey,
		P2PListen: cfg.P2PListen, CometRPCListen: cfg.CometRPCListen, RESTListen: cfg.RPCListen, LogLevel: cfg.LogLevel,
		// One validator has no peers to exchange addresses with; without
		// PEX there is no address book, which CometBFT would otherwise
		// still be writing to the home after Stop returns.
		DisablePEX: true, CheckInvariants: cfg.CheckInvariants,
		Registry: d.Registry, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("devnet: %w", err)
	}
	d.Node, d.RPCAddr = n, n.APIAddr()

	// The coordinator's and miners' wallets sit unlocked in this daemon
	// for the devnet's life: keep them apart from the customers'. The
	// admin key (<home>/wallet/api-key, which the CLI, the web pages and
	// customers use) cannot unlock or sign with them; a key scoped to them
	// alone is written to walletd.ServiceKeyPath for the operator.
	service := []string{CoordinatorWallet, MakerWallet}
	for i := 0; i < cfg.Miners; i++ {
		service = append(service, MinerWallet(i))
	}
	for i := 0; i < cfg.SpanMiners; i++ {
		service = append(service, SpanWallet(i))
	}
	if cfg.BTC {
		service = append(service, d.bridgeWallets()...)
	}
	if d.oracleOn() {
		service = append(service, OracleWallet)
	}
	if d.verifierOn() {
		service = append(service, VerifierWallet)
	}
	w, err := sys.StartWallet(ctx, system.WalletConfig{Config: walletd.Config{
		Home: cfg.Home, Listen: cfg.WalletListen, DefaultWallet: GenesisWallet,
		Logger: log.With("service", "walletd"), Registry: prometheus.NewRegistry(), Keystore: cfg.Keystore,
		ServiceWallets: service,
	}})
	if err != nil {
		return fmt.Errorf("devnet: wallet daemon on %s: %w", cfg.WalletListen, err)
	}
	if err := w.Server.EnsureKeyFile(walletd.ServiceKeyPath(cfg.Home), service, "devnet service wallets"); err != nil {
		return fmt.Errorf("devnet: service wallets' key: %w", err)
	}
	d.Wallets, d.WalletAddr = w.Server, w.Addr()
	w.Service().SetPasswordGrace(walletd.PasswordGraceFromEnv(walletd.DefaultPasswordGrace)) // the seeds sign after create/send with a password

	if err := n.WaitHeight(ctx, 1); err != nil {
		return err
	}
	if cfg.BTC {
		if err := d.startBTC(ctx, w.Service()); err != nil {
			return err
		}
	}
	if cfg.CoordinatorListen == "off" {
		if err := d.startWeb(ctx); err != nil { // chain and wallet daemon only; a coordinator runs elsewhere
			return err
		}
		if err := d.startExchange(ctx, ks); err != nil {
			return err
		}
		return d.startOracle(ctx) // oracle.go
	}
	opKey, err := coordinator.LoadOrCreateOperatorKey(coordinator.OperatorKeyFile(cfg.Home)) // for `aitbc admin-jobs`
	if err != nil {
		return fmt.Errorf("devnet: %w", err)
	}
	if cfg.Coordinators > 1 && !store.IsPostgresURL(cfg.Store) {
		return errors.New("devnet: several coordinators share a PostgreSQL store: give --store postgres://...")
	}
	st := cfg.Store
	if st == "" {
		st = filepath.Join(cfg.Home, "coordinator", "coordinator.db")
	}
	// Job files: beside an SQLite store; a shared store's coordinators
	// keep them in its database.
	files := ""
	zkProver, err := prover(cfg.Home) // private.go
	if err != nil {
		return err
	}
	c, err := sys.StartCoordinator(ctx, system.CoordinatorConfig{
		Listen: cfg.CoordinatorListen, Store: st, FilesDir: files,
		Wallet:   walletd.WalletSender{S: w.Service(), Name: CoordinatorWallet, Password: cfg.GenesisPassword},
		Registry: prometheus.NewRegistry(), Logger: log.With("service", "coordinator"),
		Options: coordinator.Config{OperatorKey: opKey, Limits: cfg.CoordinatorLimits, Split: splitConfig(cfg, n.Client()), Prover: zkProver},
		Limits:  cfg.CoordinatorHTTP,
	})
	if err != nil {
		return fmt.Errorf("devnet: %w", err)
	}
	d.Coordinator, d.CoordinatorAddr = c.Service, c.Addr()
	d.Coordinators, d.CoordinatorURLs = []*coordinator.Service{c.Service}, []string{c.URL()}
	for i := 1; i < cfg.Coordinators; i++ {
		listen, err := nthListen(cfg.CoordinatorListen, i)
		if err != nil {
			return fmt.Errorf("devnet: coordinator %d: %w", i+1, err)
		}
		xs := system.New(log)
		d.extra = append(d.extra, xs)
		xc, err := xs.StartCoordinator(ctx, system.CoordinatorConfig{
			Listen: listen, Store: st, FilesDir: files, Chain: n.Client(),
			Wallet:   walletd.WalletSender{S: w.Service(), Name: CoordinatorWallet, Password: cfg.GenesisPassword},
			Registry: prometheus.NewRegistry(), Logger: log.With("service", "coordinator", "coordinator", i+1),
			Options: coordinator.Config{OperatorKey: opKey, Limits: cfg.CoordinatorLimits, Prover: zkProver},
			Limits:  cfg.CoordinatorHTTP,
		})
		if err != nil {
			return fmt.Errorf("devnet: coordinator %d: %w", i+1, err)
		}
		d.Coordinators, d.CoordinatorURLs = append(d.Coordinators, xc.Service), append(d.CoordinatorURLs, xc.URL())
	}
	if err := d.ensureTenant(ctx, n.Client(), addrs); err != nil {
		return err
	}
	d.announceCoordinators(ctx) // announce.go
	if err := d.startMiners(ctx, ks); err != nil {
		return err
	}
	if err := d.startVerifier(ctx, ks); err != nil { // verifier.go
		return err
	}
	if err := d.startSpanMiners(ctx, ks); err != nil {
		return err
	}
	if !cfg.NoHosting {
		b := d.builtin
		if b == nil { // no miners of its own
			b = backend.NewBuiltin(cfg.Home, backend.BuiltinOptions{Threads: 1, Logger: log, ModelsDir: cfg.ModelsDir})
		}
		d.startHosting(ks, b)
	}
	if err := d.startWeb(ctx); err != nil {
		return err
	}
	if err := d.startExchange(ctx, ks); err != nil {
		return err
	}
	return d.startOracle(ctx) // oracle.go
}

// MakerFunding is what genesis-ops sends the market maker when it holds
// less than a tenth of it: AITBC to sell (its bids need btc, which only
// the bridge brings).
const MakerFunding = 1_000_000 * coin.Unit

// startExchange serves the exchange API over the devnet's node and wallet
// daemon, with the market maker.
func (d *Devnet) startExchange(ctx context.Context, ks *keystore.Store) error {
	if d.cfg.ExchangeListen == "" || d.cfg.ExchangeListen == "off" {
		return nil
	}
	svc := d.Wallets.Service()
	a, err := ks.EnsureWallet(MakerWallet, d.cfg.GenesisPassword)
	if err != nil {
		return fmt.Errorf("devnet: wallet %s: %w", MakerWallet, err)
	}
	acct, err := d.Node.Client().Account(ctx, a)
	if err != nil {
		return fmt.Errorf("devnet: market maker: %w", err)
	}
	if acct.Balance < MakerFunding/10 {
		// Not awaited: the maker's rounds wait for the money themselves.
		if _, err := svc.Send(ctx, GenesisWallet, d.cfg.GenesisPassword, a, MakerFunding, 0); err != nil {
			return fmt.Errorf("devnet: funding the market maker: %w", err)
		}
	}
	ln := d.exLn
	d.exLn = nil // StartExchange owns it now, and closes it on failure
	x, err := d.sys.StartExchange(ctx, system.ExchangeConfig{Listen: d.cfg.ExchangeListen, Listener: ln, Config: exchange.Config{Log: d.cfg.Log.With("service", "exchange")},
		Maker:        &exchange.MakerConfig{Wallet: MakerWallet, Password: d.cfg.GenesisPassword, Reference: d.cfg.MakerPrice, Every: d.cfg.BlockTime, Log: d.cfg.Log.With("service", "market-maker")},
		MakerWallets: svc,
		SessionsPath: filepath.Join(d.cfg.Home, "exchange", "sessions.db"), // a restarted devnet signs no one out
	})
	if err != nil {
		return fmt.Errorf("devnet: %w", err)
	}
	d.ExchangeAddr = x.Addr()
	return nil
}

// ExchangeURL is the exchange API's base URL ("" when it is off).
func (d *Devnet) ExchangeURL() string {
	if d.ExchangeAddr == nil {
		return ""
	}
	return "http://" + d.ExchangeAddr.String()
}

// startWeb serves the explorer, marketplace and miner dashboard over the
// devnet's own node, coordinator and wallet daemon.
func (d *Devnet) startWeb(ctx context.Context) error {
	if d.cfg.WebListen == "" || d.cfg.WebListen == "off" {
		return nil
	}
	ln := d.webLn
	d.webLn = nil // StartWeb owns it now, and closes it on failure
	w, err := d.sys.StartWeb(ctx, system.WebConfig{Listen: d.cfg.WebListen, Listener: ln, Limits: d.cfg.WebLimits, Config: web.Config{
		Logger: d.cfg.Log.With("service", "web"),
	}})
	if err != nil {
		return fmt.Errorf("devnet: %w", err)
	}
	d.WebAddr = w.Addr()
	return nil
}

// ensureTenant gives genesis-ops a tenant with a deposit, once, and
// writes its API key where the CLI finds it.
func (d *Devnet) ensureTenant(ctx context.Context, nodeClient *rpc.Client, addrs map[string]address.Address) error {
	keyFile := APIKeyFile(d.cfg.Home)
	if b, err := os.ReadFile(keyFile); err == nil {
		if _, err := d.Coordinator.Authenticate(ctx, string(b)); err == nil {
			d.APIKey = string(b)
			return nil
		}
	}
	_, key, err := d.Coordinator.AddTenant(ctx, GenesisWallet, addrs[GenesisWallet])
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		return err
	}
	d.APIKey = key
	dep, err := jobs.QueryDeposit(ctx, nodeClient, addrs[GenesisWallet], addrs[CoordinatorWallet])
	if err != nil {
		return err
	}
	if dep.Amount > 0 {
		return nil
	}
	msg := jobs.NewDepositMsg(addrs[CoordinatorWallet], DevnetDeposit)
	sub, err := d.Wallets.Service().SignAndSubmit(ctx, GenesisWallet, d.cfg.GenesisPassword, msg, 0)
	if err != nil {
		return fmt.Errorf("devnet: deposit: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := nodeClient.WaitTx(wctx, sub.TxHash, 100*time.Millisecond); err != nil {
		return fmt.Errorf("devnet: deposit: %w", err)
	}
	return nil
}

func (d *Devnet) startMiners(ctx context.Context, ks *keystore.Store) error {
	if d.cfg.Miners < 0 {
		return nil
	}
	// One built-in backend serves every miner: the model's weights are
	// loaded once and shared read-only.
	builtin := backend.NewBuiltin(d.cfg.Home, backend.BuiltinOptions{Threads: 1, Logger: d.cfg.Log, ModelsDir: d.cfg.ModelsDir})
	d.builtin = builtin // the hosted miners share it too (hosting.go)
	svc := d.Wallets.Service()
	for i := 0; i < d.cfg.Miners; i++ {
		name := MinerWallet(i)
		key, err := ks.Unlock(name, d.cfg.GenesisPassword)
		if err != nil {
			return err
		}
		var runner miner.Runner = miner.BackendRunner{B: builtin}
		if runner, err = d.minerAgent(key, i, runner); err != nil { // oracle.go: counted for the oracle's reports
			return err
		}
		if d.cfg.WrapRunner != nil {
			runner = d.cfg.WrapRunner(i, runner)
		}
		m, err := d.sys.StartMiner(ctx, system.MinerConfig{
			Miner: miner.Config{
				Coordinator: rotated(d.CoordinatorURLs, i),
				Key:         key,
				Sender:      walletd.WalletSender{S: svc, Name: name, Password: d.cfg.GenesisPassword},
				Runner:      runner, PricePer1k: d.cfg.MinerPrice, Stake: 100 * coin.Unit,
				Slots: d.cfg.MinerSlots, Hardware: "devnet (cpu)", HeartbeatEvery: time.Minute,
				JobKinds: true, // data-processing and training jobs (docs/JOBS.md)
				Logger:   d.cfg.Log.With("service", "miner", "miner", i),
			},
			Key: key, Register: true,
		})
		if err != nil {
			return err
		}
		d.miners = append(d.miners, m)
		d.Miners = append(d.Miners, m.Miner)
	}
	// Wait until the coordinator has admitted them (it refreshes the
	// registry every second).
	deadline := time.Now().Add(30 * time.Second)
	for d.connectedMiners() < d.cfg.Miners {
		if time.Now().After(deadline) {
			return errors.New("devnet: miners did not connect to the coordinator within 30 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// connectedMiners counts the miners admitted by any coordinator.
func (d *Devnet) connectedMiners() int {
	n := 0
	for _, c := range d.Coordinators {
		n += len(c.ConnectedMiners())
	}
	return n
}

// rotated is the comma-separated list of urls starting at the i-th (mod
// len), so that miners spread over the coordinators and fail over to
// the next.
func rotated(urls []string, i int) string {
	if len(urls) == 0 {
		return ""
	}
	out := make([]string, 0, len(urls))
	for k := range urls {
		out = append(out, urls[(i+k)%len(urls)])
	}
	return strings.Join(out, ",")
}

// nthListen is the i-th coordinator's address: the first's port plus i
// (port 0 stays 0: a free port each).
func nthListen(first string, i int) (string, error) {
	host, port, err := net.SplitHostPort(first)
	if err != nil {
		return "", err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("port %q: %w", port, err)
	}
	if p == 0 {
		return first, nil
	}
	return net.JoinHostPort(host, strconv.Itoa(p+i)), nil
}

// closeExtra stops the coordinators after the first, before the rest of
// the devnet: their miners move to the first, and nothing of them is
// left using the node or the wallet daemon when those stop.
func (d *Devnet) closeExtra() {
	for i := len(d.extra) - 1; i >= 0; i-- {
		if err := d.extra[i].Close(); err != nil {
			d.cfg.Log.Warn("devnet: stopping a coordinator", "err", err)
		}
	}
	d.extra = nil
}

// StopMiner stops miner i as if its process died: its session closes
// and its running jobs are abandoned. It returns once the miner stopped.
func (d *Devnet) StopMiner(i int) { _ = d.miners[i].Stop() }

// Errors reports failures of services after start.
func (d *Devnet) Errors() <-chan error { return d.sys.Errors() }

// RPCURL is the node REST API's base URL.
func (d *Devnet) RPCURL() string { return "http://" + d.RPCAddr.String() }

// WalletURL is the wallet daemon's base URL.
func (d *Devnet) WalletURL() string { return "http://" + d.WalletAddr.String() }

// CoordinatorURL is the coordinator's base URL ("" when it is off).
func (d *Devnet) CoordinatorURL() string {
	if d.CoordinatorAddr == nil {
		return ""
	}
	return "http://" + d.CoordinatorAddr.String()
}

// WebURL is the web pages' base URL ("" when they are off).
func (d *Devnet) WebURL() string {
	if d.WebAddr == nil {
		return ""
	}
	return "http://" + d.WebAddr.String()
}

// Banner writes what a newcomer needs to know.
func (d *Devnet) Banner(w io.Writer) {
	h := d.Node.Height()
	if d.Coordinator == nil {
		fmt.Fprintf(w, `AITBC devnet running (chain %s, height %d), without a coordinator
  home             %s
  node REST API    %s
  wallet daemon    %s
  genesis wallet   %s  %s  (password %q: a devnet default)
  coordinator wallet %s (funded; start one with: aitbc coordinator start --wallet %s --password ...)
`, d.Node.ChainID(), h, d.cfg.Home, d.RPCURL(), d.WalletURL(), GenesisWallet, d.Genesis, d.cfg.GenesisPassword, CoordinatorWallet, CoordinatorWallet)
		d.exchangeBanner(w)
		return
	}
	fmt.Fprintf(w, `AITBC devnet running (chain %s, height %d)
  home             %s
  node REST API    %s   (try: curl %s/api/v1/health)
  CometBFT RPC     %s
  wallet daemon    %s   (API key in %s)
  coordinator      %s   (API key of genesis-ops in %s)
  web pages        %s   (/explorer, /marketplace, /miner)
  miners           %d on the built-in engine, model tolstoy-1m, %s AITBC per 1k tokens
  genesis wallet   %s  %s  (password %q: a devnet default)
Try:  aitbc submit inference --prompt "It was" --model tolstoy-1m
Press Ctrl-C to stop; start again to continue the same chain.
`, d.Node.ChainID(), h, d.cfg.Home, d.RPCURL(), d.RPCURL(), orOff(d.cfg.CometRPCListen), d.WalletURL(),
		walletd.APIKeyPath(d.cfg.Home), strings.Join(d.CoordinatorURLs, " "), APIKeyFile(d.cfg.Home), orOff(d.WebURL()), len(d.Miners), d.cfg.MinerPrice,
		GenesisWallet, d.Genesis, d.cfg.GenesisPassword)
	d.exchangeBanner(w)
	d.spanBanner(w)
}

// exchangeBanner adds the exchange API's and the Bitcoin side's lines to
// the banner.
func (d *Devnet) exchangeBanner(w io.Writer) {
	if u := d.ExchangeURL(); u != "" {
		fmt.Fprintf(w, "Exchange API %s (aitbc exchange book); market maker %s sells AITBC around its reference price\n", u, MakerWallet)
	}
	d.bannerBTC(w) // bridge.go
	// The metrics oracle's line (oracle.go).
	d.bannerOracle(w)
	d.bannerVerifier(w) // verifier.go
}

func orOff(s string) string {
	if s == "" {
		return "off"
	}
	return s
}

// Close stops every service, newest first: each one's goroutines are
// joined before its stores close.
func (d *Devnet) Close() {
	d.closeSpans()
	if d.host != nil {
		d.host.stop() // no miner starts while the system stops
	}
	d.closeOracle()
	d.closeVerifier()
	d.closeAnnounce()
	d.closeBTC()
	d.closeExtra()
	if err := d.sys.Close(); err != nil {
		d.cfg.Log.Warn("devnet: stopping", "err", err)
	}
}

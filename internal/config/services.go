package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
)

// HTTP is an HTTP server's limits (internal/httpx.Limits), the [http]
// section of every service that serves HTTP. A negative number turns a
// limit off; 0 keeps the built-in default.
type HTTP struct {
	ReadHeaderTimeout Duration `toml:"read_header_timeout" doc:"longest time a client may take to send the request line and headers (slow clients are dropped)"`
	BodyTimeout       Duration `toml:"body_timeout" doc:"longest time a client may take to send a request body"`
	WriteTimeout      Duration `toml:"write_timeout" doc:"longest time one write of a response may block (a client that stops reading is dropped; a stream that keeps flushing may last)"`
	IdleTimeout       Duration `toml:"idle_timeout" doc:"how long a keep-alive connection may wait for its next request"`
	MaxHeaderBytes    int      `toml:"max_header_bytes" doc:"largest request line plus headers, in bytes"`
	MaxBodyBytes      int64    `toml:"max_body_bytes" doc:"largest request body, in bytes; larger ones are answered 413 body_too_large"`
	MaxConns          int      `toml:"max_conns" doc:"open connections on the listener (lowered, if need be, to this process's share of file descriptors)"`
	MaxConnsPerClient int      `toml:"max_conns_per_client" doc:"open connections from one client address"`
	WriteRate         float64  `toml:"write_rate" doc:"POST/PUT/PATCH/DELETE requests per second from one client address, answered 429 rate_limited beyond (0: no limit)"`
	WriteBurst        int      `toml:"write_burst" doc:"burst of writes allowed above write_rate (0: twice write_rate)"`
	MetricsKey        string   `toml:"metrics_key" secret:"true" doc:"bearer token that lets a client read /metrics from any address; without it only loopback clients may"`
	TrustedProxies    []string `toml:"trusted_proxies" doc:"reverse proxies (addresses or CIDR prefixes, e.g. [\"127.0.0.1\", \"::1\"] behind the shipped nginx) whose X-Real-IP names the client for the per-client limits; their connections are not capped per client"`
}

// Limits is h as the server takes it.
func (h HTTP) Limits() httpx.Limits {
	return httpx.Limits{
		ReadHeaderTimeout: time.Duration(h.ReadHeaderTimeout),
		BodyTimeout:       time.Duration(h.BodyTimeout),
		WriteTimeout:      time.Duration(h.WriteTimeout),
		IdleTimeout:       time.Duration(h.IdleTimeout),
		MaxHeaderBytes:    h.MaxHeaderBytes,
		MaxBody:           h.MaxBodyBytes,
		MaxConns:          h.MaxConns,
		MaxConnsPerClient: h.MaxConnsPerClient,
		WriteRate:         h.WriteRate,
		WriteBurst:        h.WriteBurst,
		MetricsKey:        h.MetricsKey,
		TrustedProxies:    proxyPrefixes(h.TrustedProxies), // validate has checked them
	}
}

// proxyPrefixes parses trusted_proxies: an address is a one-address prefix.
// Entries that do not parse are left out (validate refuses them first).
func proxyPrefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := parseProxy(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// httpDefaults are l with httpx's defaults filled in, as a config section.
func httpDefaults(l httpx.Limits) HTTP {
	l = l.WithDefaults()
	return HTTP{
		ReadHeaderTimeout: Duration(l.ReadHeaderTimeout),
		BodyTimeout:       Duration(l.BodyTimeout),
		WriteTimeout:      Duration(l.WriteTimeout),
		IdleTimeout:       Duration(l.IdleTimeout),
		MaxHeaderBytes:    l.MaxHeaderBytes,
		MaxBodyBytes:      l.MaxBody,
		MaxConns:          l.MaxConns,
		MaxConnsPerClient: l.MaxConnsPerClient,
		WriteRate:         l.WriteRate,
		WriteBurst:        l.WriteBurst,
	}
}

// The per-service limits that differ from httpx's defaults. They mirror
// internal/system's DefaultRESTLimits and DefaultWebLimits (a test holds
// them equal; this package does not import the composition root).
var (
	nodeHTTPLimits = httpx.Limits{MaxBody: 8 << 20, WriteRate: 10_000, WriteBurst: 20_000}
	webHTTPLimits  = httpx.Limits{MaxBody: 64 << 10, WriteRate: 5, WriteBurst: 20}
)

// NodeConfig is `aitbc node start --config FILE` (/etc/aitbc/node.toml).
// Keys left out keep what <home>/aitbc-node.json says, else the defaults.
type NodeConfig struct {
	Home            string   `toml:"home" flag:"home" doc:"node home: keys, genesis, chain data (made by aitbc testnet init or aitbc node init)"`
	Moniker         string   `toml:"moniker" flag:"moniker" doc:"node name shown to peers"`
	BlockTime       Duration `toml:"block_time" flag:"block-time" doc:"time between blocks (CometBFT timeout_commit)"`
	ProposeTimeout  Duration `toml:"propose_timeout" flag:"propose-timeout" doc:"how long a round waits for the proposer (0: 2s)"`
	P2PListen       string   `toml:"p2p_listen" flag:"p2p-listen" doc:"P2P listen address, tcp://host:port"`
	RESTListen      string   `toml:"rest_listen" flag:"rest-listen" doc:"REST API listen address, host:port"`
	CometRPCListen  string   `toml:"comet_rpc_listen" flag:"comet-rpc-listen" doc:"CometBFT RPC listen address, tcp://host:port, or \"off\""`
	PersistentPeers []string `toml:"persistent_peers" flag:"peers" doc:"peers dialled at start and redialled when lost, node-id@host:port"`
	PEX             bool     `toml:"pex" flag:"pex" doc:"peer exchange (false: talk only to persistent peers and nodes that dial in)"`
	FaucetKey       string   `toml:"faucet_key" flag:"faucet-key" doc:"file with a faucet key (hex of a 32-byte ed25519 seed; it holds no money): the node signs drips for POST /api/v1/faucet with it, if the chain's genesis enables the faucet (empty: no faucet endpoint)"`
	CheckInvariants bool     `toml:"check_invariants" flag:"check-invariants" doc:"audit the chain's books after every block and halt on a broken invariant (test networks)"`
	LogLevel        string   `toml:"log_level" flag:"log-level" doc:"CometBFT's log level: error, info or debug"`
	LogFormat       string   `toml:"log_format" flag:"log-format" doc:"text or json: the format of the service's log lines (JSON: one object per line)"`
	HTTP            HTTP     `toml:"http"`
}

// CoordinatorConfig is `aitbc coordinator start --config FILE`.
type CoordinatorConfig struct {
	Home      string           `toml:"home" flag:"home" doc:"state directory; the store defaults to <home>/coordinator/coordinator.db and wallets are read from <home>/wallets"`
	Listen    string           `toml:"listen" flag:"listen" doc:"API listen address, host:port"`
	NodeURL   string           `toml:"node_url" flag:"node" doc:"node REST API; several, comma-separated, are tried in order"`
	Wallet    string           `toml:"wallet" flag:"wallet" doc:"wallet that signs the coordinator's chain transactions (required)"`
	Password  string           `toml:"password" flag:"password" secret:"true" doc:"that wallet's password; prefer AITBC_PASSWORD in a root-only EnvironmentFile"`
	Store     string           `toml:"store" flag:"store" doc:"SQLite file (empty: <home>/coordinator/coordinator.db), or a postgres://user:password@host:port/db URL that several coordinators share (docs/COORDINATOR.md, Scaling out)"`
	Lease     Duration         `toml:"lease" flag:"lease" doc:"with a postgres:// store: how long a job stays with a coordinator that stopped renewing it before another takes it over"`
	PublicURL string           `toml:"public_url" flag:"public-url" doc:"the URL customers and miners reach this coordinator at, announced on chain (coordinators module) with region; empty: not announced"`
	Region    string           `toml:"region" flag:"region" doc:"the region announced with public_url (1-32 of a-z, 0-9, '-'; e.g. eu-west)"`
	LogLevel  string           `toml:"log_level" flag:"log-level" doc:"debug, info, warn or error"`
	LogFormat string           `toml:"log_format" flag:"log-format" doc:"text or json: the format of the service's log lines (JSON: one object per line)"`
	Jobs      CoordinatorJobs  `toml:"jobs"`
	Limits    TenantLimits     `toml:"limits"`
	Files     CoordinatorFiles `toml:"files"`
	HTTP      HTTP             `toml:"http"`
}

// CoordinatorFiles is the coordinator's [files] section: the job files
// tenants upload (datasets, input data; docs/JOBS.md).
type CoordinatorFiles struct {
	MaxFileBytes     int64 `toml:"max_file_bytes" doc:"largest file a tenant may upload"`
	TenantQuotaBytes int64 `toml:"tenant_quota_bytes" doc:"bytes one tenant may hold in the file store at once, uploads in progress included"`
}

// CoordinatorJobs is the coordinator's [jobs] section: how it runs jobs.
type CoordinatorJobs struct {
	AckTimeout       Duration `toml:"ack_timeout" doc:"a job dispatched to a miner that does not acknowledge it by then goes to another"`
	DefaultTTL       Duration `toml:"default_ttl" doc:"a job's time to live when its request names none; unfinished by then, it is refunded"`
	DefaultMaxTokens int      `toml:"default_max_tokens" doc:"tokens a job may generate when its request names no limit"`
	MaxPromptBytes   int      `toml:"max_prompt_bytes" doc:"largest prompt a job may carry"`
	MaxAttempts      int      `toml:"max_attempts" doc:"dispatches to miners before a job fails"`
}

// TenantLimits is the coordinator's [limits] section: quotas and rates
// against abuse (coordinator.Limits; docs/SECURITY.md). 0 keeps the
// default; a negative value turns a limit off.
type TenantLimits struct {
	RegisterRate         float64  `toml:"register_rate" doc:"tenant registrations (POST /v1/tenants) per second from one client address"`
	RegisterBurst        int      `toml:"register_burst" doc:"registrations allowed at once above register_rate"`
	WriteRate            float64  `toml:"write_rate" doc:"write requests (submit, allocate, deallocate) per second for one tenant"`
	WriteBurst           int      `toml:"write_burst" doc:"writes allowed at once above write_rate"`
	ListingRate          float64  `toml:"listing_rate" doc:"listings per second the coordinator signs and pays the fee for on one tenant's behalf"`
	ListingBurst         int      `toml:"listing_burst" doc:"listings allowed at once above listing_rate"`
	MaxActiveJobs        int      `toml:"max_active_jobs" doc:"a tenant's jobs queued or running at once"`
	MaxActiveBytes       int      `toml:"max_active_bytes" doc:"prompt bytes of a tenant's active jobs together"`
	MaxKeysPerTenant     int      `toml:"max_keys_per_tenant" doc:"API keys registration gives one address"`
	MaxAllocations       int      `toml:"max_allocations" doc:"a tenant's live resource allocations at once"`
	MaxPendingHellos     int      `toml:"max_pending_hellos" doc:"miner connections not yet authenticated; more are answered 503"`
	MaxHelloBytes        int64    `toml:"max_hello_bytes" doc:"largest message from a miner before it authenticates"`
	MaxMinerMessageBytes int64    `toml:"max_miner_message_bytes" doc:"largest message from an admitted miner"`
	Retention            Duration `toml:"retention" doc:"how long ended jobs (settled, failed, expired) are kept with their results and receipts"`
	PruneEvery           Duration `toml:"prune_every" doc:"how often ended jobs past retention are pruned"`
}

// Options is the coordinator's own configuration as the service takes it.
func (c *CoordinatorConfig) Options() coordinator.Config {
	j, l := c.Jobs, c.Limits
	return coordinator.Config{
		AckTimeout: time.Duration(j.AckTimeout), DefaultTTL: time.Duration(j.DefaultTTL),
		DefaultMaxTokens: j.DefaultMaxTokens, MaxPromptBytes: j.MaxPromptBytes, MaxAttempts: j.MaxAttempts,
		Files: coordinator.Files{MaxFileBytes: c.Files.MaxFileBytes, TenantQuota: c.Files.TenantQuotaBytes},
		Limits: coordinator.Limits{
			RegisterRate: l.RegisterRate, RegisterBurst: l.RegisterBurst, WriteRate: l.WriteRate, WriteBurst: l.WriteBurst,
			ListingRate: l.ListingRate, ListingBurst: l.ListingBurst, MaxActiveJobs: l.MaxActiveJobs, MaxActiveBytes: l.MaxActiveBytes,
			MaxKeysPerTenant: l.MaxKeysPerTenant, MaxAllocations: l.MaxAllocations, MaxPendingHellos: l.MaxPendingHellos,
			MaxHelloBytes: l.MaxHelloBytes, MaxMinerMessage: l.MaxMinerMessageBytes,
			Retention: time.Duration(l.Retention), PruneEvery: time.Duration(l.PruneEvery),
		},
	}
}

// WalletConfig is `aitbc wallet daemon --config FILE`.
type WalletConfig struct {
	Home              string `toml:"home" flag:"home" doc:"state directory; wallets live in <home>/wallets"`
	Listen            string `toml:"listen" flag:"listen" doc:"address to serve on (keep it on loopback)"`
	NodeURL           string `toml:"node_url" flag:"node" doc:"node REST API the daemon submits through"`
	APIKey            string `toml:"api_key" flag:"api-key" env:"AITBC_WALLET_API_KEY" secret:"true" doc:"API key clients must send in X-API-Key (empty: AITBC_WALLET_API_KEY, else <home>/wallet/api-key, made on first start)"`
	DefaultWallet     string `toml:"default_wallet" flag:"default-wallet" doc:"wallet that GET /api/v1/wallet/balance reports when none is named"`
	MinPasswordLength int    `toml:"min_password_length" flag:"min-password-length" doc:"fewest characters a new wallet's password may have (0: any)"`
	LogLevel          string `toml:"log_level" flag:"log-level" doc:"debug, info, warn or error"`
	LogFormat         string `toml:"log_format" flag:"log-format" doc:"text or json: the format of the service's log lines (JSON: one object per line)"`
	HTTP              HTTP   `toml:"http"`
}

// MinerConfig is `aitbc miner start --config FILE`.
type MinerConfig struct {
	Home           string   `toml:"home" flag:"home" doc:"state directory; the miner's wallet is read from <home>/wallets, the built-in engine's models from <home>/models"`
	CoordinatorURL string   `toml:"coordinator_url" flag:"coordinator" doc:"coordinator the miner takes jobs from; several, comma-separated, are served in turn: when one fails the miner moves to the next"`
	NodeURL        string   `toml:"node_url" flag:"node" doc:"node REST API for registration, stake and heartbeats"`
	Wallet         string   `toml:"wallet" flag:"wallet" doc:"wallet that registers, stakes, signs receipts and is paid (required)"`
	Password       string   `toml:"password" flag:"password" secret:"true" doc:"that wallet's password; prefer AITBC_PASSWORD in a root-only EnvironmentFile"`
	Backend        string   `toml:"backend" flag:"backend" doc:"builtin, ollama or openai"`
	Endpoint       string   `toml:"endpoint" flag:"endpoint" doc:"backend URL (ollama: http://127.0.0.1:11434 when empty)"`
	BackendAPIKey  string   `toml:"backend_api_key" flag:"backend-api-key" secret:"true" doc:"API key of an OpenAI-compatible backend"`
	VisionModels   string   `toml:"vision_models" flag:"vision-models" doc:"comma-separated models of an OpenAI-compatible backend that read images (such a server does not say which do; an Ollama backend's are read from its /api/show): jobs whose chat messages carry images go only to miners declaring the model"`
	Models         string   `toml:"models" flag:"models" doc:"comma-separated models to offer (empty: all the backend serves)"`
	Price          string   `toml:"price" flag:"price" doc:"price in AITBC per 1,000 output tokens"`
	Stake          string   `toml:"stake" flag:"stake" doc:"AITBC to stake at registration"`
	Slots          int      `toml:"slots" flag:"slots" doc:"concurrent jobs"`
	Heartbeat      Duration `toml:"heartbeat" flag:"heartbeat" doc:"interval of on-chain heartbeats"`
	MetricsListen  string   `toml:"metrics_listen" flag:"metrics-listen" doc:"serve GET /metrics and GET /health here, e.g. 127.0.0.1:8018 (empty: off)"`
	Oracle         string   `toml:"oracle" flag:"oracle" doc:"metrics oracle's URL, e.g. http://127.0.0.1:8010: signed reports of the miner's work (docs/AGENTS.md; empty: none)"`
	JobKinds       bool     `toml:"job_kinds" flag:"job-kinds" doc:"also run data-processing and training jobs, fetching their input files from the coordinator (docs/JOBS.md)"`
	Provider       string   `toml:"provider" flag:"provider" doc:"marketplace provider address this miner works for (miners/set_provider); the provider's market add-miner completes the consent (empty: leave it as it is)"`
	ImagesEndpoint string   `toml:"images_endpoint" flag:"images-endpoint" doc:"OpenAI-compatible images server (POST /v1/images/generations, e.g. LocalAI) for image jobs; its models are offered as image:<model> (docs/JOBS.md)"`
	ImagesAPIKey   string   `toml:"images_api_key" flag:"images-api-key" secret:"true" doc:"API key of the images server"`
	ModelsDir      string   `toml:"models_dir" flag:"models-dir" doc:"Ollama's model store (e.g. /usr/share/ollama/.ollama/models): the built-in engine also serves its GGUF models by their Ollama names, llama3.2:latest (empty: none; docs/ENGINE.md)"`
	LogFormat      string   `toml:"log_format" flag:"log-format" doc:"text or json: the format of the service's log lines (JSON: one object per line)"`
	SpanModel      string   `toml:"span_model" flag:"model" doc:"model whose layers the miner serves as a span server (empty: tolstoy-1m)"`
	Layers         string   `toml:"layers" flag:"layers" doc:"also serve these layers of span_model to routed jobs, inclusive ranges, e.g. 0-1 or 0-0,2-3 (empty: off; docs/DISTRIBUTED.md)"`
	SpanListen     string   `toml:"span_listen" flag:"span-listen" doc:"address of the span API when layers is set"`
}

// WebConfig is `aitbc web start --config FILE`.
type WebConfig struct {
	Listen         string `toml:"listen" flag:"listen" doc:"address of the pages"`
	NodeURL        string `toml:"node_url" flag:"node" doc:"node REST API the pages read the chain from"`
	CoordinatorURL string `toml:"coordinator_url" flag:"coordinator" doc:"coordinator for jobs and live miner figures (\"off\": none)"`
	WalletURL      string `toml:"wallet_url" flag:"wallet-url" doc:"wallet daemon visitors sign in through (\"off\": no sign-in)"`
	LogLevel       string `toml:"log_level" flag:"log-level" doc:"debug, info, warn or error"`
	LogFormat      string `toml:"log_format" flag:"log-format" doc:"text or json: the format of the service's log lines (JSON: one object per line)"`
	HTTP           HTTP   `toml:"http"`
}

// DevnetConfig is `aitbc devnet --config FILE`.
type DevnetConfig struct {
	Home              string   `toml:"home" flag:"home" doc:"where the devnet keeps its chain, wallets and jobs"`
	ChainID           string   `toml:"chain_id" flag:"chain-id" doc:"chain id of a new devnet"`
	BlockTime         Duration `toml:"block_time" flag:"block-time" doc:"time between blocks"`
	CheckInvariants   bool     `toml:"check_invariants" flag:"check-invariants" doc:"audit the chain's books after every block and stop on a broken invariant"`
	GenesisPassword   string   `toml:"genesis_password" flag:"genesis-password" secret:"true" doc:"password of the devnet's wallets (genesis-ops, coordinator, miners)"`
	RPCListen         string   `toml:"rpc_listen" flag:"rpc-listen" doc:"node REST API address"`
	CometRPCListen    string   `toml:"comet_rpc_listen" flag:"comet-rpc-listen" doc:"CometBFT RPC address (\"off\": none)"`
	P2PListen         string   `toml:"p2p_listen" flag:"p2p-listen" doc:"chain P2P address"`
	WalletListen      string   `toml:"wallet_listen" flag:"wallet-listen" doc:"wallet daemon address"`
	CoordinatorListen string   `toml:"coordinator_listen" flag:"coordinator-listen" doc:"coordinator API address (\"off\": no coordinator, nor miners)"`
	WebListen         string   `toml:"web_listen" flag:"web-listen" doc:"web pages' address (\"off\": none)"`
	ExchangeListen    string   `toml:"exchange_listen" flag:"exchange-listen" doc:"exchange API's address, with the devnet market maker (\"off\": none)"`
	OracleListen      string   `toml:"oracle_listen" flag:"oracle-listen" doc:"metrics oracle's address (docs/AGENTS.md; \"off\": none)"`
	MakerPrice        string   `toml:"maker_price" flag:"maker-price" doc:"the devnet market maker's reference price, BTC per AITBC"`
	BTC               bool     `toml:"btc" flag:"btc" doc:"also run a Bitcoin regtest node (btcd), a test Bitcoin wallet and the bridge daemon (docs/BRIDGE.md); needs a fresh home"`
	BridgeOperators   int      `toml:"bridge_operators" flag:"bridge-operators" doc:"with btc on a fresh home: bridge operators, each with its own wallet, Bitcoin key and daemon"`
	BridgeThreshold   int      `toml:"bridge_threshold" flag:"bridge-threshold" doc:"with btc on a fresh home: how many bridge operators must attest a deposit and sign a payout (m of n)"`
	Coordinators      int      `toml:"coordinators" flag:"coordinators" doc:"coordinators sharing the work; more than 1 needs a postgres:// store"`
	Store             string   `toml:"store" flag:"store" doc:"coordinators' store: empty for an SQLite file in the home, or a postgres:// URL they share"`
	Miners            int      `toml:"miners" flag:"miners" doc:"miners on the built-in engine (0 or less: none)"`
	MinerSlots        int      `toml:"miner_slots" flag:"miner-slots" doc:"concurrent jobs per miner"`
	MinerPrice        string   `toml:"miner_price" flag:"miner-price" doc:"miners' price in AITBC per 1,000 output tokens"`
	LogLevel          string   `toml:"log_level" flag:"log-level" doc:"debug, info, warn or error"`
	LogFormat         string   `toml:"log_format" flag:"log-format" doc:"text or json: the format of the service's log lines (JSON: one object per line)"`
	HostProviders     bool     `toml:"host_providers" flag:"host-providers" doc:"run a built-in-engine miner for each of the daemon's wallets that lists a service no miner serves (docs/MARKETPLACE.md)"`
	ModelsDir         string   `toml:"models_dir" flag:"models-dir" doc:"Ollama's model store the devnet's miners also serve, by Ollama names (empty: none; docs/ENGINE.md)"`
	SpanMiners        int      `toml:"span_miners" flag:"span-miners" doc:"span servers holding even shares of tolstoy-1m's layers, registered on chain as agents (docs/DISTRIBUTED.md)"`
	SpanListen        string   `toml:"span_listen" flag:"span-listen" doc:"the first span server's address; the others listen on the ports after it"`
	SpotCheck         float64  `toml:"spot_check" flag:"spot-check" doc:"fraction of attested jobs a new devnet's genesis spot-checks (0 to 1; 0: none), re-checked by a bonded verifier the devnet runs (docs/VERIFICATION.md)"`
}

// DefaultHome is how docs write the default state directory.
const DefaultHome = "~/.aitbc"

func defaults(svc Service) (any, error) {
	switch svc {
	case Node:
		return &NodeConfig{
			Home: DefaultHome, Moniker: "aitbc-node", BlockTime: Duration(2 * time.Second),
			P2PListen: "tcp://127.0.0.1:8005", RESTListen: "127.0.0.1:8006", CometRPCListen: "tcp://127.0.0.1:26657",
			PersistentPeers: []string{}, PEX: true, LogLevel: "error", LogFormat: "text", HTTP: httpDefaults(nodeHTTPLimits),
		}, nil
	case Coordinator:
		return &CoordinatorConfig{
			Home: DefaultHome, Listen: "127.0.0.1:8000", NodeURL: "http://127.0.0.1:8006",
			Lease: Duration(store.DefaultLease), LogLevel: "info", LogFormat: "text", HTTP: httpDefaults(httpx.Limits{}),
			Jobs: CoordinatorJobs{
				AckTimeout: Duration(5 * time.Second), DefaultTTL: Duration(900 * time.Second),
				DefaultMaxTokens: 256, MaxPromptBytes: 64 << 10, MaxAttempts: 5,
			},
			Files: CoordinatorFiles{MaxFileBytes: coordinator.DefaultMaxFileBytes, TenantQuotaBytes: coordinator.DefaultFileQuota},
			Limits: TenantLimits{
				RegisterRate: coordinator.DefaultRegisterRate, RegisterBurst: coordinator.DefaultRegisterBurst,
				WriteRate: coordinator.DefaultWriteRate, WriteBurst: coordinator.DefaultWriteBurst,
				ListingRate: coordinator.DefaultListingRate, ListingBurst: coordinator.DefaultListingBurst,
				MaxActiveJobs: coordinator.DefaultMaxActiveJobs, MaxActiveBytes: coordinator.DefaultMaxActiveBytes,
				MaxKeysPerTenant: coordinator.DefaultMaxKeysPerTenant, MaxAllocations: coordinator.DefaultMaxAllocations,
				MaxPendingHellos: coordinator.DefaultMaxPendingHellos, MaxHelloBytes: coordinator.DefaultMaxHelloBytes,
				MaxMinerMessageBytes: coordinator.DefaultMaxMinerMessage,
				Retention:            Duration(coordinator.DefaultRetention), PruneEvery: Duration(coordinator.DefaultPruneEvery),
			},
		}, nil
	case Wallet:
		return &WalletConfig{
			Home: DefaultHome, Listen: "127.0.0.1:8002", NodeURL: "http://127.0.0.1:8006",
			MinPasswordLength: 10, LogLevel: "info", LogFormat: "text", HTTP: httpDefaults(httpx.Limits{}),
		}, nil
	case Miner:
		return &MinerConfig{
			Home: DefaultHome, CoordinatorURL: "http://127.0.0.1:8000", NodeURL: "http://127.0.0.1:8006",
			Backend: "builtin", Price: "1", Stake: "100", Slots: 1, Heartbeat: Duration(time.Minute), LogFormat: "text", SpanListen: "127.0.0.1:8031",
		}, nil
	case Web:
		return &WebConfig{
			Listen: "127.0.0.1:8016", NodeURL: "http://127.0.0.1:8006", CoordinatorURL: "http://127.0.0.1:8000",
			WalletURL: "http://127.0.0.1:8002", LogLevel: "info", LogFormat: "text", HTTP: httpDefaults(webHTTPLimits),
		}, nil
	case Devnet:
		return &DevnetConfig{
			Home: DefaultHome, ChainID: "aitbc-devnet", BlockTime: Duration(2 * time.Second), GenesisPassword: "123",
			RPCListen: "127.0.0.1:8006", CometRPCListen: "tcp://127.0.0.1:26657", P2PListen: "tcp://127.0.0.1:8005",
			WalletListen: "127.0.0.1:8002", CoordinatorListen: "127.0.0.1:8000", WebListen: "127.0.0.1:8016", ExchangeListen: "127.0.0.1:8001", MakerPrice: "0.00001",
			Coordinators: 1, Miners: 1, MinerSlots: 2, MinerPrice: "1", LogLevel: "warn", LogFormat: "text",
			HostProviders: true, SpanListen: "127.0.0.1:8031",
			OracleListen:    "127.0.0.1:8010",
			BridgeOperators: 1, BridgeThreshold: 1,
		}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownService, svc)
}

// validate checks what the file format cannot: no negative sizes that
// would mean something other than "off", log levels spelt right.
func validate(v any) error {
	for _, k := range Keys(v) {
		switch k.Path {
		case "log_level":
			switch k.v.String() {
			case "debug", "info", "warn", "error", "":
			default:
				return fmt.Errorf("%w: log_level %q: want debug, info, warn or error", ErrBadValue, k.v.String())
			}
		case "http.trusted_proxies":
			for i := 0; i < k.v.Len(); i++ {
				if _, err := parseProxy(k.v.Index(i).String()); err != nil {
					return fmt.Errorf("%w: http.trusted_proxies %q: want an IP address or a CIDR prefix", ErrBadValue, k.v.Index(i).String())
				}
			}
		case "log_format":
			switch k.v.String() {
			case "text", "json", "":
			default:
				return fmt.Errorf("%w: log_format %q: want text or json", ErrBadValue, k.v.String())
			}
		case "slots", "miner_slots":
			if k.v.Int() < 1 {
				return fmt.Errorf("%w: %s %d: want at least 1", ErrBadValue, k.Path, k.v.Int())
			}
		case "block_time", "heartbeat":
			if k.v.Int() < 0 {
				return fmt.Errorf("%w: %s must not be negative", ErrBadValue, k.Path)
			}
		}
	}
	return nil
}

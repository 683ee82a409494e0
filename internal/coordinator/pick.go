package coordinator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/coordinators"
	"github.com/aitbc/aitbc/internal/coordinator/rank"
	"github.com/aitbc/aitbc/internal/httpx"
)

// A client (the CLI, a miner, the web server) given several coordinators,
// or told to find them on chain, picks one itself: there is no balancer
// in front of them to fail. It times each one's GET /v1/health at once,
// with a short timeout, uses the healthy one that answered fastest and
// moves on to the next when a request to it fails (Client.Fallbacks). The
// ranking is kept for a short while (Picker.CacheFile), so that a burst of
// CLI commands does not probe for each.

// Candidate is a coordinator a client may use, with what the last probe
// measured.
type Candidate struct {
	URL     string `json:"url"`
	Region  string `json:"region,omitempty"`  // as announced on chain
	Name    string `json:"name,omitempty"`    // as announced on chain
	Address string `json:"address,omitempty"` // the key that announced it (chain), or the one its health names
	Source  string `json:"source"`            // "flag" (given) or "chain" (announced)
	Healthy bool   `json:"healthy"`
	// RTT is the fastest of the probe's round trips (0 when unhealthy).
	RTT   time.Duration `json:"-"`
	RTTMs float64       `json:"rtt_ms"`
	Error string        `json:"error,omitempty"` // why it is not healthy
}

// Probe defaults.
const (
	DefaultProbeTimeout = time.Second      // one health request; a coordinator slower than this is no one's nearest
	DefaultPickTTL      = 30 * time.Second // how long a ranking is reused
	probeTries          = 3                // the fastest counts: delays only ever add to a round trip
)

// ErrNoCoordinator is returned when no candidate answers its health probe.
var ErrNoCoordinator = errors.New("coordinator: none of the coordinators answers")

// ProbeFunc times one coordinator: its health answer and how long the
// fastest of its tries took.
type ProbeFunc func(ctx context.Context, url string) (Health, time.Duration, error)

// Picker ranks candidates by health and latency. The zero value probes
// GET /v1/health with DefaultProbeTimeout and caches nothing.
type Picker struct {
	Probe     ProbeFunc     // nil: HealthProbe with Timeout
	Timeout   time.Duration // per probe request; 0: DefaultProbeTimeout
	CacheFile string        // where a ranking is kept between processes; "": not kept
	TTL       time.Duration // 0: DefaultPickTTL
	Now       func() time.Time
	// NearEnough, when set, makes round trips up to NearEnough(fastest)
	// count as equal to the fastest: those keep the given order (as the
	// miners rank their coordinators: rank.Order). nil ranks by round
	// trip alone.
	NearEnough func(fastest time.Duration) time.Duration
}

// HealthProbe returns a ProbeFunc that times GET url/v1/health with
// client, each try bounded by timeout: the fastest of probeTries, and an
// answer other than 200 with status "ok" is an error.
func HealthProbe(client *http.Client, timeout time.Duration) ProbeFunc {
	return func(ctx context.Context, url string) (Health, time.Duration, error) {
		var h Health
		best := time.Duration(-1)
		for range probeTries {
			c, cancel := context.WithTimeout(ctx, timeout)
			start := time.Now()
			err := NewClient(url, "").withHTTP(client).do(c, http.MethodGet, "/v1/health", nil, &h)
			d := time.Since(start)
			cancel()
			if err != nil {
				return h, 0, err
			}
			if h.Status != "ok" {
				return h, 0, fmt.Errorf("health status %q", h.Status)
			}
			if best < 0 || d < best {
				best = d
			}
		}
		return h, best, nil
	}
}

func (c *Client) withHTTP(h *http.Client) *Client {
	if h != nil {
		c.HTTP = h
	}
	return c
}

func (p *Picker) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Rank probes every candidate at once and orders them: the healthy by
// round trip, fastest first (ties keep the given order), then the rest in
// the given order. A candidate announced on chain whose health names
// another coordinator key than the one that announced it is not healthy:
// an announcement cannot send clients to someone else's coordinator.
func (p *Picker) Rank(ctx context.Context, cands []Candidate) []Candidate {
	probe := p.Probe
	if probe == nil {
		t := p.Timeout
		if t <= 0 {
			t = DefaultProbeTimeout
		}
		probe = HealthProbe(&http.Client{Timeout: t}, t)
	}
	out := slices.Clone(cands)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func(c *Candidate) {
			defer wg.Done()
			h, d, err := probe(ctx, c.URL)
			c.Healthy, c.RTT, c.RTTMs, c.Error = false, 0, 0, ""
			switch {
			case err != nil:
				c.Error = err.Error()
			case c.Source == "chain" && c.Address != "" && h.Coordinator != c.Address:
				c.Error = fmt.Sprintf("answers as coordinator %s, announced by %s", h.Coordinator, c.Address)
			default:
				c.Healthy, c.RTT, c.RTTMs = true, d, float64(d.Microseconds())/1000
				if c.Address == "" {
					c.Address = h.Coordinator
				}
			}
		}(&out[i])
	}
	wg.Wait()
	rtt, ok := make([]time.Duration, len(out)), make([]bool, len(out))
	for i, c := range out {
		rtt[i], ok[i] = c.RTT, c.Healthy
	}
	ranked := make([]Candidate, 0, len(out))
	for _, i := range rank.Order(rtt, ok, p.NearEnough) {
		ranked = append(ranked, out[i])
	}
	return ranked
}

// pickCache is the file a ranking is kept in.
type pickCache struct {
	Key    string      `json:"key"` // the candidate set it ranks
	At     time.Time   `json:"at"`
	Ranked []Candidate `json:"ranked"`
}

func candidatesKey(cands []Candidate) string {
	urls := make([]string, len(cands))
	for i, c := range cands {
		urls[i] = c.Source + " " + c.Address + " " + c.URL
	}
	slices.Sort(urls)
	sum := sha256.Sum256([]byte(strings.Join(urls, "\n")))
	return hex.EncodeToString(sum[:])
}

// Pick ranks cands, reusing a ranking of the same candidates younger than
// the TTL from the cache file (cached reports whether it did). Its error is
// ErrNoCoordinator when none is healthy; the ranking comes back with it.
func (p *Picker) Pick(ctx context.Context, cands []Candidate) (ranked []Candidate, cached bool, err error) {
	if len(cands) == 0 {
		return nil, false, fmt.Errorf("%w: no coordinator given and none announced on chain", ErrNoCoordinator)
	}
	key := candidatesKey(cands)
	ttl := p.TTL
	if ttl <= 0 {
		ttl = DefaultPickTTL
	}
	if p.CacheFile != "" {
		var c pickCache
		if b, err := os.ReadFile(p.CacheFile); err == nil && json.Unmarshal(b, &c) == nil && c.Key == key &&
			p.now().Sub(c.At) >= 0 && p.now().Sub(c.At) < ttl && len(c.Ranked) > 0 && c.Ranked[0].Healthy {
			for i := range c.Ranked {
				c.Ranked[i].RTT = time.Duration(c.Ranked[i].RTTMs * float64(time.Millisecond))
			}
			return c.Ranked, true, nil
		}
	}
	ranked = p.Rank(ctx, cands)
	if !ranked[0].Healthy {
		return ranked, false, fmt.Errorf("%w: %s", ErrNoCoordinator, describeFailures(ranked))
	}
	if p.CacheFile != "" {
		// The cache only saves probes: failing to write it is not an error.
		if b, err := json.Marshal(pickCache{Key: key, At: p.now(), Ranked: ranked}); err == nil {
			_ = os.MkdirAll(filepath.Dir(p.CacheFile), 0o700)
			tmp := p.CacheFile + ".tmp"
			if os.WriteFile(tmp, b, 0o600) == nil {
				_ = os.Rename(tmp, p.CacheFile)
			}
		}
	}
	return ranked, false, nil
}

func describeFailures(cs []Candidate) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.URL+": "+c.Error)
	}
	return strings.Join(parts, "; ")
}

// Given makes candidates of URLs given by the user, in their order.
func Given(urls []string) []Candidate {
	out := make([]Candidate, 0, len(urls))
	for _, u := range urls {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			out = append(out, Candidate{URL: u, Source: "flag"})
		}
	}
	return out
}

// Announced reads the coordinators announced on chain as candidates: all
// of them, or those announced by key when key is not empty (a customer
// whose API key belongs to one marketplace gives its key, so that the key
// is never sent to another's coordinator).
func Announced(ctx context.Context, g module.Getter, key string) ([]Candidate, error) {
	var views []coordinators.View
	if key != "" {
		a, err := address.Parse(key)
		if err != nil {
			return nil, err
		}
		l, err := coordinators.Of(ctx, g, a)
		if err != nil {
			return nil, fmt.Errorf("coordinators announced by %s: %w", key, err)
		}
		views = l.Coordinators
	} else {
		l, err := coordinators.List(ctx, g, coordinators.Filter{})
		if err != nil {
			return nil, fmt.Errorf("announced coordinators: %w", err)
		}
		views = l.Coordinators
	}
	out := make([]Candidate, 0, len(views))
	for _, v := range views {
		out = append(out, Candidate{URL: v.URL, Region: v.Region, Name: v.Name, Address: v.Address.String(), Source: "chain"})
	}
	return out, nil
}

// URLs are the candidates' URLs, in order.
func URLs(cs []Candidate) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.URL
	}
	return out
}

// movesOn reports whether a request that ended in err may be tried at the
// next coordinator: not an answer (an answer is the coordinator's word),
// not a cancelled context, and for a write only a refused connection.
func movesOn(ctx context.Context, method string, err error) bool {
	var api *httpx.APIError
	if err == nil || errors.As(err, &api) || ctx.Err() != nil {
		return false
	}
	if method == http.MethodGet || method == http.MethodHead {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

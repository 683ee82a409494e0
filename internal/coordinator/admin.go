package coordinator

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
)

// The operator's view. A tenant's API key shows only that tenant's jobs;
// the operator of a coordinator (the seeds' `aitbc-cli.sh admin-jobs`) needs
// every tenant's. That takes a key of its own, Config.OperatorKey, sent as
// X-Operator-Key (or "Authorization: Bearer <key>"). Without one configured
// the operator routes answer 403 operator_disabled, so a coordinator never
// exposes all jobs by accident.

// OperatorKeyFile is where a coordinator home keeps its operator key.
func OperatorKeyFile(home string) string { return filepath.Join(home, "coordinator", "operator-key") }

// LoadOrCreateOperatorKey reads the operator key at path, or makes a new
// random one there (mode 0600) when the file does not exist.
func LoadOrCreateOperatorKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key := strings.TrimSpace(string(b))
		if len(key) < 16 {
			return "", fmt.Errorf("coordinator: operator key in %s is shorter than 16 characters", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("coordinator: operator key: %w", err)
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	key := "aitbc-op-" + hex.EncodeToString(raw[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("coordinator: operator key: %w", err)
	}
	if err := os.WriteFile(path, []byte(key), 0o600); err != nil {
		return "", fmt.Errorf("coordinator: operator key: %w", err)
	}
	return key, nil
}

// AdminJob is a job as the operator sees it: the tenant's view plus whose
// it is. Prompts and results are never shown here.
type AdminJob struct {
	JobView
	TenantID string `json:"tenant_id"`
}

// MinerTotals sums the jobs this coordinator gave one miner.
type MinerTotals struct {
	Address   string      `json:"address"`
	Jobs      int         `json:"jobs"`
	Active    int         `json:"active"`
	Settled   int         `json:"settled"`
	Failed    int         `json:"failed"`
	TokensOut int         `json:"tokens_out"`
	Earned    coin.Amount `json:"earned"` // paid to the miner by settlements of these jobs
}

// AdminJobs is GET /v1/admin/jobs.
type AdminJobs struct {
	Active  []AdminJob     `json:"active"`            // queued, dispatched or running now
	Recent  []AdminJob     `json:"recent"`            // the newest jobs of every tenant, newest first
	Counts  map[string]int `json:"counts"`            // every stored job by status
	Miners  []MinerTotals  `json:"miners"`            // over the jobs scanned (Scanned)
	Scanned int            `json:"scanned"`           // jobs the miner totals cover
	Tenants int            `json:"tenants"`           // tenants scanned
	Partial bool           `json:"partial,omitempty"` // more tenants than MaxAdminTenants: totals cover the first ones
}

// MaxAdminTenants bounds the tenants one operator request reads, and
// maxAdminScan the jobs per tenant its miner totals cover, so that the
// request's cost has a ceiling however large the store grows.
const (
	MaxAdminTenants = 1000
	maxAdminScan    = 1000
)

// AdminJobs returns active and recent jobs across all tenants (at most
// limit recent ones) with per-miner totals.
func (s *Service) AdminJobs(ctx context.Context, limit int) (AdminJobs, error) {
	out := AdminJobs{Active: []AdminJob{}, Recent: []AdminJob{}, Miners: []MinerTotals{}}
	counts, err := s.cfg.Store.CountByStatus(ctx)
	if err != nil {
		return out, err
	}
	out.Counts = counts
	tenants, err := s.cfg.Store.Tenants(ctx)
	if err != nil {
		return out, err
	}
	if len(tenants) > MaxAdminTenants {
		tenants, out.Partial = tenants[:MaxAdminTenants], true
	}
	out.Tenants = len(tenants)
	var all []*store.Job
	for _, t := range tenants {
		list, err := s.Jobs(ctx, &t, maxAdminScan) // live state over the store's, gated
		if err != nil {
			return out, err
		}
		all = append(all, list...)
	}
	out.Scanned = len(all)
	sort.SliceStable(all, func(i, k int) bool { return all[i].Created.After(all[k].Created) })
	totals := map[string]*MinerTotals{}
	for _, j := range all {
		aj := AdminJob{JobView: view(j, false), TenantID: j.TenantID}
		active := j.Status == store.StatusQueued || j.Status == store.StatusDispatched || j.Status == store.StatusRunning
		if active {
			out.Active = append(out.Active, aj)
		}
		if len(out.Recent) < limit {
			out.Recent = append(out.Recent, aj)
		}
		if aj.Miner == "" {
			continue
		}
		m := totals[aj.Miner]
		if m == nil {
			m = &MinerTotals{Address: aj.Miner}
			totals[aj.Miner] = m
		}
		m.Jobs++
		m.TokensOut += j.TokensOut
		switch {
		case active:
			m.Active++
		case j.Status == store.StatusSettled:
			m.Settled++
			m.Earned += j.Paid
		case j.Status == store.StatusFailed || j.Status == store.StatusExpired:
			m.Failed++
		}
	}
	for _, m := range totals {
		out.Miners = append(out.Miners, *m)
	}
	sort.Slice(out.Miners, func(i, k int) bool { return out.Miners[i].Address < out.Miners[k].Address })
	return out, nil
}

// operator checks the request's operator key, answering the refusal itself.
func (s *Service) operator(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.OperatorKey == "" {
		s.fail(w, errf(ErrOperatorDisabled, "this coordinator has no operator key (set one to use the operator routes)"))
		return false
	}
	key := r.Header.Get("X-Operator-Key")
	if key == "" {
		key, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	// Compare digests so that the time taken says nothing about the key.
	want, got := sha256.Sum256([]byte(s.cfg.OperatorKey)), sha256.Sum256([]byte(key))
	if key == "" || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		s.fail(w, errf(ErrNotOperator, "operator key missing or wrong (X-Operator-Key)"))
		return false
	}
	return true
}

// hAdminJobs is GET /v1/admin/jobs?limit=N.
func (s *Service) hAdminJobs(w http.ResponseWriter, r *http.Request) {
	if !s.operator(w, r) {
		return
	}
	limit, ok := s.limitParam(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	out, err := s.AdminJobs(ctx, limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// AdminJobs returns GET /v1/admin/jobs with the operator key opKey.
func (c *Client) AdminJobs(ctx context.Context, opKey string, limit int) (AdminJobs, error) {
	var out AdminJobs
	h := http.Header{}
	h.Set("X-Operator-Key", opKey)
	err := httpx.Do(ctx, c.HTTP, http.MethodGet, fmt.Sprintf("%s/v1/admin/jobs?limit=%d", c.BaseURL, limit), h, nil, &out)
	var api *httpx.APIError
	if errors.As(err, &api) {
		return out, fromAPIError(api)
	}
	if err != nil {
		return out, fmt.Errorf("coordinator at %s is not reachable: %w", c.BaseURL, err)
	}
	return out, nil
}

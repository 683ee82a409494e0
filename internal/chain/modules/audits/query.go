package audits

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// CheckView is a check as queries show it (GET /api/v1/audits/checks/{id}).
type CheckView struct {
	JobID      string          `json:"job_id"`
	Miner      address.Address `json:"miner"`
	Customer   address.Address `json:"customer"`
	PayTo      address.Address `json:"pay_to"`
	Held       coin.Amount     `json:"amount"` // the miner's pay the check holds or held
	AttestHash string          `json:"attest_hash"`
	Settled    int64           `json:"settled_height"`
	Status     string          `json:"status"`
	Verifier   string          `json:"verifier,omitempty"`
	Deadline   int64           `json:"deadline_height,omitempty"`
	Evidence   string          `json:"evidence,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Second     string          `json:"second_verifier,omitempty"`
	Evidence2  string          `json:"second_evidence,omitempty"`
	Reason2    string          `json:"second_reason,omitempty"`
	Resolved   int64           `json:"resolved_height,omitempty"`
	Fees       coin.Amount     `json:"check_fees"`
	Slashed    coin.Amount     `json:"miner_slashed"`
	Refunded   coin.Amount     `json:"customer_refunded"`
	Shares     coin.Amount     `json:"verifier_shares"`
	Burned     coin.Amount     `json:"burned"`
	BondSlash  coin.Amount     `json:"bond_slashed"`
}

// ViewOfCheck is a check's view.
func ViewOfCheck(c *Check) CheckView {
	v := CheckView{JobID: hex.EncodeToString(c.JobID), Miner: c.MinerAddr(), Customer: c.CustomerAddr(), PayTo: c.PayToAddr(),
		Held: c.Amount, AttestHash: hex.EncodeToString(c.AttestHash), Settled: c.Settled, Status: StatusName(c.Status),
		Evidence: hex.EncodeToString(c.Evidence), Reason: c.Reason, Evidence2: hex.EncodeToString(c.Evidence2), Reason2: c.Reason2,
		Resolved: c.Resolved, Fees: c.Fees, Slashed: c.Slashed, Refunded: c.Refunded, Shares: c.Shares, Burned: c.Burned, BondSlash: c.BondSlash}
	if len(c.Verifier) > 0 {
		v.Verifier = c.VerifierAddr().String()
	}
	if len(c.Second) > 0 {
		v.Second = c.SecondAddr().String()
	}
	if _, ok := c.Current(); ok {
		v.Deadline = c.Deadline
	}
	return v
}

// VerifierView is a verifier as queries show it.
type VerifierView struct {
	Address   address.Address `json:"address"`
	Bond      coin.Amount     `json:"bond"`
	Since     int64           `json:"since_height"`
	Open      uint32          `json:"open"`
	Reports   uint32          `json:"reports"`
	Upheld    uint32          `json:"upheld"`
	Overruled uint32          `json:"overruled"`
	TimedOut  uint32          `json:"timed_out"`
	Earned    coin.Amount     `json:"earned"`
	Slashed   coin.Amount     `json:"slashed"`
	// Assigned is the jobs whose check awaits its report (only in
	// GET /api/v1/audits/verifiers/{address}).
	Assigned []string `json:"assigned,omitempty"`
}

func viewOfVerifier(a address.Address, v *Verifier) VerifierView {
	return VerifierView{Address: a, Bond: v.Bond, Since: v.Since, Open: v.Open, Reports: v.Reports, Upheld: v.Upheld,
		Overruled: v.Overruled, TimedOut: v.TimedOut, Earned: v.Earned, Slashed: v.Slashed}
}

// MinerView is a miner's record of spot checks.
type MinerView struct {
	Address address.Address `json:"address"`
	Drawn   uint32          `json:"drawn"`
	Passed  uint32          `json:"passed"`
	// ConfirmedFrauds counts the frauds two verifiers agreed on.
	ConfirmedFrauds uint32 `json:"confirmed_frauds"`
}

// CheckList is GET /api/v1/audits/checks.
type CheckList struct {
	Checks    []CheckView `json:"checks"`
	Truncated bool        `json:"truncated,omitempty"`
}

// VerifierList is GET /api/v1/audits/verifiers.
type VerifierList struct {
	Verifiers []VerifierView `json:"verifiers"`
	Truncated bool           `json:"truncated,omitempty"`
}

// MaxList bounds a list's length.
const MaxList = 500

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{
		{Method: "GET", Path: "/api/v1/audits/params", Summary: "the audits module's parameters", Handle: k.queryParams},
		{Method: "GET", Path: "/api/v1/audits/checks", Summary: "spot checks in job id order (?status=open for those holding pay; ?miner=), at most 500", Handle: k.queryChecks},
		{Method: "GET", Path: "/api/v1/audits/checks/{id}", Summary: "the spot check of a job: status, verifiers, evidence, outcome and what it paid", Handle: k.queryCheck},
		{Method: "GET", Path: "/api/v1/audits/verifiers", Summary: "registered verifiers and their bonds, at most 500", Handle: k.queryVerifiers},
		{Method: "GET", Path: "/api/v1/audits/verifiers/{address}", Summary: "a verifier: bond, record, and the checks awaiting its report", Handle: k.queryVerifier},
		{Method: "GET", Path: "/api/v1/audits/miners/{address}", Summary: "a miner's record of spot checks: drawn, passed, confirmed frauds", Handle: k.queryMiner},
	}
}

func (k *Keeper) queryParams(q module.Query, _ module.Request) (any, error) { return k.Params(q.State) }

func parseID(s string) ([]byte, error) {
	id, err := hex.DecodeString(s)
	if err != nil || len(id) != jobs.IDLen {
		return nil, fmt.Errorf("%w: job id %q (32 hex digits)", ErrInvalidQuery, s)
	}
	return id, nil
}

func parseAddr(what, s string) (address.Address, error) {
	a, err := address.Parse(s)
	if err != nil {
		return a, fmt.Errorf("%w: %s: %v", ErrInvalidQuery, what, err)
	}
	return a, nil
}

func (k *Keeper) queryCheck(q module.Query, in module.Request) (any, error) {
	id, err := parseID(in.PathValue("id"))
	if err != nil {
		return nil, err
	}
	c, err := k.Check(q.State, id)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("%w: %x (a job not drawn for a check leaves none)", ErrCheckNotFound, id)
	}
	return ViewOfCheck(c), nil
}

func (k *Keeper) queryChecks(q module.Query, in module.Request) (any, error) {
	open := false
	switch st := in.Param("status"); st {
	case "", "all":
	case "open":
		open = true
	default:
		return nil, fmt.Errorf("%w: status %q (open or all)", ErrInvalidQuery, st)
	}
	var miner *address.Address
	if s := in.Param("miner"); s != "" {
		a, err := parseAddr("miner", s)
		if err != nil {
			return nil, err
		}
		miner = &a
	}
	out := CheckList{Checks: []CheckView{}}
	var ferr error
	err := q.State.Iterate(CheckPrefix, false, func(key, val []byte) bool {
		c, err := decode[Check](key, val)
		if err != nil {
			ferr = err
			return false
		}
		if (open && !held(c.Status)) || (miner != nil && c.MinerAddr() != *miner) {
			return true
		}
		if len(out.Checks) == MaxList {
			out.Truncated = true
			return false
		}
		out.Checks = append(out.Checks, ViewOfCheck(c))
		return true
	})
	if err == nil {
		err = ferr
	}
	return out, err
}

func (k *Keeper) queryVerifiers(q module.Query, _ module.Request) (any, error) {
	out := VerifierList{Verifiers: []VerifierView{}}
	var ferr error
	err := q.State.Iterate(VerifierPrefix, false, func(key, val []byte) bool {
		v, err := decode[Verifier](key, val)
		if err != nil {
			ferr = err
			return false
		}
		if len(out.Verifiers) == MaxList {
			out.Truncated = true
			return false
		}
		a, _ := address.FromBytes(key[len(VerifierPrefix):])
		out.Verifiers = append(out.Verifiers, viewOfVerifier(a, v))
		return true
	})
	if err == nil {
		err = ferr
	}
	return out, err
}

func (k *Keeper) queryVerifier(q module.Query, in module.Request) (any, error) {
	a, err := parseAddr("address", in.PathValue("address"))
	if err != nil {
		return nil, err
	}
	v, err := k.Verifier(q.State, a)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotVerifier, a)
	}
	out := viewOfVerifier(a, v)
	out.Assigned, err = k.Assigned(q.State, a)
	return out, err
}

// Assigned lists the jobs whose check awaits a's report (at most
// MaxList; a verifier has at most as many open checks as it was drawn for
// within one window).
func (*Keeper) Assigned(v state.View, a address.Address) ([]string, error) {
	prefix := keyAssigned(a, nil)
	var ids []string
	err := v.Iterate(prefix, false, func(key, _ []byte) bool {
		ids = append(ids, hex.EncodeToString(key[len(prefix):]))
		return len(ids) < MaxList
	})
	return ids, err
}

func (k *Keeper) queryMiner(q module.Query, in module.Request) (any, error) {
	a, err := parseAddr("address", in.PathValue("address"))
	if err != nil {
		return nil, err
	}
	m, err := k.Miner(q.State, a)
	if err != nil {
		return nil, err
	}
	return MinerView{Address: a, Drawn: m.Drawn, Passed: m.Passed, ConfirmedFrauds: m.Frauds}, nil
}

// countVerifiers counts the registry (for max_verifiers).
func (*Keeper) countVerifiers(v state.View) (int, error) {
	n := 0
	err := v.Iterate(VerifierPrefix, false, func(_, _ []byte) bool { n++; return true })
	return n, err
}

// QueryParams fetches the module's parameters from a node.
func QueryParams(ctx context.Context, g module.Getter) (Params, error) {
	var p Params
	return p, g.GetJSON(ctx, "/api/v1/audits/params", &p)
}

// QueryCheck fetches the check of job id (hex) from a node.
func QueryCheck(ctx context.Context, g module.Getter, id string) (CheckView, error) {
	var v CheckView
	return v, g.GetJSON(ctx, "/api/v1/audits/checks/"+url.PathEscape(id), &v)
}

// QueryChecks fetches checks from a node: only open ones when open, only
// miner's when miner is not "".
func QueryChecks(ctx context.Context, g module.Getter, open bool, miner string) (CheckList, error) {
	vals := url.Values{}
	if open {
		vals.Set("status", "open")
	}
	if miner != "" {
		vals.Set("miner", miner)
	}
	path := "/api/v1/audits/checks"
	if len(vals) > 0 {
		path += "?" + vals.Encode()
	}
	var l CheckList
	return l, g.GetJSON(ctx, path, &l)
}

// QueryVerifiers fetches the verifier registry from a node.
func QueryVerifiers(ctx context.Context, g module.Getter) (VerifierList, error) {
	var l VerifierList
	return l, g.GetJSON(ctx, "/api/v1/audits/verifiers", &l)
}

// QueryVerifier fetches a verifier, with the checks awaiting its report.
func QueryVerifier(ctx context.Context, g module.Getter, a address.Address) (VerifierView, error) {
	var v VerifierView
	return v, g.GetJSON(ctx, "/api/v1/audits/verifiers/"+a.String(), &v)
}

// QueryMiner fetches a miner's record of checks.
func QueryMiner(ctx context.Context, g module.Getter, a address.Address) (MinerView, error) {
	var v MinerView
	return v, g.GetJSON(ctx, "/api/v1/audits/miners/"+a.String(), &v)
}

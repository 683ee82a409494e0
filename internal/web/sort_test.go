package web

import (
	"slices"
	"testing"
)

// TestSortMiners: each order ranks by its figure, larger first (time to
// first token: shorter first), with miners lacking the figure after those
// that have it and ties kept in the leaderboard's order (jobs settled);
// an unknown order is reputation.
func TestSortMiners(t *testing.T) {
	sc := func(v uint32) *uint32 { return &v }
	fl := func(v float64) *float64 { return &v }
	base := []MinerRow{ // the leaderboard's order: jobs settled
		{Address: "a", JobsSettled: 9, Score: sc(40), Bonded: 5, SuccessRate: fl(0.5)},
		{Address: "b", JobsSettled: 7, Score: nil, Bonded: 50, TokensPerSec: fl(12), FirstTokenMs: fl(250)},
		{Address: "c", JobsSettled: 5, Score: sc(90), Bonded: 5, SuccessRate: fl(1), TokensPerSec: fl(3)},
		{Address: "d", JobsSettled: 1, Score: sc(40), Bonded: 0, FirstTokenMs: fl(40)},
	}
	for _, tc := range []struct{ by, used, want string }{
		{"reputation", "reputation", "cadb"},
		{"", "reputation", "cadb"},
		{"<script>", "reputation", "cadb"},
		{"stake", "stake", "bacd"},
		{"success", "success", "cabd"},
		{"tokens_per_sec", "tokens_per_sec", "bcad"},
		{"first_token", "first_token", "dbac"}, // shorter first
		{"jobs", "jobs", "abcd"},
	} {
		rows := slices.Clone(base)
		if got := sortMiners(rows, tc.by); got != tc.used {
			t.Errorf("sort %q used %q, want %q", tc.by, got, tc.used)
		}
		var order string
		for i, r := range rows {
			order += r.Address
			if r.Rank != i+1 {
				t.Errorf("sort %q: %s ranked %d at %d", tc.by, r.Address, r.Rank, i+1)
			}
		}
		if order != tc.want {
			t.Errorf("sort %q: %s, want %s", tc.by, order, tc.want)
		}
	}
}

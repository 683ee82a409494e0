package web_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/httpx"
)

// TestLeaderboardTimeToFirstToken: after a job on the devnet's miner, the
// coordinator's time to first token for it reaches the leaderboard (HTML,
// CSV, JSON) and the miner's dashboard, and ?sort=first_token ranks the
// miners that have one first, shorter first.
func TestLeaderboardTimeToFirstToken(t *testing.T) {
	e := startEnv(t)
	c := client()
	v := e.runJob(t)

	var coord struct {
		Miners []struct {
			Address      string   `json:"address"`
			FirstTokenMs *float64 `json:"first_token_ms"`
		} `json:"miners"`
	}
	if err := httpx.Do(context.Background(), nil, "GET", e.d.CoordinatorURL()+"/v1/miners", nil, nil, &coord); err != nil {
		t.Fatal(err)
	}
	var want float64
	for _, m := range coord.Miners {
		if m.Address == v.Miner && m.FirstTokenMs != nil {
			want = *m.FirstTokenMs
		}
	}
	if want <= 0 || want >= 60000 {
		t.Fatalf("the coordinator's first_token_ms for %s is %v after a job: %+v", v.Miner, want, coord)
	}

	type row struct {
		Rank         int      `json:"rank"`
		Address      string   `json:"address"`
		FirstTokenMs *float64 `json:"first_token_ms"`
	}
	var mj struct {
		Sort   string `json:"sort"`
		Miners []row  `json:"miners"`
	}
	// The pages read the coordinator once a block.
	deadline := time.Now().Add(15 * time.Second)
	for {
		getJSONInto(t, c, e.web+"/api/explorer/miners?sort=first_token", &mj)
		var got *float64
		for _, m := range mj.Miners {
			if m.Address == v.Miner {
				got = m.FirstTokenMs
			}
		}
		if got != nil && *got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leaderboard's JSON has first_token_ms %v for %s, the coordinator %v: %+v", got, v.Miner, want, mj)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if mj.Sort != "first_token" {
		t.Errorf("sort %q, want first_token", mj.Sort)
	}
	for i := 1; i < len(mj.Miners); i++ {
		a, b := mj.Miners[i-1], mj.Miners[i]
		if a.FirstTokenMs == nil && b.FirstTokenMs != nil || a.FirstTokenMs != nil && b.FirstTokenMs != nil && *a.FirstTokenMs > *b.FirstTokenMs {
			t.Errorf("rank %d (%v) before rank %d (%v): not shorter first, unknown last", a.Rank, a.FirstTokenMs, b.Rank, b.FirstTokenMs)
		}
	}

	a := get(t, c, e.web+"/explorer/miners?sort=first_token")
	if a.status != 200 || !strings.Contains(a.body, `<th scope="col">First token</th>`) ||
		!strings.Contains(a.body, `<strong aria-current="true">time to first token</strong>`) ||
		!strings.Contains(a.body, "shorter first") || strings.Contains(a.body, "not published") ||
		!strings.Contains(a.body, fmt.Sprintf("<td>%.1f ms</td>", want)) {
		t.Errorf("leaderboard ordered by first token (%v ms): %d %s", want, a.status, a.body)
	}
	if a := get(t, c, e.web+"/explorer/miners"); !strings.Contains(a.body, `href="/explorer/miners?sort=first_token"`) {
		t.Error("the leaderboard has no link to order by time to first token")
	}
	a = get(t, c, e.web+"/explorer/miners?format=csv&sort=first_token")
	if !strings.Contains(a.body, ",tokens_per_sec,first_token_ms,connected,") || !strings.Contains(a.body, fmt.Sprintf(",%.3f,true,", want)) {
		t.Errorf("miners CSV lacks first_token_ms %v:\n%s", want, a.body)
	}
	a = get(t, c, e.web+"/miner/"+v.Miner)
	if !regexp.MustCompile(`<dt>First token</dt><dd>[0-9]+\.[0-9] ms`).MatchString(a.body) {
		t.Errorf("the miner's dashboard does not show its time to first token: %s", a.body)
	}
}

package cli_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
)

// auditsNode answers the audits module's routes with one confirmed fraud.
func auditsNode(t *testing.T, check audits.CheckView) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v any
		switch {
		case r.URL.Path == "/api/v1/audits/checks":
			if r.URL.Query().Get("status") == "open" {
				v = audits.CheckList{Checks: []audits.CheckView{}}
			} else {
				v = audits.CheckList{Checks: []audits.CheckView{check}}
			}
		case r.URL.Path == "/api/v1/audits/checks/"+check.JobID:
			v = check
		case strings.HasPrefix(r.URL.Path, "/api/v1/audits/checks/"):
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"check_not_found","message":"audits: no spot check of this job"}}`))
			return
		default:
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAuditsListAndShowAFraud(t *testing.T) {
	check := audits.CheckView{JobID: strings.Repeat("ab", 16), Miner: address.Address{7}, Status: "fraud_confirmed", Held: 20_000,
		Verifier: address.Address{8}.String(), Second: address.Address{9}.String(), Slashed: 5_000_000, Refunded: 2_516_000, Burned: 1_500_000, Resolved: 12, Reason: "commitments not reproduced"}
	node := auditsNode(t, check).URL
	out, _, err := runCLI(t, "--node", node, "audits", "list", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var l audits.CheckList
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.Checks) != 1 || l.Checks[0].Status != "fraud_confirmed" {
		t.Fatalf("list: %v %s", err, out)
	}
	out, _, err = runCLI(t, "--node", node, "audits", "list", "--open")
	if err != nil || !strings.Contains(out, "no spot checks") {
		t.Fatalf("list --open: %v %s", err, out)
	}
	out, _, err = runCLI(t, "--node", node, "audits", "show", check.JobID)
	if err != nil || !strings.Contains(out, "fraud_confirmed") || !strings.Contains(out, "miner slashed 5") || !strings.Contains(out, "burned 1.5") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if _, _, err := runCLI(t, "--node", node, "audits", "show", strings.Repeat("cd", 16)); err == nil || !strings.Contains(err.Error(), "no spot check") {
		t.Fatalf("show of an unchecked job: %v", err)
	}
	if _, _, err := runCLI(t, "--node", node, "audits", "list", "--miner", "nope"); err == nil {
		t.Fatal("a bad --miner was accepted")
	}
}

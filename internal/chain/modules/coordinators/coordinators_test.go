package coordinators_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/coordinators"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

func addr(i byte) address.Address {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = i
	return address.FromPubKey(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
}

type world struct {
	t  *testing.T
	kv *state.Cache
	k  *coordinators.Keeper
	h  int64
}

func newWorld(t *testing.T) *world {
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, kv: state.NewCache(st), k: coordinators.NewKeeper(), h: 1}
}

// exec runs msg as a transaction would, and checks that a refused message
// wrote nothing.
func (w *world) exec(signer address.Address, msg tx.Msg) error {
	kv := w.kv.Child()
	err := w.k.Exec(&module.Context{KV: kv, Height: w.h, Signer: signer}, msg)
	if err == nil {
		kv.Write()
	} else if kv.Len() != 0 {
		w.t.Errorf("%s refused (%v) but wrote %d keys", msg.Type, err, kv.Len())
	}
	return err
}

type req map[string]string

func (r req) PathValue(n string) string { return r[n] }
func (r req) Param(n string) string     { return r[n] }

func (w *world) route(path string, in req) (coordinators.ListView, error) {
	for _, r := range w.k.Routes() {
		if r.Path == path {
			v, err := r.Handle(module.Query{State: w.kv, Height: w.h}, in)
			if err != nil {
				return coordinators.ListView{}, err
			}
			return v.(coordinators.ListView), nil
		}
	}
	w.t.Fatalf("no route %s", path)
	return coordinators.ListView{}, nil
}

func (w *world) audit() string {
	w.t.Helper()
	var details []string
	for _, in := range w.k.Invariants() {
		f := in.Check(module.Query{State: w.kv, Height: w.h})
		if f.Broken {
			w.t.Fatalf("%s broken: %s", in.Name, f.Detail)
		}
		details = append(details, f.Detail)
	}
	return strings.Join(details, "; ")
}

// TestAnnounceUpdateRetire: a coordinator announces its URL and region,
// the listing shows it, a second announcement of the same URL updates the
// region and keeps the first height, and retiring removes it.
func TestAnnounceUpdateRetire(t *testing.T) {
	w := newWorld(t)
	a, b := addr(1), addr(2)
	w.h = 5
	if err := w.exec(a, coordinators.NewAnnounceMsg("https://eu.aitbc.example:8000", "eu-west", "aitbc EU")); err != nil {
		t.Fatal(err)
	}
	// The marketplace's second coordinator shares its key.
	if err := w.exec(a, coordinators.NewAnnounceMsg("https://us.aitbc.example:8000", "us-east", "aitbc US")); err != nil {
		t.Fatal(err)
	}
	if err := w.exec(b, coordinators.NewAnnounceMsg("http://10.0.0.9:8000", "eu-west", "")); err != nil {
		t.Fatal(err)
	}
	all, err := w.route("/api/v1/coordinators", req{})
	if err != nil || len(all.Coordinators) != 3 || all.More {
		t.Fatalf("list: %+v %v", all, err)
	}
	eu, err := w.route("/api/v1/coordinators", req{"region": "eu-west"})
	if err != nil || len(eu.Coordinators) != 2 {
		t.Fatalf("eu-west: %+v %v", eu, err)
	}
	for _, v := range eu.Coordinators {
		if v.Region != "eu-west" {
			t.Fatalf("eu-west filter let through %+v", v)
		}
	}
	first, err := w.route("/api/v1/coordinators", req{"limit": "1"})
	if err != nil || len(first.Coordinators) != 1 || !first.More {
		t.Fatalf("limit 1: %+v %v", first, err)
	}
	w.h = 9
	if err := w.exec(a, coordinators.NewAnnounceMsg("https://eu.aitbc.example:8000", "eu-central", "aitbc EU")); err != nil {
		t.Fatal(err)
	}
	mine, err := w.route("/api/v1/coordinators/{address}", req{"address": a.String()})
	if err != nil || len(mine.Coordinators) != 2 {
		t.Fatalf("a's: %+v %v", mine, err)
	}
	v := mine.Coordinators[0]
	if v.URL != "https://eu.aitbc.example:8000" || v.Region != "eu-central" || v.Created != 5 || v.Updated != 9 || v.Address != a {
		t.Fatalf("after update: %+v", v)
	}
	if d := w.audit(); !strings.Contains(d, "3 coordinator records") {
		t.Fatalf("audit: %s", d)
	}
	if err := w.exec(a, coordinators.NewRetireMsg("https://eu.aitbc.example:8000")); err != nil {
		t.Fatal(err)
	}
	if err := w.exec(a, coordinators.NewRetireMsg("https://eu.aitbc.example:8000")); !errors.Is(err, coordinators.ErrNotFound) {
		t.Fatalf("retire twice: %v", err)
	}
	// Another key cannot retire a's announcement.
	if err := w.exec(b, coordinators.NewRetireMsg("https://us.aitbc.example:8000")); !errors.Is(err, coordinators.ErrNotFound) {
		t.Fatalf("b retiring a's URL: %v", err)
	}
	if _, err := w.route("/api/v1/coordinators/{address}", req{"address": addr(3).String()}); !errors.Is(err, coordinators.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	if d := w.audit(); !strings.Contains(d, "2 coordinator records") {
		t.Fatalf("audit: %s", d)
	}
}

// TestBadAnnouncementsChangeNothing: each malformed field is refused with
// its own error, and exec checks that nothing was written.
func TestBadAnnouncementsChangeNothing(t *testing.T) {
	w := newWorld(t)
	a := addr(1)
	long := "https://" + strings.Repeat("a", coordinators.MaxURL) + ".example"
	for _, c := range []struct {
		url, region, name string
		want              error
	}{
		{"", "eu", "", coordinators.ErrURL},
		{long, "eu", "", coordinators.ErrURL},
		{"ftp://c.example", "eu", "", coordinators.ErrURL},
		{"c.example:8000", "eu", "", coordinators.ErrURL},
		{"http://", "eu", "", coordinators.ErrURL},
		{"http://user:pw@c.example", "eu", "", coordinators.ErrURL},
		{"http://c.example/?x=1", "eu", "", coordinators.ErrURL},
		{"http://c.example#f", "eu", "", coordinators.ErrURL},
		{"http://c.example/", "eu", "", coordinators.ErrURL},
		{"http://c.example/a b", "eu", "", coordinators.ErrURL},
		{"HTTP://c.example", "eu", "", coordinators.ErrURL}, // not canonical: the scheme is lower-cased by url.Parse
		{"http://c.example", "", "", coordinators.ErrRegion},
		{"http://c.example", "EU", "", coordinators.ErrRegion},
		{"http://c.example", strings.Repeat("e", coordinators.MaxRegion+1), "", coordinators.ErrRegion},
		{"http://c.example", "eu", strings.Repeat("n", coordinators.MaxName+1), coordinators.ErrName},
		{"http://c.example", "eu", "bad\nname", coordinators.ErrName},
	} {
		err := w.exec(a, coordinators.NewAnnounceMsg(c.url, c.region, c.name))
		if !errors.Is(err, c.want) {
			t.Errorf("announce(%q, %q, %q): %v, want %v", c.url, c.region, c.name, err, c.want)
		}
	}
	if l, _ := w.route("/api/v1/coordinators", req{}); len(l.Coordinators) != 0 {
		t.Fatalf("refused announcements listed: %+v", l)
	}
	for _, in := range []req{{"region": "EU"}, {"limit": "0"}, {"limit": "501"}, {"limit": "x"}} {
		if _, err := w.route("/api/v1/coordinators", in); !errors.Is(err, coordinators.ErrFilter) {
			t.Errorf("filter %v: %v", in, err)
		}
	}
	if _, err := w.route("/api/v1/coordinators/{address}", req{"address": "nope"}); !errors.Is(err, coordinators.ErrAddress) {
		t.Errorf("bad address: %v", err)
	}
}

// TestOneKeyAnnouncesAtMost16: the 17th URL of one key is refused, an
// update of an announced one still passes, and another key is not held
// back.
func TestOneKeyAnnouncesAtMost16(t *testing.T) {
	w := newWorld(t)
	a := addr(1)
	for i := range coordinators.MaxEndpoints {
		if err := w.exec(a, coordinators.NewAnnounceMsg(fmt.Sprintf("http://c%d.example:8000", i), "eu", "")); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.exec(a, coordinators.NewAnnounceMsg("http://c99.example:8000", "eu", "")); !errors.Is(err, coordinators.ErrTooMany) {
		t.Fatalf("17th: %v", err)
	}
	if err := w.exec(a, coordinators.NewAnnounceMsg("http://c3.example:8000", "us", "")); err != nil {
		t.Fatalf("update at the cap: %v", err)
	}
	if err := w.exec(addr(2), coordinators.NewAnnounceMsg("http://c99.example:8000", "eu", "")); err != nil {
		t.Fatalf("another key: %v", err)
	}
	w.audit()
}

// TestExportImportRoundTrips: a chain exported and imported lists the
// same coordinators, and a tampered record is refused at import.
func TestExportImportRoundTrips(t *testing.T) {
	w := newWorld(t)
	w.h = 3
	for i, u := range []string{"https://a.example", "https://b.example:8443/aitbc"} {
		if err := w.exec(addr(byte(i+1)), coordinators.NewAnnounceMsg(u, "ap-south", "n")); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := w.k.ExportGenesis(w.kv)
	if err != nil {
		t.Fatal(err)
	}
	w2 := newWorld(t)
	w2.h = 3
	if err := w2.k.ImportGenesis(&module.Context{KV: w2.kv}, raw); err != nil {
		t.Fatal(err)
	}
	l1, _ := w.route("/api/v1/coordinators", req{})
	l2, _ := w2.route("/api/v1/coordinators", req{})
	if fmt.Sprint(l1) != fmt.Sprint(l2) || len(l2.Coordinators) != 2 {
		t.Fatalf("round trip:\n%+v\n%+v", l1, l2)
	}
	w2.audit()
	// A record moved under another key is refused.
	bad := strings.Replace(string(raw), `"k":"`, `"k":"Y29vcmRpbmF0b3JzL2Uv`, 1)
	if err := newWorld(t).k.ImportGenesis(&module.Context{KV: newWorld(t).kv}, []byte(bad)); err == nil {
		t.Fatal("a record under a wrong key was imported")
	}
}

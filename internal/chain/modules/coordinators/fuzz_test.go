package coordinators_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/modules/coordinators"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// FuzzAnnounce: an announcement body from any bytes decodes or is
// refused without a panic; one that decodes and passes Check has a URL
// that is its own canonical form (so one coordinator has one key), within
// the bounds, and encodes back to a body that decodes the same.
func FuzzAnnounce(f *testing.F) {
	for _, s := range [][3]string{
		{"https://eu.aitbc.example:8000", "eu-west", "aitbc EU"},
		{"http://10.0.0.9:8000/aitbc", "us-east-1", ""},
		{"HTTP://x.example", "eu", ""},
		{"http://x.example/", "eu", ""},
		{"http://[::1]:8000", "local", "n"},
		{"http://user@x.example", "eu", ""},
	} {
		m, err := tx.NewMsg(coordinators.TypeAnnounce, coordinators.MsgAnnounce{URL: s[0], Region: s[1], Name: s[2]})
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(m.Body))
	}
	f.Add([]byte{0x83, 0x60, 0x60, 0x60})
	f.Fuzz(func(t *testing.T, body []byte) {
		var m coordinators.MsgAnnounce
		if err := (tx.Msg{Type: coordinators.TypeAnnounce, Body: body}).DecodeBody(&m); err != nil {
			return
		}
		if m.Check() != nil {
			return
		}
		u, err := url.Parse(m.URL)
		if err != nil || u.String() != m.URL || strings.HasSuffix(m.URL, "/") || len(m.URL) > coordinators.MaxURL ||
			(u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			t.Fatalf("accepted URL %q (%v)", m.URL, err)
		}
		if len(m.Region) == 0 || len(m.Region) > coordinators.MaxRegion || len(m.Name) > coordinators.MaxName {
			t.Fatalf("accepted %+v", m)
		}
		again, err := tx.NewMsg(coordinators.TypeAnnounce, m)
		if err != nil {
			t.Fatal(err)
		}
		var back coordinators.MsgAnnounce
		if err := again.DecodeBody(&back); err != nil || back.URL != m.URL || back.Region != m.Region || back.Name != m.Name {
			t.Fatalf("round trip: %+v -> %+v (%v)", m, back, err)
		}
	})
}

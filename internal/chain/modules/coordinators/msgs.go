package coordinators

import (
	"fmt"
	"net/url"

	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Message types.
const (
	TypeAnnounce = "coordinators/announce" // the signer announces (or updates) one of its coordinators: URL, region, name
	TypeRetire   = "coordinators/retire"   // the signer withdraws one of its announced URLs
)

// Bounds on every field.
const (
	MaxURL       = 200
	MaxRegion    = 32
	MaxName      = 64
	MaxEndpoints = 16 // URLs one key announces: the coordinators behind one marketplace share its key
)

// MsgAnnounce announces a coordinator the signer runs at URL, in Region,
// or replaces the region and name of an announced URL (its first height
// stays).
type MsgAnnounce struct {
	_      struct{} `cbor:",toarray"`
	URL    string
	Region string
	Name   string
}

// MsgRetire withdraws the signer's announcement of URL.
type MsgRetire struct {
	_   struct{} `cbor:",toarray"`
	URL string
}

func mustMsg(typ string, body any) tx.Msg {
	m, err := tx.NewMsg(typ, body)
	if err != nil { // fixed structs of plain fields always encode
		panic(err)
	}
	return m
}

// NewAnnounceMsg builds a coordinators/announce.
func NewAnnounceMsg(publicURL, region, name string) tx.Msg {
	return mustMsg(TypeAnnounce, MsgAnnounce{URL: publicURL, Region: region, Name: name})
}

// NewRetireMsg builds a coordinators/retire.
func NewRetireMsg(publicURL string) tx.Msg { return mustMsg(TypeRetire, MsgRetire{URL: publicURL}) }

// CheckURL checks a public URL. It must be in the one form url.Parse
// gives back, without a trailing slash, so that one coordinator cannot be
// announced twice under two spellings of its URL (the URL is part of the
// record's key).
func CheckURL(s string) error {
	if len(s) < 1 || len(s) > MaxURL {
		return fmt.Errorf("%w: %d characters", ErrURL, len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return fmt.Errorf("%w: %q has a space, control or non-ASCII character", ErrURL, s)
		}
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", ErrURL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%w: %q: scheme must be http or https", ErrURL, s)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%w: %q has no host", ErrURL, s)
	case u.User != nil:
		return fmt.Errorf("%w: %q carries a user", ErrURL, s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "":
		return fmt.Errorf("%w: %q has a query or fragment", ErrURL, s)
	case s[len(s)-1] == '/':
		return fmt.Errorf("%w: %q ends in a slash", ErrURL, s)
	case u.String() != s:
		return fmt.Errorf("%w: %q is not canonical (want %q)", ErrURL, s, u.String())
	}
	return nil
}

// CheckRegion checks a region name ("eu-west", "us-east-1").
func CheckRegion(r string) error {
	if len(r) < 1 || len(r) > MaxRegion {
		return fmt.Errorf("%w: %d characters", ErrRegion, len(r))
	}
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%w: %q", ErrRegion, r)
		}
	}
	return nil
}

// CheckName checks a coordinator's display name; empty is none.
func CheckName(n string) error {
	if len(n) > MaxName {
		return fmt.Errorf("%w: %d characters", ErrName, len(n))
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ' ' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("%w: %q", ErrName, n)
		}
	}
	return nil
}

// Check checks an announcement.
func (m MsgAnnounce) Check() error {
	if err := CheckURL(m.URL); err != nil {
		return err
	}
	if err := CheckRegion(m.Region); err != nil {
		return err
	}
	return CheckName(m.Name)
}

// Describe implements module.Describer.
func (*Keeper) Describe(msg tx.Msg) (any, error) {
	switch msg.Type {
	case TypeAnnounce:
		var m MsgAnnounce
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"url": m.URL, "region": m.Region, "name": m.Name}, nil
	case TypeRetire:
		var m MsgRetire
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"url": m.URL}, nil
	}
	return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

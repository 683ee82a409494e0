package agents

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/aitbc/aitbc/internal/chain/tx"
)

// A span server's record carries where it serves (Endpoint, its span
// API's public base URL) and every span it serves, so that a coordinator
// finds routes from the chain rather than from a list of URLs. One key
// serves several spans: the record's Span is the first, More the others
// (docs/DISTRIBUTED.md). Records and registrations without either keep
// their old encoding (v1, the array they always had), byte for byte; the
// v2 array appends Endpoint and More. Each is told apart by its length.

// Bounds of the v2 fields.
const (
	MaxEndpoint = 256 // bytes of an endpoint URL
	MaxSpans    = 8   // spans of one agent, Span included
)

// NewRegisterSpansMsg builds an agents/register of a span server: its
// public endpoint and the spans it serves (the first becomes Span).
func NewRegisterSpansMsg(name, modelHash string, caps []string, endpoint string, spans []Span) tx.Msg {
	m := MsgRegister{Name: name, ModelHash: modelHash, Caps: caps, Endpoint: endpoint}
	if len(spans) > 0 {
		m.Span = &spans[0]
		m.More = spans[1:]
	}
	return mustMsg(TypeRegister, m)
}

// CheckEndpoint checks a span server's endpoint: an absolute http or https
// URL with a host, no credentials, query or fragment, at most MaxEndpoint
// bytes ("" is none).
func CheckEndpoint(e string) error {
	if e == "" {
		return nil
	}
	if len(e) > MaxEndpoint {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrEndpoint, len(e), MaxEndpoint)
	}
	u, err := url.Parse(e)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrEndpoint, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%w: scheme %q (http or https)", ErrEndpoint, u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%w: no host in %q", ErrEndpoint, e)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(e, " \t\r\n"):
		return fmt.Errorf("%w: credentials, query, fragment or spaces in %q", ErrEndpoint, e)
	}
	return nil
}

// CheckSpans checks an agent's spans: each valid, at most MaxSpans, and
// no two of one model overlapping (more spans need a first one).
func CheckSpans(first *Span, more []Span) error {
	if first == nil {
		if len(more) > 0 {
			return fmt.Errorf("%w: more spans without a first", ErrSpan)
		}
		return nil
	}
	all := append([]Span{*first}, more...)
	if len(all) > MaxSpans {
		return fmt.Errorf("%w: %d spans, at most %d", ErrSpan, len(all), MaxSpans)
	}
	for i := range all {
		if err := CheckSpan(&all[i]); err != nil {
			return err
		}
		for _, o := range all[:i] {
			if o.Model == all[i].Model && o.First <= all[i].Last && all[i].First <= o.Last {
				return fmt.Errorf("%w: layers %d-%d and %d-%d of %s overlap", ErrSpan, o.First, o.Last, all[i].First, all[i].Last, o.Model)
			}
		}
	}
	return nil
}

// Spans returns every span the agent serves.
func (a *Agent) Spans() []Span {
	if a.Span == nil {
		return nil
	}
	return append([]Span{*a.Span}, a.More...)
}

// Serves reports whether the agent announced a span of model holding
// layers first..last (inclusive).
func (a *Agent) Serves(model string, first, last int) bool {
	for _, s := range a.Spans() {
		if s.Model == model && s.First <= first && last <= s.Last {
			return true
		}
	}
	return false
}

type msgRegisterV1 struct {
	_         struct{} `cbor:",toarray"`
	Name      string
	ModelHash string
	Caps      []string
	Span      *Span
}

type msgRegisterV2 struct {
	_         struct{} `cbor:",toarray"`
	Name      string
	ModelHash string
	Caps      []string
	Span      *Span
	Endpoint  string
	More      []Span
}

// MarshalCBOR writes the v1 array when there is neither endpoint nor more
// spans, else v2.
func (m MsgRegister) MarshalCBOR() ([]byte, error) {
	if m.Endpoint == "" && len(m.More) == 0 {
		return tx.Marshal(msgRegisterV1{Name: m.Name, ModelHash: m.ModelHash, Caps: m.Caps, Span: m.Span})
	}
	return tx.Marshal(msgRegisterV2{Name: m.Name, ModelHash: m.ModelHash, Caps: m.Caps, Span: m.Span, Endpoint: m.Endpoint, More: m.More})
}

// UnmarshalCBOR reads either form.
func (m *MsgRegister) UnmarshalCBOR(b []byte) error {
	if len(b) > 0 && b[0] == 0x80|6 {
		var v msgRegisterV2
		if err := tx.Unmarshal(b, &v); err != nil {
			return err
		}
		if v.Endpoint == "" && len(v.More) == 0 {
			return fmt.Errorf("%w: an empty v2 registration (v1 is the canonical form)", ErrEndpoint)
		}
		*m = MsgRegister{Name: v.Name, ModelHash: v.ModelHash, Caps: v.Caps, Span: v.Span, Endpoint: v.Endpoint, More: v.More}
		return nil
	}
	var v msgRegisterV1
	if err := tx.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = MsgRegister{Name: v.Name, ModelHash: v.ModelHash, Caps: v.Caps, Span: v.Span}
	return nil
}

type agentV1 struct {
	_         struct{} `cbor:",toarray"`
	Address   []byte
	Name      string
	ModelHash string
	Caps      []string
	Span      *Span
	Created   int64
	Updated   int64
	Heartbeat int64
	Metrics   *Metrics
}

type agentV2 struct {
	_         struct{} `cbor:",toarray"`
	Address   []byte
	Name      string
	ModelHash string
	Caps      []string
	Span      *Span
	Created   int64
	Updated   int64
	Heartbeat int64
	Metrics   *Metrics
	Endpoint  string
	More      []Span
}

// MarshalCBOR writes a record in v1 form when it has neither endpoint nor
// more spans (records written before keep their bytes), else v2.
func (a Agent) MarshalCBOR() ([]byte, error) {
	if a.Endpoint == "" && len(a.More) == 0 {
		return tx.Marshal(agentV1{Address: a.Address, Name: a.Name, ModelHash: a.ModelHash, Caps: a.Caps, Span: a.Span,
			Created: a.Created, Updated: a.Updated, Heartbeat: a.Heartbeat, Metrics: a.Metrics})
	}
	return tx.Marshal(agentV2{Address: a.Address, Name: a.Name, ModelHash: a.ModelHash, Caps: a.Caps, Span: a.Span,
		Created: a.Created, Updated: a.Updated, Heartbeat: a.Heartbeat, Metrics: a.Metrics, Endpoint: a.Endpoint, More: a.More})
}

// UnmarshalCBOR reads either form.
func (a *Agent) UnmarshalCBOR(b []byte) error {
	if len(b) > 0 && b[0] == 0x80|11 {
		var v agentV2
		if err := tx.Unmarshal(b, &v); err != nil {
			return err
		}
		if v.Endpoint == "" && len(v.More) == 0 {
			return fmt.Errorf("agents: an empty v2 record (v1 is the canonical form)")
		}
		*a = Agent{Address: v.Address, Name: v.Name, ModelHash: v.ModelHash, Caps: v.Caps, Span: v.Span, Created: v.Created,
			Updated: v.Updated, Heartbeat: v.Heartbeat, Metrics: v.Metrics, Endpoint: v.Endpoint, More: v.More}
		return nil
	}
	var v agentV1
	if err := tx.Unmarshal(b, &v); err != nil {
		return err
	}
	*a = Agent{Address: v.Address, Name: v.Name, ModelHash: v.ModelHash, Caps: v.Caps, Span: v.Span, Created: v.Created,
		Updated: v.Updated, Heartbeat: v.Heartbeat, Metrics: v.Metrics}
	return nil
}

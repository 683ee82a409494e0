package web

import (
	"fmt"
	"html/template"
	"io/fs"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
)

// funcs are the helpers every template may use. None returns
// template.HTML from text it was given, except svg (charts drawn here,
// every label escaped by the chart code).
var funcs = template.FuncMap{
	"short": short,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"whenp": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"aitbc": func(a coin.Amount) string { return a.String() + " AITBC" },
	"ms":    func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) },
	"secs":  func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) },
	"pct": func(n, d int) string {
		if d == 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(d))
	},
	"join": strings.Join,
	// bps shows basis points (a uint64 or *uint64) as a percentage.
	"bps": func(v any) string {
		switch p := v.(type) {
		case uint64:
			return bpsPct(p)
		case *uint64:
			if p != nil {
				return bpsPct(*p)
			}
		}
		return "—"
	},
	"minerSorts": func() []string { return minerSorts },
	"sortName": func(k string) string {
		return map[string]string{"reputation": "reputation", "stake": "bonded stake", "success": "success rate",
			"tokens_per_sec": "tokens/s", "first_token": "time to first token", "jobs": "jobs settled"}[k]
	},
	"svg":   func(c chart) template.HTML { return c.render() },
	"add":   func(a, b int) int { return a + b },
	"add64": func(a, b int64) int64 { return a + b },
	"sub64": func(a, b int64) int64 { return a - b },
	"mb": func(n uint64) string {
		if n == 0 {
			return "—"
		}
		if n >= 1024 {
			return fmt.Sprintf("%.1f GB", float64(n)/1024)
		}
		return fmt.Sprintf("%d MB", n)
	},
	"f1":     func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"mul100": func(f float64) float64 { return 100 * f },
	"deref": func(v any) any {
		switch p := v.(type) {
		case *float64:
			return *p
		case *string:
			return *p
		}
		return v
	},
	"nonempty": func(s string) string {
		if s == "" {
			return "—"
		}
		return s
	},
}

// short keeps the ends of a long hash or address: enough to tell them
// apart on a phone; the full value is in the link's target and title.
func short(s string) string {
	if len(s) <= 20 {
		return s
	}
	return s[:10] + "…" + s[len(s)-6:]
}

// parsePages parses each page with the layout.
func (s *Server) parsePages() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	s.pages = map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		if base == "base.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/base.html", n)
		if err != nil {
			return fmt.Errorf("web: template %s: %w", base, err)
		}
		s.pages[base] = t
	}
	return nil
}

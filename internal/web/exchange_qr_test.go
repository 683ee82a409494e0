package web

import (
	"strings"
	"testing"

	"rsc.io/qr"
)

// TestQRSVG: every dark module of the code is one unit square, offset by
// the four-module quiet zone (the top-left finder pattern's corner is
// dark, the module inside its ring light), and the label is escaped.
func TestQRSVG(t *testing.T) {
	text := `bitcoin:bcrt1qexample?amount=0.01&label="<x>"`
	svg, err := qrSVG(text)
	if err != nil {
		t.Fatal(err)
	}
	c, err := qr.Encode(text, qr.M)
	if err != nil {
		t.Fatal(err)
	}
	dark := 0
	for y := 0; y < c.Size; y++ {
		for x := 0; x < c.Size; x++ {
			if c.Black(x, y) {
				dark++
			}
		}
	}
	s := string(svg)
	if n := strings.Count(s, "h1v1h-1z"); n != dark || dark == 0 {
		t.Fatalf("%d squares for %d dark modules", n, dark)
	}
	if !strings.Contains(s, "M4 4h1v1h-1z") || strings.Contains(s, "M5 5h1v1h-1z") {
		t.Fatal("the finder pattern is not at the quiet zone's corner")
	}
	if strings.Contains(s, `"<x>"`) || !strings.Contains(s, "&amp;label=&#34;&lt;x&gt;&#34;") {
		t.Fatalf("label not escaped: %s", s[:300])
	}
}

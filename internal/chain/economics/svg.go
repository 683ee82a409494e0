package economics

import (
	"fmt"
	"io"

	"github.com/aitbc/aitbc/internal/chain/coin"
)

// SVG draws the projection as a chart: the supply at each year's end
// (left axis, millions of AITBC) and the year's minted and burned amounts
// (bars, right axis, millions of AITBC).
func SVG(w io.Writer, years []Year) error {
	const W, H, left, right, top, bottom = 720, 360, 70, 70, 40, 50
	pw, ph := float64(W-left-right), float64(H-top-bottom)
	if len(years) == 0 {
		return fmt.Errorf("economics: nothing to draw")
	}
	mil := func(a coin.Amount) float64 { return float64(a) / float64(coin.Unit) / 1e6 }
	var maxS, minS, maxF float64
	minS = mil(years[0].Supply)
	for _, y := range years {
		maxS, minS = max(maxS, mil(y.Supply)), min(minS, mil(y.Supply))
		maxF = max(maxF, mil(y.Minted), mil(y.Burned))
	}
	lo, hi := minS*0.98, maxS*1.02
	if hi <= lo {
		hi = lo + 1
	}
	if maxF == 0 {
		maxF = 1
	}
	maxF *= 1.1
	x := func(i int) float64 { return left + pw*(float64(i)+0.5)/float64(len(years)) }
	ys := func(v float64) float64 { return top + ph*(1-(v-lo)/(hi-lo)) }
	yf := func(v float64) float64 { return top + ph*(1-v/maxF) }
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`, W, H, W, H)
	p(`<rect width="%d" height="%d" fill="white"/>`, W, H)
	p(`<text x="%d" y="20" font-size="14">AITBC supply (line, left axis) and yearly minted / burned (bars, right axis), millions of AITBC</text>`, left)
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`, left, top, left, H-bottom)
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`, W-right, top, W-right, H-bottom)
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`, left, H-bottom, W-right, H-bottom)
	for k := 0; k <= 4; k++ {
		v := lo + (hi-lo)*float64(k)/4
		f := maxF * float64(k) / 4
		p(`<text x="%d" y="%.1f" text-anchor="end">%.1f</text>`, left-6, ys(v)+4, v)
		p(`<text x="%d" y="%.1f">%.2f</text>`, W-right+6, yf(f)+4, f)
	}
	bw := pw / float64(len(years)) / 3
	for i, yr := range years {
		p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#7aa6d8"><title>minted %s</title></rect>`, x(i)-bw, yf(mil(yr.Minted)), bw, yf(0)-yf(mil(yr.Minted)), yr.Minted)
		p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#e08a5c"><title>burned %s</title></rect>`, x(i), yf(mil(yr.Burned)), bw, yf(0)-yf(mil(yr.Burned)), yr.Burned)
		p(`<text x="%.1f" y="%d" text-anchor="middle">%d</text>`, x(i), H-bottom+16, yr.Year)
	}
	var pts []byte
	for i, yr := range years {
		pts = fmt.Appendf(pts, "%.1f,%.1f ", x(i), ys(mil(yr.Supply)))
	}
	p(`<polyline fill="none" stroke="#333" stroke-width="2" points="%s"/>`, pts)
	p(`<text x="%d" y="%d" text-anchor="middle">year</text>`, left+int(pw/2), H-12)
	p(`<rect x="%d" y="%d" width="10" height="10" fill="#7aa6d8"/><text x="%d" y="%d">minted</text>`, left+10, top+4, left+24, top+13)
	p(`<rect x="%d" y="%d" width="10" height="10" fill="#e08a5c"/><text x="%d" y="%d">burned</text>`, left+80, top+4, left+94, top+13)
	p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333" stroke-width="2"/><text x="%d" y="%d">supply</text>`, left+150, top+9, left+166, top+9, left+170, top+13)
	p(`</svg>`)
	return nil
}

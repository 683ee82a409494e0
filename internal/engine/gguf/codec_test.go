package gguf

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

var quantTypes = []TensorType{Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K}

func h(f float32) []byte { return binary.LittleEndian.AppendUint16(nil, Float16Bits(f)) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// TestDequantizeGolden decodes hand-built blocks whose values follow from
// llama.cpp's dequantize_row_* by hand, so a wrong bit position, nibble
// order or scale packing shows up as a specific wrong value.
func TestDequantizeGolden(t *testing.T) {
	qs16 := make([]byte, 16)
	qs16[0], qs16[3] = 0x1f, 0xa0 // value 0: lo 15, value 16: hi 1; value 3: lo 0, value 19: hi 10
	type want struct {
		i int
		v float32
	}
	q4k := make([]byte, 144)
	copy(q4k, cat(h(0.5), h(0.25)))
	// Sub-block 1: scale 3, min 2 (bytes 1 and 5); sub-block 5: scale
	// 0b100111 = 39 (low bits in byte 9, top bits in byte 1's bits 6-7),
	// min 0b010001 = 17 (byte 9's high nibble, byte 5's bits 6-7).
	q4k[4+1] = 3 | 2<<6
	q4k[4+5] = 2 | 1<<6
	q4k[4+9] = 7 | 1<<4
	q4k[16+0] = 0x9f    // value 0 lo nibble (sub-block 0, scale 0 → -min·0 = 0), value 32 hi 9 (sub-block 1)
	q4k[16+32+2] = 0x50 // value 64+2 lo 0 (sub-block 2), value 96+2 hi 5 (sub-block 3)
	q4k[16+64+1] = 0x04 // value 128+1: sub-block 4 lo 4
	q4k[16+64+3] = 0xc0 // value 160+3: sub-block 5 hi 12
	q6k := make([]byte, 210)
	q6k[0] = 0x21         // value 0 lo 1, value 64 lo 2
	q6k[128] = 0b11100100 // qh of l=0: value 0 +0<<4, value 32 +1<<4, value 64 +2<<4, value 96 +3<<4
	q6k[192+0], q6k[192+2], q6k[192+4], q6k[192+6] = 1, 2, 0xff, 4
	copy(q6k[208:], h(0.5))
	cases := []struct {
		typ  TensorType
		blk  []byte
		want []want
	}{
		{Q4_0, cat(h(0.5), qs16), []want{{0, 3.5}, {16, -3.5}, {3, -4}, {19, 1}, {1, -4}}},
		{Q4_1, cat(h(0.5), h(-1), qs16), []want{{0, 6.5}, {16, -0.5}, {3, -1}, {19, 4}}},
		{Q5_0, cat(h(1), []byte{0x08, 0, 0x01, 0}, qs16), []want{{0, -1}, {16, 1}, {3, 0}, {19, -6}}},
		{Q5_1, cat(h(1), h(0.5), []byte{0x08, 0, 0x01, 0}, qs16), []want{{0, 15.5}, {16, 17.5}, {3, 16.5}, {19, 10.5}}},
		{Q4_K, q4k, []want{{0, 0}, {32, 0.5*3*9 - 0.25*2}, {66, 0}, {98, 0}, {129, 0}, {163, 0.5*39*12 - 0.25*17}, {1, 0}}},
		{Q6_K, q6k, []want{{0, 0.5 * 1 * (1 - 32)}, {32, 0.5 * 2 * (16 - 32)}, {64, 0.5 * -1 * (2 + 32 - 32)}, {96, 0.5 * 4 * (48 - 32)}, {1, 0.5 * 1 * -32}}},
	}
	for _, c := range cases {
		out := make([]float32, c.typ.BlockSize())
		if err := Dequantize(c.typ, out, c.blk); err != nil {
			t.Fatalf("%s: %v", c.typ, err)
		}
		for _, w := range c.want {
			if out[w.i] != w.v {
				t.Errorf("%s value %d = %g, want %g", c.typ, w.i, out[w.i], w.v)
			}
		}
	}
}

// TestDequantizeGoldenK2K3 checks the 2- and 3-bit K-quants' packing: the
// two-bit fields by shift, the Q3_K high-bit mask and its 6-bit scales.
func TestDequantizeGoldenK2K3(t *testing.T) {
	q2 := make([]byte, 84)
	q2[0] = 2 | 1<<4 // sub-block 0: scale 2, min 1
	q2[3] = 5 | 3<<4 // sub-block 3 (values 48-63, bytes 16-31 at shift 2)
	q2[16+0] = 3     // value 0 = 3
	q2[16+17] = 2 << 2
	copy(q2[80:], cat(h(0.5), h(0.25)))
	out := make([]float32, 256)
	if err := Dequantize(Q2_K, out, q2); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		i int
		v float32
	}{{0, 0.5*2*3 - 0.25}, {1, -0.25}, {49, 0.5*5*2 - 0.75}, {48, -0.75}, {16, 0}} {
		if out[w.i] != w.v {
			t.Errorf("Q2_K value %d = %g, want %g", w.i, out[w.i], w.v)
		}
	}

	q3 := make([]byte, 110)
	// Scales are 6 bits minus 32: low nibbles in bytes 0-7 (sub-blocks
	// 0-7 low halves, 8-15 high halves), top bits in bytes 8-11.
	q3[96+0] = 1
	q3[96+1] = 5 << 4
	q3[96+8] = 2      // top bits of sub-blocks 0, 4, 8, 12 at shifts 0, 2, 4, 6
	q3[96+9] = 2 << 2 // top bits of sub-blocks 1, 5, 9, 13: sub-block 5 gets 2
	copy(q3[108:], h(1))
	out3 := make([]float32, 256)
	if err := Dequantize(Q3_K, out3, q3); err != nil {
		t.Fatal(err)
	}
	sc := q3Scales(q3[96:108])
	// Sub-block 0: 1|2<<4 = 33 → 1. Sub-block 1: byte 1 low nibble 0 | (byte 9 bits 0-1 = 0) → -32.
	// Sub-block 5: j%4=1, j/4=1 → byte 9 bits 2-3 = 2 → (0|2<<4) = 32 → 0.
	// Sub-block 9: byte 1 high nibble 5 | byte 9 bits 4-5 = 0 → 5 - 32 = -27.
	for j, w := range map[int]int8{0: 1, 1: -32, 5: 0, 9: -27, 2: -32} {
		if sc[j] != w {
			t.Errorf("Q3_K scale %d = %d, want %d", j, sc[j], w)
		}
	}
	// No hmask bits: every quant is its two bits minus 4. Value 0: 0-4 → 1·-4.
	if out3[0] != -4 {
		t.Errorf("Q3_K value 0 = %g, want -4", out3[0])
	}
	q3[0] = 1          // value 0's high bit set (bit 0 of hmask[0])
	q3[32+0] = 3       // value 0 two bits 3
	q3[32+16] = 1 << 2 // value 48 (bytes 16-31, shift 2) = 1
	q3[16] = 1 << 1    // value 48's high bit: hmask[16] bit 1 (j=1)
	if err := Dequantize(Q3_K, out3, q3); err != nil {
		t.Fatal(err)
	}
	// Sub-block 3 (values 48-63) has scale byte 3 low nibble 0 | byte 11 bits 0-1 = 0 → -32.
	if out3[0] != 3 || out3[48] != -32*1 || out3[1] != -4 {
		t.Errorf("Q3_K values 0, 48, 1 = %g, %g, %g, want 3, -32, -4", out3[0], out3[48], out3[1])
	}
}

func randomRow(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
		if r.IntN(50) == 0 {
			x[i] *= 8 // outliers, as real weights have
		}
	}
	return x
}

// TestQuantizeRoundTrip quantises Gaussian rows with outliers and checks
// the relative RMS error of the decoded values against a stated bound per
// type (measured: Q8_0 0.010, Q6_K 0.028, Q5_K 0.049, Q5_1 0.050, Q5_0
// 0.079, Q4_K 0.098, Q4_1 0.105, Q4_0 0.153, Q3_K 0.207, Q2_K 0.336; the
// outliers make one block's scale coarse, as in real weights).
func TestQuantizeRoundTrip(t *testing.T) {
	bounds := map[TensorType]float64{
		Q8_0: 0.012, Q6_K: 0.035, Q5_0: 0.095, Q5_1: 0.06, Q5_K: 0.06,
		Q4_0: 0.18, Q4_1: 0.125, Q4_K: 0.12, Q3_K: 0.25, Q2_K: 0.40,
		F16: 0.001, BF16: 0.004, F32: 0,
	}
	r := rand.New(rand.NewPCG(1, 2))
	x := randomRow(r, 4096)
	for typ, bound := range bounds {
		n, _ := typ.RowSize(uint64(len(x)))
		b := make([]byte, n)
		if err := Quantize(typ, b, x); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		y := make([]float32, len(x))
		if err := Dequantize(typ, y, b); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		var se, sx float64
		for i := range x {
			d := float64(x[i] - y[i])
			se += d * d
			sx += float64(x[i]) * float64(x[i])
		}
		rel := math.Sqrt(se / sx)
		if rel > bound {
			t.Errorf("%s: relative RMS error %.4f > %.4f", typ, rel, bound)
		}
		t.Logf("%s: relative RMS error %.4f (%d bytes for %d values)", typ, rel, n, len(x))
	}
}

// TestQuantizeZeros: an all-zero row encodes to blocks that decode to
// zeros (no division by a zero scale).
func TestQuantizeZeros(t *testing.T) {
	for _, typ := range quantTypes {
		x := make([]float32, 256)
		n, _ := typ.RowSize(256)
		b := make([]byte, n)
		if err := Quantize(typ, b, x); err != nil {
			t.Fatal(err)
		}
		y := make([]float32, 256)
		if err := Dequantize(typ, y, b); err != nil {
			t.Fatal(err)
		}
		for i, v := range y {
			if v != 0 {
				t.Fatalf("%s value %d = %g, want 0", typ, i, v)
			}
		}
	}
}

// dotBound is the float32 rounding a Dot may add to the exact dot product
// of the dequantised row: n+4 units of 2⁻²⁴ (the relative rounding of one
// float32 operation) on the sum of the magnitudes of the terms it adds.
func dotBound(typ TensorType, row []byte, x []float32) float64 {
	c := codecs[typ]
	bs, tb := typ.BlockSize(), typ.BlockBytes()
	var q [QK]int8
	var a, b [maxSub]float32
	var s float64
	for i := range len(x) / bs {
		decode(typ, row[i*tb:(i+1)*tb], &q, &a, &b)
		for j := range bs {
			xv := math.Abs(float64(x[i*bs+j]))
			s += math.Abs(float64(a[j/c.sub])*float64(q[j]))*xv + math.Abs(float64(b[j/c.sub]))*xv
		}
	}
	return float64(len(x)+4) * 0x1p-24 * s
}

func checkDot(t *testing.T, typ TensorType, row []byte, x []float32) {
	t.Helper()
	w := make([]float32, len(x))
	if err := Dequantize(typ, w, row); err != nil {
		t.Fatal(err)
	}
	var ref float64
	for j := range w {
		ref += float64(w[j]) * float64(x[j])
	}
	got := Dot(typ, row, x)
	if bound := dotBound(typ, row, x); math.Abs(float64(got)-ref) > bound || math.IsNaN(float64(got)) != math.IsNaN(ref) {
		t.Fatalf("%s: Dot = %g, dequantised dot %g, difference %g > bound %g", typ, got, ref, math.Abs(float64(got)-ref), bound)
	}
}

// TestDotMatchesDequantized compares Dot with the float64 dot product of
// the dequantised weights, for quantised rows and for random block bytes.
func TestDotMatchesDequantized(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, typ := range quantTypes {
		for _, n := range []int{256, 1024, 4096} {
			w, x := randomRow(r, n), randomRow(r, n)
			sz, _ := typ.RowSize(uint64(n))
			row := make([]byte, sz)
			if err := Quantize(typ, row, w); err != nil {
				t.Fatal(err)
			}
			checkDot(t, typ, row, x)
			// Arbitrary bit patterns, with the float16 scales kept finite.
			for i := range row {
				row[i] = byte(r.Uint32())
			}
			sanitizeScales(typ, row)
			checkDot(t, typ, row, x)
		}
	}
}

// scaleOffsets are the byte offsets of each type's float16 fields in a block.
var scaleOffsets = map[TensorType][]int{
	Q4_0: {0}, Q4_1: {0, 2}, Q5_0: {0}, Q5_1: {0, 2}, Q8_0: {0},
	Q2_K: {80, 82}, Q3_K: {108}, Q4_K: {0, 2}, Q5_K: {0, 2}, Q6_K: {208},
}

func sanitizeScales(typ TensorType, row []byte) {
	tb := typ.BlockBytes()
	for i := 0; i < len(row); i += tb {
		for _, o := range scaleOffsets[typ] {
			row[i+o+1] &= 0x3b // exponent below 0x1f: finite, at most 2^-1·…
		}
	}
}

func TestCodecSizeErrors(t *testing.T) {
	if err := Dequantize(Q4_K, make([]float32, 256), make([]byte, 143)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short Q4_K block: %v, want ErrCorrupt", err)
	}
	if err := Dequantize(Q4_K, make([]float32, 128), make([]byte, 72)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("half a Q4_K block: %v, want ErrCorrupt", err)
	}
	if err := Quantize(Q6_K, make([]byte, 210), make([]float32, 200)); !errors.Is(err, ErrWrite) {
		t.Errorf("200 values as Q6_K: %v, want ErrWrite", err)
	}
	if err := Dequantize(Q8_K, make([]float32, 256), make([]byte, 292)); !errors.Is(err, ErrTensorType) {
		t.Errorf("Q8_K: %v, want ErrTensorType", err)
	}
	if err := Dequantize(TensorType(99), nil, nil); !errors.Is(err, ErrTensorType) {
		t.Errorf("type 99: %v, want ErrTensorType", err)
	}
}

func TestBFloat16(t *testing.T) {
	for _, c := range []struct {
		in   float32
		bits uint16
	}{
		{1, 0x3f80}, {-2, 0xc000}, {float32(math.Inf(1)), 0x7f80},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie: even stays
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie: odd rounds up
		{math.Float32frombits(0x3f808001), 0x3f81},
	} {
		if got := BFloat16Bits(c.in); got != c.bits {
			t.Errorf("BFloat16Bits(%g) = %#04x, want %#04x", c.in, got, c.bits)
		}
	}
	if b := BFloat16Bits(float32(math.NaN())); !math.IsNaN(float64(BFloat16(b))) {
		t.Errorf("NaN became %#04x", b)
	}
	if BFloat16(0x3f80) != 1 || BFloat16(0xbf00) != -0.5 {
		t.Error("BFloat16 decoding")
	}
}

// FuzzDequantize: any bytes of a whole number of blocks decode without
// panicking, and Dot agrees with the decoded row where it is finite.
func FuzzDequantize(f *testing.F) {
	f.Add(uint8(0), make([]byte, 18))
	f.Add(uint8(7), make([]byte, 144))
	f.Fuzz(func(t *testing.T, k uint8, b []byte) {
		typ := quantTypes[int(k)%len(quantTypes)]
		tb := typ.BlockBytes()
		nb := len(b) / tb
		if nb == 0 || nb > 64 {
			return
		}
		row := b[:nb*tb]
		n := nb * typ.BlockSize()
		out := make([]float32, n)
		if err := Dequantize(typ, out, row); err != nil {
			t.Fatal(err)
		}
		if err := Dequantize(typ, out[1:], row); err == nil {
			t.Fatal("wrong length accepted")
		}
		sanitizeScales(typ, row)
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i%7) - 3
		}
		checkDot(t, typ, row, x)
	})
}

// BenchmarkDot measures one 4096-value row's dot product per type (the
// engine's inner loop for quantised matrices); ns/op ÷ 4096 is the cost
// per weight.
func BenchmarkDot(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	w, x := randomRow(r, 4096), randomRow(r, 4096)
	for _, typ := range quantTypes {
		sz, _ := typ.RowSize(4096)
		row := make([]byte, sz)
		if err := Quantize(typ, row, w); err != nil {
			b.Fatal(err)
		}
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(sz))
			for b.Loop() {
				Dot(typ, row, x)
			}
		})
	}
}

// TestDotDoesNotAllocate: Dot and Dequantize run in the token loop, which
// must not allocate.
func TestDotDoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	x := randomRow(r, 512)
	out := make([]float32, 512)
	for _, typ := range quantTypes {
		sz, _ := typ.RowSize(512)
		row := make([]byte, sz)
		if err := Quantize(typ, row, x); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(10, func() { Dot(typ, row, x) }); n != 0 {
			t.Errorf("%s: Dot allocates %v times", typ, n)
		}
		if n := testing.AllocsPerRun(10, func() { _ = Dequantize(typ, out, row) }); n != 0 {
			t.Errorf("%s: Dequantize allocates %v times", typ, n)
		}
	}
}

// TestFusedKernelsMatchGeneric: the fused Q4_K and Q6_K kernels give
// exactly the generic decoder's sums, on quantised rows and on arbitrary
// block bytes.
func TestFusedKernelsMatchGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, typ := range []TensorType{Q4_K, Q6_K} {
		for _, n := range []int{256, 2048} {
			w, x := randomRow(r, n), randomRow(r, n)
			sz, _ := typ.RowSize(uint64(n))
			row := make([]byte, sz)
			if err := Quantize(typ, row, w); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if a, b := Dot(typ, row, x), dotGeneric(typ, row, x); a != b {
					t.Fatalf("%s: fused %v, generic %v", typ, a, b)
				}
				for i := range row {
					row[i] = byte(r.Uint32())
				}
				sanitizeScales(typ, row)
			}
		}
	}
}

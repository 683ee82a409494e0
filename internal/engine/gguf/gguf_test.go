package gguf_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// sample builds a small file with every metadata type and two tensors.
func sample(t testing.TB) []byte {
	t.Helper()
	w := &gguf.Writer{}
	w.Set("general.architecture", "llama")
	w.Set("u8", uint8(7))
	w.Set("i8", int8(-7))
	w.Set("u16", uint16(700))
	w.Set("i16", int16(-700))
	w.Set("u32", uint32(70000))
	w.Set("i32", int32(-70000))
	w.Set("f32", float32(1.5))
	w.Set("bool", true)
	w.Set("u64", uint64(1)<<40)
	w.Set("i64", int64(-1)<<40)
	w.Set("f64", 2.25)
	w.Set("strings", []string{"a", "▁b", ""})
	w.Set("floats", []float32{1, -2, 3.5})
	w.Set("nested", gguf.Array{Type: gguf.TypeArray, Values: []gguf.Array{
		{Type: gguf.TypeInt32, Values: []int32{1, 2}},
		{Type: gguf.TypeBool, Values: []bool{true, false}},
	}})
	f32 := make([]byte, 4*6)
	for i := range 6 {
		binary.LittleEndian.PutUint32(f32[4*i:], math.Float32bits(float32(i)))
	}
	if err := w.AddTensor("a.weight", gguf.F32, []uint64{3, 2}, f32); err != nil {
		t.Fatal(err)
	}
	vals := make([]float32, 64)
	for i := range vals {
		vals[i] = float32(i) - 31.5
	}
	q := make([]byte, 2*gguf.Q8_0BlockBytes)
	if err := gguf.QuantizeQ8_0(q, vals); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("b.weight", gguf.Q8_0, []uint64{32, 2}, q); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	b := sample(t)
	f, err := gguf.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 || f.Alignment != 32 || f.DataOffset%32 != 0 {
		t.Fatalf("version %d alignment %d data offset %d", f.Version, f.Alignment, f.DataOffset)
	}
	want := map[string]any{
		"general.architecture": "llama", "u8": uint8(7), "i8": int8(-7), "u16": uint16(700),
		"i16": int16(-700), "u32": uint32(70000), "i32": int32(-70000), "f32": float32(1.5),
		"bool": true, "u64": uint64(1) << 40, "i64": int64(-1) << 40, "f64": 2.25,
		"strings": gguf.Array{Type: gguf.TypeString, Values: []string{"a", "▁b", ""}},
		"floats":  gguf.Array{Type: gguf.TypeFloat32, Values: []float32{1, -2, 3.5}},
		"nested": gguf.Array{Type: gguf.TypeArray, Values: []gguf.Array{
			{Type: gguf.TypeInt32, Values: []int32{1, 2}},
			{Type: gguf.TypeBool, Values: []bool{true, false}},
		}},
	}
	if len(f.KVs) != len(want) {
		t.Fatalf("%d kvs, want %d", len(f.KVs), len(want))
	}
	for k, v := range want {
		got, ok := f.Get(k)
		if !ok || !reflect.DeepEqual(got, v) {
			t.Errorf("%s = %#v, want %#v", k, got, v)
		}
	}
	if n, ok := f.Uint("i32"); ok {
		t.Errorf("Uint of a negative int32 = %d, ok", n)
	}
	if n, ok := f.Uint("u16"); !ok || n != 700 {
		t.Errorf("Uint(u16) = %d, %v", n, ok)
	}
	a, ok := f.Tensor("a.weight")
	if !ok || a.Type != gguf.F32 || !reflect.DeepEqual(a.Dims, []uint64{3, 2}) || a.Size != 24 {
		t.Fatalf("a.weight = %+v", a)
	}
	if got := math.Float32frombits(binary.LittleEndian.Uint32(f.TensorData(a)[20:])); got != 5 {
		t.Errorf("a.weight[5] = %v", got)
	}
	bq, _ := f.Tensor("b.weight")
	vals := make([]float32, 64)
	if err := gguf.DequantizeQ8_0(vals, f.TensorData(bq)); err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if d := math.Abs(float64(v - (float32(i) - 31.5))); d > 0.13 {
			t.Errorf("Q8_0 value %d = %v, want about %v", i, v, float32(i)-31.5)
		}
	}
}

func TestTruncatedEverywhere(t *testing.T) {
	b := sample(t)
	f, err := gguf.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	// The padding after the last tensor is optional; everything before
	// its end is not.
	var end uint64
	for _, ti := range f.Tensors {
		end = max(end, f.DataOffset+ti.Offset+ti.Size)
	}
	for n := 0; n < len(b); n++ {
		_, err := gguf.Parse(b[:n])
		if uint64(n) >= end {
			if err != nil {
				t.Fatalf("cut at %d, after the last tensor ending at %d: %v", n, end, err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("cut at %d of %d parsed", n, len(b))
		}
		if n >= 4 && !errors.Is(err, gguf.ErrTruncated) {
			t.Fatalf("cut at %d: %v, want ErrTruncated", n, err)
		}
	}
}

func TestCorruptHeaders(t *testing.T) {
	base := sample(t)
	f, err := gguf.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	// Offsets of fields in the first tensor descriptor.
	tensorStart := bytes.Index(base, []byte("a.weight")) - 8
	cases := []struct {
		name string
		edit func(b []byte)
		want error
	}{
		{"magic", func(b []byte) { copy(b, "GGUG") }, gguf.ErrNotGGUF},
		{"version 1", func(b []byte) { le.PutUint32(b[4:], 1) }, gguf.ErrVersion},
		{"big-endian version", func(b []byte) { le.PutUint32(b[4:], 3<<24) }, gguf.ErrVersion},
		{"huge tensor count", func(b []byte) { le.PutUint64(b[8:], 1<<60) }, gguf.ErrTruncated},
		{"huge kv count", func(b []byte) { le.PutUint64(b[16:], 1<<60) }, gguf.ErrTruncated},
		{"huge key length", func(b []byte) { le.PutUint64(b[24:], 1<<62) }, gguf.ErrCorrupt},
		{"bad value type", func(b []byte) { le.PutUint32(b[24+8+len("general.architecture"):], 99) }, gguf.ErrCorrupt},
		{"zero dims", func(b []byte) { le.PutUint32(b[tensorStart+8+8:], 0) }, gguf.ErrCorrupt},
		{"five dims", func(b []byte) { le.PutUint32(b[tensorStart+8+8:], 5) }, gguf.ErrCorrupt},
		{"zero dimension", func(b []byte) { le.PutUint64(b[tensorStart+8+8+4:], 0) }, gguf.ErrCorrupt},
		{"dimension too big for the file", func(b []byte) { le.PutUint64(b[tensorStart+8+8+4:], 1<<30) }, gguf.ErrTruncated},
		{"unknown tensor type", func(b []byte) { le.PutUint32(b[tensorStart+8+8+4+16:], 77) }, gguf.ErrTensorType},
		{"misaligned offset", func(b []byte) { le.PutUint64(b[tensorStart+8+8+4+16+4:], 3) }, gguf.ErrCorrupt},
		{"offset past the end", func(b []byte) { le.PutUint64(b[tensorStart+8+8+4+16+4:], 1<<20) }, gguf.ErrTruncated},
		{"overlapping tensors", func(b []byte) {
			i := bytes.Index(b, []byte("b.weight")) + 8 + 4 + 16 + 4
			le.PutUint64(b[i:], 0)
		}, gguf.ErrCorrupt},
		{"duplicate tensor", func(b []byte) { copy(b[bytes.Index(b, []byte("b.weight")):], "a") }, gguf.ErrCorrupt},
	}
	_ = f
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(base)
			c.edit(b)
			_, err := gguf.Parse(b)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestAlignment(t *testing.T) {
	w := &gguf.Writer{Alignment: 64}
	w.Set("general.name", "x")
	if err := w.AddTensor("t", gguf.F32, []uint64{1}, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("u", gguf.F16, []uint64{2}, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := f.Tensor("u")
	if f.Alignment != 64 || f.DataOffset%64 != 0 || u.Offset != 64 {
		t.Fatalf("alignment %d data offset %d u offset %d", f.Alignment, f.DataOffset, u.Offset)
	}
	for _, bad := range []uint32{0, 3, 1 << 20} {
		b := bytes.Clone(buf.Bytes())
		i := bytes.Index(b, []byte("general.alignment")) + len("general.alignment") + 4
		binary.LittleEndian.PutUint32(b[i:], bad)
		if _, err := gguf.Parse(b); !errors.Is(err, gguf.ErrCorrupt) {
			t.Errorf("alignment %d: %v", bad, err)
		}
	}
}

func TestWriterRejects(t *testing.T) {
	w := &gguf.Writer{}
	if err := w.AddTensor("t", gguf.F32, []uint64{2}, make([]byte, 4)); !errors.Is(err, gguf.ErrWrite) {
		t.Errorf("short data: %v", err)
	}
	if err := w.AddTensor("q", gguf.Q8_0, []uint64{16}, make([]byte, 17)); !errors.Is(err, gguf.ErrWrite) {
		t.Errorf("partial block: %v", err)
	}
	w.Set("bad", struct{}{})
	if _, err := w.WriteTo(&bytes.Buffer{}); !errors.Is(err, gguf.ErrWrite) {
		t.Errorf("bad value: %v", err)
	}
}

func TestFloat16(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := gguf.Float16(uint16(h))
		if math.IsNaN(float64(f)) {
			if g := gguf.Float16Bits(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, g)
			}
			continue
		}
		if g := gguf.Float16Bits(f); g != uint16(h) {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, g)
		}
	}
	cases := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, {1e9, 0x7c00},
		{5.960464477539063e-08, 0x0001}, {2.9e-08, 0x0000}, {3.0e-08, 0x0001},
		{1 + 1.0/2048, 0x3c00}, // tie rounds to even (down)
		{1 + 3.0/2048, 0x3c02}, // tie rounds to even (up)
		{float32(math.Inf(-1)), 0xfc00},
	}
	for _, c := range cases {
		if got := gguf.Float16Bits(c.in); got != c.want {
			t.Errorf("Float16Bits(%v) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
}

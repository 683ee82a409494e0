package gguf_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// survives a write/parse round trip with the same metadata, tensor
// descriptors and tensor bytes.
func FuzzParse(f *testing.F) {
	s := sample(f)
	f.Add(s)
	f.Add(s[:40])
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := gguf.Parse(b)
		if err != nil {
			return
		}
		w := &gguf.Writer{Alignment: p.Alignment}
		for _, kv := range p.KVs {
			w.Set(kv.Key, kv.Value)
		}
		for _, ti := range p.Tensors {
			if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, p.TensorData(ti)); err != nil {
				t.Fatalf("re-adding %q: %v", ti.Name, err)
			}
		}
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatalf("re-writing: %v", err)
		}
		q, err := gguf.Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("re-parsing: %v", err)
		}
		if len(q.KVs) != len(p.KVs) || len(q.Tensors) != len(p.Tensors) {
			t.Fatalf("round trip changed counts")
		}
		for _, kv := range p.KVs {
			v, ok := q.Get(kv.Key)
			if !ok || !equalValue(v, kv.Value) {
				t.Fatalf("round trip changed %q: %#v -> %#v", kv.Key, kv.Value, v)
			}
		}
		for _, ti := range p.Tensors {
			u, ok := q.Tensor(ti.Name)
			if !ok || u.Type != ti.Type || !reflect.DeepEqual(u.Dims, ti.Dims) || !bytes.Equal(q.TensorData(u), p.TensorData(ti)) {
				t.Fatalf("round trip changed tensor %q", ti.Name)
			}
		}
	})
}

// equalValue compares metadata values, treating NaNs as equal to
// themselves bit for bit (reflect.DeepEqual says NaN != NaN).
func equalValue(a, b any) bool {
	var ba, bb bytes.Buffer
	wa, wb := &gguf.Writer{}, &gguf.Writer{}
	wa.Set("k", a)
	wb.Set("k", b)
	if _, err := wa.WriteTo(&ba); err != nil {
		return false
	}
	if _, err := wb.WriteTo(&bb); err != nil {
		return false
	}
	return bytes.Equal(ba.Bytes(), bb.Bytes())
}

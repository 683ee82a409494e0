package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Writer builds a GGUF version 3 file: metadata in the order it was set,
// then tensor descriptors and data in the order tensors were added, each
// tensor aligned to Alignment.
type Writer struct {
	// Alignment of tensor data; 0 means DefaultAlignment. A value other
	// than the default is recorded as general.alignment.
	Alignment uint64

	kvs     []KV
	tensors []writerTensor
}

type writerTensor struct {
	info TensorInfo
	data []byte
}

// ErrWrite means a value or tensor handed to the Writer cannot be encoded.
var ErrWrite = errors.New("gguf: cannot encode")

// Set records a metadata entry, replacing an earlier one with the same key.
// v is a scalar of a GGUF type (uint8 … float64, bool, string), an Array,
// or a typed slice of a scalar type, which is stored as an array.
func (w *Writer) Set(key string, v any) {
	if a, ok := sliceArray(v); ok {
		v = a
	}
	for i := range w.kvs {
		if w.kvs[i].Key == key {
			w.kvs[i].Value = v
			return
		}
	}
	w.kvs = append(w.kvs, KV{Key: key, Value: v})
}

// AddTensor appends a tensor. dims are GGML order (innermost first); data
// must be exactly the size that type and dims call for. data is not copied.
func (w *Writer) AddTensor(name string, typ TensorType, dims []uint64, data []byte) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: tensor name %q must be 1 to %d bytes", ErrWrite, name, maxNameLen)
	}
	for _, t := range w.tensors {
		if t.info.Name == name {
			return fmt.Errorf("%w: duplicate tensor %q", ErrWrite, name)
		}
	}
	if len(dims) == 0 || len(dims) > maxDims {
		return fmt.Errorf("%w: tensor %q has %d dimensions", ErrWrite, name, len(dims))
	}
	n := uint64(1)
	for _, d := range dims {
		if d == 0 {
			return fmt.Errorf("%w: tensor %q has a zero dimension", ErrWrite, name)
		}
		n *= d
	}
	if typ.BlockSize() > 0 && dims[0]%uint64(typ.BlockSize()) != 0 {
		return fmt.Errorf("%w: tensor %q rows of %d are not whole %s blocks", ErrWrite, name, dims[0], typ)
	}
	size, err := typ.RowSize(n)
	if err != nil {
		return fmt.Errorf("%w: tensor %q: %w", ErrWrite, name, err)
	}
	if uint64(len(data)) != size {
		return fmt.Errorf("%w: tensor %q has %d bytes, its type and shape need %d", ErrWrite, name, len(data), size)
	}
	w.tensors = append(w.tensors, writerTensor{
		info: TensorInfo{Name: name, Dims: append([]uint64(nil), dims...), Type: typ, Size: size},
		data: data,
	})
	return nil
}

// WriteTo writes the file to out.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	align := w.Alignment
	if align == 0 {
		align = DefaultAlignment
	}
	if align&(align-1) != 0 || align > 1<<16 {
		return 0, fmt.Errorf("%w: alignment %d is not a power of two up to 65536", ErrWrite, align)
	}
	if align != DefaultAlignment {
		w.Set("general.alignment", uint32(align))
	}
	cw := &countWriter{w: bufio.NewWriterSize(out, 1<<20)}
	e := &encoder{w: cw}
	e.bytes([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		e.str(kv.Key)
		if err := e.value(kv.Value, true); err != nil {
			return cw.n, fmt.Errorf("metadata %q: %w", kv.Key, err)
		}
	}
	var off uint64
	for i := range w.tensors {
		t := &w.tensors[i].info
		t.Offset = off
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(t.Offset)
		off = alignUp(off+t.Size, align)
	}
	e.pad(align)
	for _, t := range w.tensors {
		e.bytes(t.data)
		e.pad(align)
	}
	if e.err != nil {
		return cw.n, e.err
	}
	if err := cw.w.(*bufio.Writer).Flush(); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type encoder struct {
	w   *countWriter
	err error
	buf [8]byte
}

func (e *encoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *encoder) u8(v uint8) { e.bytes([]byte{v}) }
func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.bytes(e.buf[:2])
}
func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.bytes(e.buf[:4])
}
func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.bytes(e.buf[:8])
}
func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.bytes([]byte(s))
}

func (e *encoder) pad(align uint64) {
	n := uint64(e.w.n)
	if p := alignUp(n, align) - n; p > 0 {
		e.bytes(make([]byte, p))
	}
}

// value encodes v; withType writes its type tag first (array elements
// carry no tag of their own).
func (e *encoder) value(v any, withType bool) error {
	t, ok := typeOf(v)
	if !ok {
		return fmt.Errorf("%w: value of Go type %T", ErrWrite, v)
	}
	if withType {
		e.u32(uint32(t))
	}
	switch x := v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		if x {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case Array:
		return e.array(x)
	}
	return nil
}

func (e *encoder) array(a Array) error {
	if t, ok := elemTypeOf(a.Values); !ok || t != a.Type {
		return fmt.Errorf("%w: array of type %d holds %T", ErrWrite, a.Type, a.Values)
	}
	e.u32(uint32(a.Type))
	e.u64(uint64(a.Len()))
	switch v := a.Values.(type) {
	case []uint8:
		e.bytes(v)
	case []Array:
		for _, x := range v {
			if err := e.array(x); err != nil {
				return err
			}
		}
	default:
		forEach(v, func(x any) { _ = e.value(x, false) })
	}
	return nil
}

// forEach calls f with each element of a typed scalar slice.
func forEach(s any, f func(any)) {
	switch v := s.(type) {
	case []int8:
		for _, x := range v {
			f(x)
		}
	case []uint16:
		for _, x := range v {
			f(x)
		}
	case []int16:
		for _, x := range v {
			f(x)
		}
	case []uint32:
		for _, x := range v {
			f(x)
		}
	case []int32:
		for _, x := range v {
			f(x)
		}
	case []float32:
		for _, x := range v {
			f(x)
		}
	case []bool:
		for _, x := range v {
			f(x)
		}
	case []string:
		for _, x := range v {
			f(x)
		}
	case []uint64:
		for _, x := range v {
			f(x)
		}
	case []int64:
		for _, x := range v {
			f(x)
		}
	case []float64:
		for _, x := range v {
			f(x)
		}
	}
}

func typeOf(v any) (ValueType, bool) {
	switch v.(type) {
	case uint8:
		return TypeUint8, true
	case int8:
		return TypeInt8, true
	case uint16:
		return TypeUint16, true
	case int16:
		return TypeInt16, true
	case uint32:
		return TypeUint32, true
	case int32:
		return TypeInt32, true
	case float32:
		return TypeFloat32, true
	case bool:
		return TypeBool, true
	case string:
		return TypeString, true
	case uint64:
		return TypeUint64, true
	case int64:
		return TypeInt64, true
	case float64:
		return TypeFloat64, true
	case Array:
		return TypeArray, true
	}
	return 0, false
}

func elemTypeOf(s any) (ValueType, bool) {
	switch s.(type) {
	case []uint8:
		return TypeUint8, true
	case []int8:
		return TypeInt8, true
	case []uint16:
		return TypeUint16, true
	case []int16:
		return TypeInt16, true
	case []uint32:
		return TypeUint32, true
	case []int32:
		return TypeInt32, true
	case []float32:
		return TypeFloat32, true
	case []bool:
		return TypeBool, true
	case []string:
		return TypeString, true
	case []uint64:
		return TypeUint64, true
	case []int64:
		return TypeInt64, true
	case []float64:
		return TypeFloat64, true
	case []Array:
		return TypeArray, true
	}
	return 0, false
}

// sliceArray wraps a typed slice as an Array.
func sliceArray(v any) (Array, bool) {
	t, ok := elemTypeOf(v)
	if !ok {
		return Array{}, false
	}
	return Array{Type: t, Values: v}, true
}

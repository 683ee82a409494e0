// Package gguf reads and writes GGUF files, the model container used by
// llama.cpp and Ollama: a header, typed metadata key/value pairs, tensor
// descriptors and aligned tensor data.
//
// The parser works on a byte slice (usually a memory-mapped file) and
// validates every count, length, dimension and offset against the slice
// before anything is used, so a truncated or corrupt file yields an error
// (ErrTruncated, ErrCorrupt, ErrNotGGUF, ErrVersion, ErrTensorType), never a
// panic. It knows nothing about model architectures; package engine maps the
// tensors of a LLaMA model onto its weights. Only little-endian files of
// format version 2 and 3 are read; version 3 is written.
//
// Imported by package engine and its tests; it has no dependencies outside
// the standard library.
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"unicode/utf8"
)

// Errors returned by Parse. They are wrapped with details; test with errors.Is.
var (
	// ErrNotGGUF means the data does not start with the GGUF magic.
	ErrNotGGUF = errors.New("gguf: not a GGUF file")
	// ErrTruncated means the file ends before what its header describes.
	ErrTruncated = errors.New("gguf: truncated file")
	// ErrCorrupt means a header field is invalid or inconsistent.
	ErrCorrupt = errors.New("gguf: corrupt header")
	// ErrVersion means the format version is not 2 or 3.
	ErrVersion = errors.New("gguf: unsupported version")
	// ErrTensorType means a tensor uses a type whose layout this package
	// does not know.
	ErrTensorType = errors.New("gguf: unknown tensor type")
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// Version is the format version this package writes.
const Version = 3

// DefaultAlignment is the tensor data alignment when general.alignment is absent.
const DefaultAlignment = 32

// Limits that keep a hostile header from asking for absurd allocations.
const (
	maxKeyLen     = 1 << 16 // bytes in a metadata key
	maxStringLen  = 1 << 30 // bytes in a metadata string
	maxNameLen    = 64      // bytes in a tensor name (GGML_MAX_NAME)
	maxDims       = 4       // GGML_MAX_DIMS
	maxArrayDepth = 4       // nesting of arrays of arrays
	maxElements   = 1 << 50 // elements in one tensor
)

// ValueType is the type tag of a metadata value.
type ValueType uint32

// Metadata value types, as numbered by the GGUF specification.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

// fixedSize is the encoded size of a scalar value type, 0 for string and array.
func (t ValueType) fixedSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

func (t ValueType) valid() bool { return t <= TypeFloat64 }

// minSize is the fewest bytes a value of type t can occupy.
func (t ValueType) minSize() int {
	switch t {
	case TypeString:
		return 8
	case TypeArray:
		return 12
	}
	return t.fixedSize()
}

// Array is a metadata array value. Values is a typed slice: []uint8,
// []int8, []uint16, []int16, []uint32, []int32, []float32, []bool,
// []string, []uint64, []int64, []float64, or []Array for arrays of arrays.
type Array struct {
	Type   ValueType
	Values any
}

// Len is the number of elements in the array.
func (a Array) Len() int {
	switch v := a.Values.(type) {
	case []uint8:
		return len(v)
	case []int8:
		return len(v)
	case []uint16:
		return len(v)
	case []int16:
		return len(v)
	case []uint32:
		return len(v)
	case []int32:
		return len(v)
	case []float32:
		return len(v)
	case []bool:
		return len(v)
	case []string:
		return len(v)
	case []uint64:
		return len(v)
	case []int64:
		return len(v)
	case []float64:
		return len(v)
	case []Array:
		return len(v)
	}
	return 0
}

// KV is one metadata entry. Value holds a Go value of the matching type:
// uint8, int8, uint16, int16, uint32, int32, float32, bool, string, uint64,
// int64, float64 or Array.
type KV struct {
	Key   string
	Value any
}

// TensorType is a GGML tensor element type.
type TensorType uint32

// Tensor types this package can size. Dequantize, Quantize and Dot
// implement F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q2_K-Q6_K
// (see codec.go); the others are recognised so that such files parse and
// can be reported as unsupported rather than corrupt.
const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q4_0 TensorType = 2
	Q4_1 TensorType = 3
	Q5_0 TensorType = 6
	Q5_1 TensorType = 7
	Q8_0 TensorType = 8
	Q8_1 TensorType = 9
	Q2_K TensorType = 10
	Q3_K TensorType = 11
	Q4_K TensorType = 12
	Q5_K TensorType = 13
	Q6_K TensorType = 14
	Q8_K TensorType = 15
	I8   TensorType = 24
	I16  TensorType = 25
	I32  TensorType = 26
	I64  TensorType = 27
	F64  TensorType = 28
	BF16 TensorType = 30
)

type typeInfo struct {
	name      string
	blockSize uint64 // elements per block
	typeSize  uint64 // bytes per block
}

var tensorTypes = map[TensorType]typeInfo{
	F32: {"F32", 1, 4}, F16: {"F16", 1, 2}, BF16: {"BF16", 1, 2},
	Q4_0: {"Q4_0", 32, 18}, Q4_1: {"Q4_1", 32, 20},
	Q5_0: {"Q5_0", 32, 22}, Q5_1: {"Q5_1", 32, 24},
	Q8_0: {"Q8_0", 32, 34}, Q8_1: {"Q8_1", 32, 36},
	Q2_K: {"Q2_K", 256, 84}, Q3_K: {"Q3_K", 256, 110}, Q4_K: {"Q4_K", 256, 144},
	Q5_K: {"Q5_K", 256, 176}, Q6_K: {"Q6_K", 256, 210}, Q8_K: {"Q8_K", 256, 292},
	I8: {"I8", 1, 1}, I16: {"I16", 1, 2}, I32: {"I32", 1, 4}, I64: {"I64", 1, 8}, F64: {"F64", 1, 8},
}

// String is the GGML name of the type ("F32", "Q8_0", ...).
func (t TensorType) String() string {
	if ti, ok := tensorTypes[t]; ok {
		return ti.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is the number of elements in one quantisation block (1 for
// plain types), or 0 for an unknown type.
func (t TensorType) BlockSize() int { return int(tensorTypes[t].blockSize) }

// RowSize is the number of bytes n elements of type t occupy, or an error
// when the type is unknown or n is not a whole number of blocks.
func (t TensorType) RowSize(n uint64) (uint64, error) {
	ti, ok := tensorTypes[t]
	if !ok {
		return 0, fmt.Errorf("%w %d", ErrTensorType, uint32(t))
	}
	if n%ti.blockSize != 0 {
		return 0, fmt.Errorf("%w: %d elements of %s is not a whole number of %d-element blocks", ErrCorrupt, n, ti.name, ti.blockSize)
	}
	return n / ti.blockSize * ti.typeSize, nil
}

// TensorInfo describes one tensor. Dims are GGML order: Dims[0] is the
// innermost (contiguous) dimension, so a row-major matrix with r rows of c
// columns has Dims {c, r}.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   TensorType
	Offset uint64 // from the start of the data section
	Size   uint64 // bytes
}

// Elements is the product of the dimensions.
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// File is a parsed GGUF file. Tensor data is not copied: TensorData returns
// sub-slices of the parsed bytes.
type File struct {
	Version    uint32
	KVs        []KV
	Tensors    []TensorInfo
	Alignment  uint64
	DataOffset uint64 // absolute offset of the data section

	data   []byte
	kvs    map[string]int
	byName map[string]int
}

// Get returns the metadata value for key.
func (f *File) Get(key string) (any, bool) {
	i, ok := f.kvs[key]
	if !ok {
		return nil, false
	}
	return f.KVs[i].Value, true
}

// String returns a string metadata value; ok is false when the key is
// missing or not a string.
func (f *File) String(key string) (string, bool) {
	v, _ := f.Get(key)
	s, ok := v.(string)
	return s, ok
}

// Uint returns an integer metadata value of any integer type as uint64; ok
// is false when the key is missing, not an integer, or negative.
func (f *File) Uint(key string) (uint64, bool) {
	v, _ := f.Get(key)
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// Float returns a float32 or float64 metadata value as float64.
func (f *File) Float(key string) (float64, bool) {
	v, _ := f.Get(key)
	switch x := v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// Bool returns a boolean metadata value.
func (f *File) Bool(key string) (bool, bool) {
	v, _ := f.Get(key)
	b, ok := v.(bool)
	return b, ok
}

// Array returns an array metadata value.
func (f *File) Array(key string) (Array, bool) {
	v, _ := f.Get(key)
	a, ok := v.(Array)
	return a, ok
}

// Tensor returns the descriptor of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// TensorData returns the bytes of t, a descriptor from f. Parse has checked
// that they lie inside the file.
func (f *File) TensorData(t TensorInfo) []byte {
	start := f.DataOffset + t.Offset
	return f.data[start : start+t.Size : start+t.Size]
}

// decoder reads little-endian values from b, failing with ErrTruncated
// instead of reading past the end.
type decoder struct {
	b   []byte
	off uint64
}

func (d *decoder) remaining() uint64 { return uint64(len(d.b)) - d.off }

func (d *decoder) take(n uint64, what string) ([]byte, error) {
	if n > d.remaining() {
		return nil, fmt.Errorf("%w: %s needs %d bytes at offset %d, %d left", ErrTruncated, what, n, d.off, d.remaining())
	}
	s := d.b[d.off : d.off+n]
	d.off += n
	return s, nil
}

func (d *decoder) u8(what string) (uint8, error) {
	s, err := d.take(1, what)
	if err != nil {
		return 0, err
	}
	return s[0], nil
}

func (d *decoder) u16(what string) (uint16, error) {
	s, err := d.take(2, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(s), nil
}

func (d *decoder) u32(what string) (uint32, error) {
	s, err := d.take(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(s), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	s, err := d.take(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(s), nil
}

func (d *decoder) str(max uint64, what string) (string, error) {
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > max {
		return "", fmt.Errorf("%w: %s length %d exceeds %d", ErrCorrupt, what, n, max)
	}
	s, err := d.take(n, what)
	if err != nil {
		return "", err
	}
	return string(s), nil
}

// Parse parses a GGUF file held in b. The returned File refers to b for
// tensor data; b must stay unchanged while the File is used.
func Parse(b []byte) (*File, error) {
	d := &decoder{b: b}
	magic, err := d.take(4, "magic")
	if err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, fmt.Errorf("%w: magic %q", ErrNotGGUF, magic)
	}
	version, err := d.u32("version")
	if err != nil {
		return nil, err
	}
	if version != 2 && version != 3 {
		return nil, fmt.Errorf("%w %d (want 2 or 3; big-endian files are not supported)", ErrVersion, version)
	}
	nTensors, err := d.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := d.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// Each entry needs a minimum number of bytes; reject counts the file
	// cannot hold before allocating for them.
	if nKV > d.remaining()/13 {
		return nil, fmt.Errorf("%w: %d metadata entries cannot fit in %d bytes", ErrTruncated, nKV, d.remaining())
	}
	f := &File{Version: version, data: b, kvs: make(map[string]int, nKV), Alignment: DefaultAlignment}
	f.KVs = make([]KV, 0, nKV)
	for i := uint64(0); i < nKV; i++ {
		key, err := d.str(maxKeyLen, "metadata key")
		if err != nil {
			return nil, fmt.Errorf("metadata entry %d: %w", i, err)
		}
		if !utf8.ValidString(key) || key == "" {
			return nil, fmt.Errorf("%w: metadata key %q is not valid UTF-8 text", ErrCorrupt, key)
		}
		if _, dup := f.kvs[key]; dup {
			return nil, fmt.Errorf("%w: duplicate metadata key %q", ErrCorrupt, key)
		}
		t, err := d.u32("value type of " + key)
		if err != nil {
			return nil, err
		}
		v, err := d.value(ValueType(t), 0, key)
		if err != nil {
			return nil, err
		}
		f.kvs[key] = len(f.KVs)
		f.KVs = append(f.KVs, KV{Key: key, Value: v})
	}
	if v, ok := f.Get("general.alignment"); ok {
		a, isU32 := v.(uint32)
		if !isU32 || a == 0 || a&(a-1) != 0 || a > 1<<16 {
			return nil, fmt.Errorf("%w: general.alignment %v must be a uint32 power of two up to 65536", ErrCorrupt, v)
		}
		f.Alignment = uint64(a)
	}

	if nTensors > d.remaining()/32 {
		return nil, fmt.Errorf("%w: %d tensor descriptors cannot fit in %d bytes", ErrTruncated, nTensors, d.remaining())
	}
	f.Tensors = make([]TensorInfo, 0, nTensors)
	f.byName = make(map[string]int, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		t, err := d.tensorInfo()
		if err != nil {
			return nil, fmt.Errorf("tensor %d: %w", i, err)
		}
		if _, dup := f.byName[t.Name]; dup {
			return nil, fmt.Errorf("%w: duplicate tensor %q", ErrCorrupt, t.Name)
		}
		if t.Offset%f.Alignment != 0 {
			return nil, fmt.Errorf("%w: tensor %q offset %d is not a multiple of the alignment %d", ErrCorrupt, t.Name, t.Offset, f.Alignment)
		}
		f.byName[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}

	// The data section starts at the next multiple of the alignment. A file
	// without tensors may end right after its descriptors.
	f.DataOffset = alignUp(d.off, f.Alignment)
	if len(f.Tensors) == 0 {
		if f.DataOffset > uint64(len(b)) {
			f.DataOffset = uint64(len(b))
		}
		return f, nil
	}
	if f.DataOffset > uint64(len(b)) {
		return nil, fmt.Errorf("%w: data section at %d is past the end of the %d-byte file", ErrTruncated, f.DataOffset, len(b))
	}
	dataLen := uint64(len(b)) - f.DataOffset
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	var end uint64
	for _, i := range order {
		t := f.Tensors[i]
		if t.Offset < end {
			return nil, fmt.Errorf("%w: tensor %q at %d overlaps the previous tensor ending at %d", ErrCorrupt, t.Name, t.Offset, end)
		}
		if t.Offset > dataLen || t.Size > dataLen-t.Offset {
			return nil, fmt.Errorf("%w: tensor %q needs bytes %d..%d of a %d-byte data section", ErrTruncated, t.Name, t.Offset, t.Offset+t.Size, dataLen)
		}
		end = t.Offset + t.Size
	}
	return f, nil
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

func (d *decoder) tensorInfo() (TensorInfo, error) {
	var t TensorInfo
	name, err := d.str(maxNameLen, "tensor name")
	if err != nil {
		return t, err
	}
	if name == "" || !utf8.ValidString(name) {
		return t, fmt.Errorf("%w: tensor name %q", ErrCorrupt, name)
	}
	t.Name = name
	nd, err := d.u32("dimension count of " + name)
	if err != nil {
		return t, err
	}
	if nd == 0 || nd > maxDims {
		return t, fmt.Errorf("%w: tensor %q has %d dimensions (1 to %d allowed)", ErrCorrupt, name, nd, maxDims)
	}
	t.Dims = make([]uint64, nd)
	n := uint64(1)
	for i := range t.Dims {
		v, err := d.u64("dimension of " + name)
		if err != nil {
			return t, err
		}
		if v == 0 || v > maxElements || n > maxElements/v {
			return t, fmt.Errorf("%w: tensor %q dimension %d is %d", ErrCorrupt, name, i, v)
		}
		t.Dims[i] = v
		n *= v
	}
	typ, err := d.u32("type of " + name)
	if err != nil {
		return t, err
	}
	t.Type = TensorType(typ)
	if t.Dims[0]%uint64(max(t.Type.BlockSize(), 1)) != 0 {
		return t, fmt.Errorf("%w: tensor %q row of %d elements is not a whole number of %s blocks", ErrCorrupt, name, t.Dims[0], t.Type)
	}
	t.Size, err = t.Type.RowSize(n)
	if err != nil {
		return t, fmt.Errorf("tensor %q: %w", name, err)
	}
	t.Offset, err = d.u64("offset of " + name)
	if err != nil {
		return t, err
	}
	return t, nil
}

func (d *decoder) value(t ValueType, depth int, key string) (any, error) {
	what := "value of " + key
	switch t {
	case TypeUint8:
		return d.u8(what)
	case TypeInt8:
		v, err := d.u8(what)
		return int8(v), err
	case TypeUint16:
		return d.u16(what)
	case TypeInt16:
		v, err := d.u16(what)
		return int16(v), err
	case TypeUint32:
		return d.u32(what)
	case TypeInt32:
		v, err := d.u32(what)
		return int32(v), err
	case TypeFloat32:
		v, err := d.u32(what)
		return math.Float32frombits(v), err
	case TypeBool:
		v, err := d.u8(what)
		if err != nil {
			return nil, err
		}
		if v > 1 {
			return nil, fmt.Errorf("%w: %s: bool byte %d", ErrCorrupt, key, v)
		}
		return v == 1, nil
	case TypeString:
		return d.str(maxStringLen, what)
	case TypeUint64:
		return d.u64(what)
	case TypeInt64:
		v, err := d.u64(what)
		return int64(v), err
	case TypeFloat64:
		v, err := d.u64(what)
		return math.Float64frombits(v), err
	case TypeArray:
		return d.array(depth, key)
	}
	return nil, fmt.Errorf("%w: %s has unknown value type %d", ErrCorrupt, key, uint32(t))
}

func (d *decoder) array(depth int, key string) (any, error) {
	if depth >= maxArrayDepth {
		return nil, fmt.Errorf("%w: %s: arrays nested deeper than %d", ErrCorrupt, key, maxArrayDepth)
	}
	et, err := d.u32("array type of " + key)
	if err != nil {
		return nil, err
	}
	elem := ValueType(et)
	if !elem.valid() {
		return nil, fmt.Errorf("%w: %s: unknown array element type %d", ErrCorrupt, key, et)
	}
	n, err := d.u64("array length of " + key)
	if err != nil {
		return nil, err
	}
	if n > d.remaining()/uint64(elem.minSize()) {
		return nil, fmt.Errorf("%w: %s: %d array elements cannot fit in %d bytes", ErrTruncated, key, n, d.remaining())
	}
	a := Array{Type: elem}
	if size := elem.fixedSize(); size > 0 {
		raw, _ := d.take(n*uint64(size), key) // length checked above
		a.Values = decodeFixed(elem, raw, int(n))
		if bs, ok := a.Values.([]bool); ok {
			for i, c := range raw {
				if c > 1 {
					return nil, fmt.Errorf("%w: %s: bool byte %d", ErrCorrupt, key, c)
				}
				bs[i] = c == 1
			}
		}
		return a, nil
	}
	switch elem {
	case TypeString:
		s := make([]string, n)
		for i := range s {
			if s[i], err = d.str(maxStringLen, "element of "+key); err != nil {
				return nil, err
			}
		}
		a.Values = s
	case TypeArray:
		s := make([]Array, n)
		for i := range s {
			v, err := d.array(depth+1, key)
			if err != nil {
				return nil, err
			}
			s[i] = v.(Array)
		}
		a.Values = s
	}
	return a, nil
}

// decodeFixed decodes n little-endian scalars of type t from raw.
func decodeFixed(t ValueType, raw []byte, n int) any {
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return append([]uint8(nil), raw...)
	case TypeInt8:
		v := make([]int8, n)
		for i := range v {
			v[i] = int8(raw[i])
		}
		return v
	case TypeBool:
		return make([]bool, n)
	case TypeUint16:
		v := make([]uint16, n)
		for i := range v {
			v[i] = le.Uint16(raw[2*i:])
		}
		return v
	case TypeInt16:
		v := make([]int16, n)
		for i := range v {
			v[i] = int16(le.Uint16(raw[2*i:]))
		}
		return v
	case TypeUint32:
		v := make([]uint32, n)
		for i := range v {
			v[i] = le.Uint32(raw[4*i:])
		}
		return v
	case TypeInt32:
		v := make([]int32, n)
		for i := range v {
			v[i] = int32(le.Uint32(raw[4*i:]))
		}
		return v
	case TypeFloat32:
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		return v
	case TypeUint64:
		v := make([]uint64, n)
		for i := range v {
			v[i] = le.Uint64(raw[8*i:])
		}
		return v
	case TypeInt64:
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(le.Uint64(raw[8*i:]))
		}
		return v
	case TypeFloat64:
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
		return v
	}
	return nil
}

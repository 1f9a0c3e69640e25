package tensorfile

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/godiffusion/notebooks/diffusion/atomicfile"
)

// npyMagic starts every .npy file.
const npyMagic = "\x93NUMPY"

// maxNPYHeader bounds the header length accepted by DecodeNPY.
const maxNPYHeader = 1 << 16

// npyDescr maps a DType to its NumPy little-endian type descriptor.
var npyDescr = map[DType]string{Float32: "<f4", Float64: "<f8", Int64: "<i8"}

// WriteNPY writes float32 data with the given shape (C order) to path as a
// NumPy .npy version 1.0 file with dtype '<f4'. Without a shape the array is
// one-dimensional. The file is replaced atomically.
func WriteNPY(path string, data []float32, shape ...int) error {
	t, err := NewFloat32(data, shape...)
	if err != nil {
		return err
	}
	return WriteNPYTensor(path, t)
}

// WriteNPYTensor writes t to path as a NumPy .npy version 1.0 file
// ('<f4', '<f8' or '<i8', C order). The file is replaced atomically.
func WriteNPYTensor(path string, t *Tensor) error {
	if err := t.Validate(); err != nil {
		return err
	}
	return atomicfile.WriteFunc(path, func(f *os.File) error {
		w := bufio.NewWriter(f)
		if err := EncodeNPY(w, t); err != nil {
			return err
		}
		return w.Flush()
	})
}

// EncodeNPY writes t to w in the NumPy .npy version 1.0 format.
func EncodeNPY(w io.Writer, t *Tensor) error {
	if err := t.Validate(); err != nil {
		return err
	}
	var shape strings.Builder
	shape.WriteByte('(')
	for i, d := range t.Shape {
		if i > 0 {
			shape.WriteString(", ")
		}
		shape.WriteString(strconv.Itoa(d))
	}
	if len(t.Shape) == 1 {
		shape.WriteByte(',')
	}
	shape.WriteByte(')')
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", npyDescr[t.DType], shape.String())
	// Pad with spaces and a final newline so that the data starts at a
	// multiple of 64 bytes, as NumPy does.
	total := len(npyMagic) + 2 + 2 + len(header) + 1
	pad := (64 - total%64) % 64
	header += strings.Repeat(" ", pad) + "\n"
	if len(header) > math.MaxUint16 {
		return fmt.Errorf("tensorfile: npy header too long for format 1.0 (%d bytes)", len(header))
	}
	var pre [10]byte
	copy(pre[:], npyMagic)
	pre[6], pre[7] = 1, 0
	binary.LittleEndian.PutUint16(pre[8:], uint16(len(header)))
	if _, err := w.Write(pre[:]); err != nil {
		return err
	}
	if _, err := io.WriteString(w, header); err != nil {
		return err
	}
	_, err := w.Write(encodeData(t))
	return err
}

// encodeData returns the little-endian bytes of t's elements.
func encodeData(t *Tensor) []byte {
	switch t.DType {
	case Float32:
		b := make([]byte, 4*len(t.Float32s))
		for i, v := range t.Float32s {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return b
	case Float64:
		b := make([]byte, 8*len(t.Float64s))
		for i, v := range t.Float64s {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
		}
		return b
	default:
		b := make([]byte, 8*len(t.Int64s))
		for i, v := range t.Int64s {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
		}
		return b
	}
}

// decodeData builds a tensor of the given dtype and shape from little-endian
// bytes; len(b) must be exactly the size the shape needs.
func decodeData(dtype DType, shape []int, b []byte) (*Tensor, error) {
	n, err := numElements(shape)
	if err != nil {
		return nil, err
	}
	size := dtype.size()
	if size == 0 {
		return nil, fmt.Errorf("tensorfile: unsupported dtype %q", dtype)
	}
	if len(b) != n*size {
		return nil, fmt.Errorf("tensorfile: shape %v of %s needs %d data bytes, found %d", shape, dtype, n*size, len(b))
	}
	t := &Tensor{DType: dtype, Shape: shape}
	switch dtype {
	case Float32:
		t.Float32s = make([]float32, n)
		for i := range t.Float32s {
			t.Float32s[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case Float64:
		t.Float64s = make([]float64, n)
		for i := range t.Float64s {
			t.Float64s[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
	case Int64:
		t.Int64s = make([]int64, n)
		for i := range t.Int64s {
			t.Int64s[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	}
	return t, nil
}

// ReadNPY reads a float32 ('<f4') or float64 ('<f8') .npy file and returns its
// elements as float32 in C order, with the array's shape. float64 values are
// rounded to float32.
func ReadNPY(path string) (data []float32, shape []int, err error) {
	t, err := ReadNPYTensor(path)
	if err != nil {
		return nil, nil, err
	}
	if t.DType != Float32 && t.DType != Float64 {
		return nil, nil, fmt.Errorf("tensorfile: %s: dtype %s, want float32 or float64", path, t.DType)
	}
	data, err = t.AsFloat32()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, t.Shape, nil
}

// ReadNPYTensor reads a .npy file holding a little-endian float32, float64 or
// int64 array in C order.
func ReadNPYTensor(path string) (*Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tensorfile: %w", err)
	}
	t, err := DecodeNPY(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// DecodeNPY parses the bytes of a .npy file (format versions 1.0, 2.0 and
// 3.0) holding a little-endian float32, float64 or int64 array in C order.
func DecodeNPY(b []byte) (*Tensor, error) {
	if len(b) < 10 || string(b[:6]) != npyMagic {
		return nil, fmt.Errorf("tensorfile: not a .npy file (bad magic)")
	}
	major := b[6]
	var headerLen, start int
	switch major {
	case 1:
		headerLen, start = int(binary.LittleEndian.Uint16(b[8:10])), 10
	case 2, 3:
		if len(b) < 12 {
			return nil, fmt.Errorf("tensorfile: truncated .npy header")
		}
		hl := binary.LittleEndian.Uint32(b[8:12])
		if hl > maxNPYHeader {
			return nil, fmt.Errorf("tensorfile: .npy header length %d exceeds limit %d", hl, maxNPYHeader)
		}
		headerLen, start = int(hl), 12
	default:
		return nil, fmt.Errorf("tensorfile: unsupported .npy format version %d.%d", b[6], b[7])
	}
	if len(b) < start+headerLen {
		return nil, fmt.Errorf("tensorfile: truncated .npy header (need %d bytes, file has %d)", start+headerLen, len(b))
	}
	h, err := parseNPYHeader(string(b[start : start+headerLen]))
	if err != nil {
		return nil, err
	}
	if h.fortran {
		return nil, fmt.Errorf("tensorfile: Fortran-ordered .npy arrays are not supported")
	}
	var dtype DType
	for d, s := range npyDescr {
		if s == h.descr {
			dtype = d
		}
	}
	if dtype == "" {
		return nil, fmt.Errorf("tensorfile: unsupported .npy dtype %q (want '<f4', '<f8' or '<i8')", h.descr)
	}
	return decodeData(dtype, h.shape, b[start+headerLen:])
}

// npyHeader is the parsed header dictionary of a .npy file.
type npyHeader struct {
	descr   string
	fortran bool
	shape   []int
}

// parseNPYHeader parses the Python dict literal of a .npy header, e.g.
// "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }".
func parseNPYHeader(s string) (npyHeader, error) {
	p := &literalParser{s: s}
	var h npyHeader
	seen := map[string]bool{}
	fail := func(format string, args ...any) (npyHeader, error) {
		return npyHeader{}, fmt.Errorf("tensorfile: bad .npy header %q: %s", s, fmt.Sprintf(format, args...))
	}
	if !p.consume('{') {
		return fail("expected '{'")
	}
	for {
		if p.consume('}') {
			break
		}
		key, ok := p.str()
		if !ok {
			return fail("expected a quoted key at offset %d", p.i)
		}
		if seen[key] {
			return fail("duplicate key %q", key)
		}
		seen[key] = true
		if !p.consume(':') {
			return fail("expected ':' after %q", key)
		}
		switch key {
		case "descr":
			if h.descr, ok = p.str(); !ok {
				return fail("descr is not a string")
			}
		case "fortran_order":
			if h.fortran, ok = p.boolean(); !ok {
				return fail("fortran_order is not True or False")
			}
		case "shape":
			if h.shape, ok = p.intTuple(); !ok {
				return fail("shape is not a tuple of non-negative integers")
			}
		default:
			return fail("unexpected key %q", key)
		}
		if !p.consume(',') {
			if !p.consume('}') {
				return fail("expected ',' or '}' at offset %d", p.i)
			}
			break
		}
	}
	p.skipSpace()
	if p.i != len(p.s) {
		return fail("trailing characters after the dictionary")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return fail("missing key %q", k)
		}
	}
	return h, nil
}

// literalParser parses the small subset of Python literals used in .npy
// headers.
type literalParser struct {
	s string
	i int
}

func (p *literalParser) skipSpace() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *literalParser) consume(c byte) bool {
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *literalParser) str() (string, bool) {
	p.skipSpace()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", false
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", false
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, true
}

func (p *literalParser) boolean() (bool, bool) {
	p.skipSpace()
	for _, c := range []struct {
		word string
		v    bool
	}{{"True", true}, {"False", false}} {
		if strings.HasPrefix(p.s[p.i:], c.word) {
			p.i += len(c.word)
			return c.v, true
		}
	}
	return false, false
}

func (p *literalParser) intTuple() ([]int, bool) {
	if !p.consume('(') {
		return nil, false
	}
	shape := []int{}
	for {
		if p.consume(')') {
			return shape, true
		}
		p.skipSpace()
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		if j == p.i || j-p.i > 12 {
			return nil, false
		}
		d, err := strconv.Atoi(p.s[p.i:j])
		if err != nil {
			return nil, false
		}
		p.i = j
		shape = append(shape, d)
		if !p.consume(',') {
			if p.consume(')') {
				return shape, true
			}
			return nil, false
		}
	}
}

package mnist

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// IDXType is the element type code of an IDX file (the third byte of its magic number).
type IDXType byte

// The element types of the IDX format. Multi-byte values are big-endian.
const (
	IDXUint8   IDXType = 0x08
	IDXInt8    IDXType = 0x09
	IDXInt16   IDXType = 0x0B
	IDXInt32   IDXType = 0x0C
	IDXFloat32 IDXType = 0x0D
	IDXFloat64 IDXType = 0x0E
)

// Size returns the size in bytes of one element, or 0 for an unknown type.
func (t IDXType) Size() int {
	switch t {
	case IDXUint8, IDXInt8:
		return 1
	case IDXInt16:
		return 2
	case IDXInt32, IDXFloat32:
		return 4
	case IDXFloat64:
		return 8
	}
	return 0
}

// String returns the name of the type, e.g. "uint8".
func (t IDXType) String() string {
	switch t {
	case IDXUint8:
		return "uint8"
	case IDXInt8:
		return "int8"
	case IDXInt16:
		return "int16"
	case IDXInt32:
		return "int32"
	case IDXFloat32:
		return "float32"
	case IDXFloat64:
		return "float64"
	}
	return fmt.Sprintf("unknown(0x%02x)", byte(t))
}

const (
	// MaxIDXDims is the largest number of dimensions DecodeIDX accepts.
	MaxIDXDims = 8
	// DefaultMaxIDXBytes is the default limit on the size of the data of one IDX file
	// (the MNIST training images take 47,040,000 bytes).
	DefaultMaxIDXBytes = 1 << 28
	// firstChunk bounds the first allocation for the data, whatever the header claims;
	// the buffer then grows only as far as data actually arrives.
	firstChunk = 1 << 20
)

// IDX is one array read from an IDX file.
type IDX struct {
	// Type is the element type.
	Type IDXType
	// Dims holds the size of each dimension, outermost first.
	Dims []int
	// Data holds the elements as stored: row-major, big-endian, len = Len()*Type.Size().
	Data []byte
}

// Len returns the number of elements (the product of Dims).
func (a *IDX) Len() int {
	n := 1
	for _, d := range a.Dims {
		n *= d
	}
	return n
}

// Float64s returns the elements converted to float64, whatever their type.
func (a *IDX) Float64s() []float64 {
	size := a.Type.Size()
	if size == 0 {
		return nil
	}
	out := make([]float64, len(a.Data)/size)
	for i := range out {
		b := a.Data[i*size : (i+1)*size]
		switch a.Type {
		case IDXUint8:
			out[i] = float64(b[0])
		case IDXInt8:
			out[i] = float64(int8(b[0]))
		case IDXInt16:
			out[i] = float64(int16(binary.BigEndian.Uint16(b)))
		case IDXInt32:
			out[i] = float64(int32(binary.BigEndian.Uint32(b)))
		case IDXFloat32:
			out[i] = float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
		case IDXFloat64:
			out[i] = math.Float64frombits(binary.BigEndian.Uint64(b))
		}
	}
	return out
}

// DecodeIDX reads one IDX array from r, which may be gzip-compressed (detected from
// its first bytes). maxBytes limits the size of the data (DefaultMaxIDXBytes if <= 0).
// A wrong magic number, an unknown type, a size over the limit, missing data (a
// truncated file), trailing bytes after the data, or a corrupt gzip stream is an error.
// The memory allocated is bounded by the data actually present, not by the header.
func DecodeIDX(r io.Reader, maxBytes int64) (*IDX, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxIDXBytes
	}
	br := bufio.NewReader(r)
	head, err := br.Peek(2)
	if err != nil && len(head) < 2 {
		if len(head) == 0 {
			return nil, errors.New("empty file")
		}
		return nil, errors.New("truncated header: file is 1 byte long")
	}
	var src io.Reader = br
	if head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("corrupt gzip header: %w", err)
		}
		defer zr.Close()
		src = gzipReader{zr}
	}
	return decodeIDX(src, maxBytes)
}

// gzipReader marks the errors of the gzip decoder, so that a corrupt or truncated
// compressed stream is reported as such rather than as a short IDX file.
type gzipReader struct{ r io.Reader }

// Read implements io.Reader.
func (g gzipReader) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF {
		err = gzipError{err}
	}
	return n, err
}

// gzipError is an error of the gzip decoder. It deliberately does not unwrap, so that
// the decoder's io.ErrUnexpectedEOF is not mistaken for a short IDX stream.
type gzipError struct{ err error }

// Error implements error.
func (e gzipError) Error() string { return "corrupt or truncated gzip stream: " + e.err.Error() }

// decodeIDX reads the header and data of an uncompressed IDX stream.
func decodeIDX(r io.Reader, maxBytes int64) (*IDX, error) {
	var magic [4]byte
	if n, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, readError("magic number", n, 4, err)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, fmt.Errorf("bad magic number %02x%02x%02x%02x: not an IDX file (must start with two zero bytes)",
			magic[0], magic[1], magic[2], magic[3])
	}
	typ := IDXType(magic[2])
	if typ.Size() == 0 {
		return nil, fmt.Errorf("bad magic number %02x%02x%02x%02x: unknown element type 0x%02x",
			magic[0], magic[1], magic[2], magic[3], magic[2])
	}
	ndims := int(magic[3])
	if ndims < 1 || ndims > MaxIDXDims {
		return nil, fmt.Errorf("bad magic number %02x%02x%02x%02x: %d dimensions (want 1..%d)",
			magic[0], magic[1], magic[2], magic[3], ndims, MaxIDXDims)
	}
	dimBytes := make([]byte, 4*ndims)
	if n, err := io.ReadFull(r, dimBytes); err != nil {
		return nil, readError(fmt.Sprintf("sizes of %d dimensions", ndims), n, len(dimBytes), err)
	}
	dims := make([]int, ndims)
	size := int64(typ.Size())
	for i := range dims {
		d := binary.BigEndian.Uint32(dimBytes[4*i:])
		dims[i] = int(d)
		if d != 0 && size > maxBytes/int64(d) {
			return nil, fmt.Errorf("header claims dimensions %v of %s: more than the limit of %d bytes",
				dimsOf(dimBytes), typ, maxBytes)
		}
		size *= int64(d)
	}
	if size > maxBytes {
		return nil, fmt.Errorf("header claims %d bytes of data, more than the limit of %d", size, maxBytes)
	}
	data, err := readExactly(r, int(size))
	if err != nil {
		return nil, fmt.Errorf("data of %s%v: %w", typ, dims, err)
	}
	return &IDX{Type: typ, Dims: dims, Data: data}, nil
}

// dimsOf decodes all dimension sizes for an error message.
func dimsOf(b []byte) []uint32 {
	out := make([]uint32, len(b)/4)
	for i := range out {
		out[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	return out
}

// readError describes a failed io.ReadFull of what.
func readError(what string, got, want int, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated header: %s needs %d bytes, file has %d", what, want, got)
	}
	return fmt.Errorf("reading %s: %w", what, err)
}

// readExactly reads exactly n bytes and then checks that r has nothing more. The buffer
// starts small and grows only as data arrives, so a header that lies about the size
// cannot make it allocate more than about twice the bytes actually present.
func readExactly(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, 0, min(n, firstChunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, 2*cap(buf)))
			copy(grown, buf)
			buf = grown
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			if len(buf) < n {
				return nil, fmt.Errorf("truncated: header promises %d bytes of data, file has %d", n, len(buf))
			}
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
	var extra [1]byte
	for {
		m, err := r.Read(extra[:])
		if m > 0 {
			return nil, fmt.Errorf("trailing bytes after the %d bytes of data the header promises", n)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// ReadIDXFile reads one IDX array from a file, gzip-compressed or not; errors name the
// file. maxBytes is as in DecodeIDX.
func ReadIDXFile(path string, maxBytes int64) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mnist: %w", err)
	}
	defer f.Close()
	a, err := DecodeIDX(f, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("mnist: %s: %w", path, err)
	}
	return a, nil
}

package tensorfile

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/godiffusion/notebooks/diffusion/atomicfile"
)

// ptArchiveName is the top-level folder of the zip archives written here, as
// in files written by recent versions of torch.save.
const ptArchiveName = "archive"

// ptAlignment is the alignment of every record's data inside the zip
// archive; torch.save pads records to 64 bytes so they can be memory-mapped.
const ptAlignment = 64

// storageClass maps a DType to the name of its legacy torch storage class,
// which is how torch.save names the element type of a storage.
var storageClass = map[DType]string{Float32: "FloatStorage", Float64: "DoubleStorage", Int64: "LongStorage"}

// NamedTensor is one entry of a dictionary of tensors in a .pt file.
type NamedTensor struct {
	// Name is the dictionary key.
	Name string
	// Tensor is the value.
	Tensor *Tensor
}

// WritePTTensor writes a single float32 tensor with the given shape to path
// in the zip format of torch.save, so that torch.load(path) returns a
// torch.float32 tensor. Without a shape the tensor is one-dimensional. The
// file is replaced atomically.
func WritePTTensor(path string, data []float32, shape ...int) error {
	t, err := NewFloat32(data, shape...)
	if err != nil {
		return err
	}
	var p pickler
	p.begin()
	p.tensor(t, "0")
	p.end()
	return writePT(path, p.buf.Bytes(), []*Tensor{t})
}

// WritePTDict writes a dictionary of named tensors (float32, float64 or
// int64) to path in the zip format of torch.save, so that torch.load(path)
// returns a dict with the entries in the given order. Names must be unique.
// The file is replaced atomically.
func WritePTDict(path string, entries ...NamedTensor) error {
	seen := map[string]bool{}
	tensors := make([]*Tensor, len(entries))
	for i, e := range entries {
		if seen[e.Name] {
			return fmt.Errorf("tensorfile: duplicate tensor name %q", e.Name)
		}
		seen[e.Name] = true
		if err := e.Tensor.Validate(); err != nil {
			return fmt.Errorf("tensorfile: tensor %q: %w", e.Name, err)
		}
		tensors[i] = e.Tensor
	}
	var p pickler
	p.begin()
	p.op(opEmptyDict)
	if len(entries) > 0 {
		p.op(opMark)
		for i, e := range entries {
			p.str(e.Name)
			p.tensor(e.Tensor, strconv.Itoa(i))
		}
		p.op(opSetItems)
	}
	p.end()
	return writePT(path, p.buf.Bytes(), tensors)
}

// writePT writes the zip archive: data.pkl, byteorder, one storage record per
// tensor (data/0, data/1, ... matching the pickled storage keys) and version.
func writePT(path string, pkl []byte, tensors []*Tensor) error {
	return atomicfile.WriteFunc(path, func(f *os.File) error {
		bw := bufio.NewWriter(f)
		if err := encodePT(bw, pkl, tensors); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// encodePT writes the torch zip archive to w.
func encodePT(w io.Writer, pkl []byte, tensors []*Tensor) error {
	cw := &countingWriter{w: w}
	zw := zip.NewWriter(cw)
	add := func(name string, data []byte) error {
		if err := zw.Flush(); err != nil {
			return err
		}
		name = ptArchiveName + "/" + name
		// Local header (30 bytes) + name + 4-byte extra field header, then
		// padding so that the data starts at a multiple of ptAlignment.
		pad := (ptAlignment - int((cw.n+30+int64(len(name))+4)%ptAlignment)) % ptAlignment
		extra := make([]byte, 4+pad)
		extra[0], extra[1] = 'F', 'B'
		binary.LittleEndian.PutUint16(extra[2:], uint16(pad))
		rw, err := zw.CreateRaw(&zip.FileHeader{
			Name:               name,
			Method:             zip.Store,
			CRC32:              crc32.ChecksumIEEE(data),
			CompressedSize64:   uint64(len(data)),
			UncompressedSize64: uint64(len(data)),
			Extra:              extra,
		})
		if err != nil {
			return err
		}
		_, err = rw.Write(data)
		return err
	}
	if err := add("data.pkl", pkl); err != nil {
		return err
	}
	if err := add("byteorder", []byte("little")); err != nil {
		return err
	}
	for i, t := range tensors {
		if err := add("data/"+strconv.Itoa(i), encodeData(t)); err != nil {
			return err
		}
	}
	if err := add("version", []byte("3\n")); err != nil {
		return err
	}
	return zw.Close()
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

// Write writes p to the underlying writer and counts the bytes written.
func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Pickle opcodes used by the writer (protocol 2) and the reader's scanner.
const (
	opMark       = '('
	opStop       = '.'
	opBinInt     = 'J'
	opBinInt1    = 'K'
	opBinInt2    = 'M'
	opLong1      = '\x8a'
	opBinUnicode = 'X'
	opGlobal     = 'c'
	opTuple      = 't'
	opEmptyTuple = ')'
	opEmptyDict  = '}'
	opSetItems   = 'u'
	opReduce     = 'R'
	opBinPersID  = 'Q'
	opNewFalse   = '\x89'
	opProto      = '\x80'
)

// pickler writes the small subset of pickle protocol 2 that torch.load needs
// for tensors: ints, strings, tuples, dicts, globals, REDUCE and persistent
// ids. It does not memoize.
type pickler struct {
	buf bytes.Buffer
}

func (p *pickler) begin() { p.buf.Write([]byte{opProto, 2}) }

func (p *pickler) end() { p.op(opStop) }

func (p *pickler) op(c byte) { p.buf.WriteByte(c) }

func (p *pickler) int(v int) {
	switch {
	case v >= 0 && v < 1<<8:
		p.buf.Write([]byte{opBinInt1, byte(v)})
	case v >= 0 && v < 1<<16:
		p.buf.Write([]byte{opBinInt2, byte(v), byte(v >> 8)})
	case v >= math.MinInt32 && v <= math.MaxInt32:
		p.op(opBinInt)
		p.buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(int32(v))))
	default:
		// LONG1: little-endian two's complement, 8 bytes is always enough.
		p.buf.Write([]byte{opLong1, 8})
		p.buf.Write(binary.LittleEndian.AppendUint64(nil, uint64(int64(v))))
	}
}

func (p *pickler) str(s string) {
	p.op(opBinUnicode)
	p.buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(s))))
	p.buf.WriteString(s)
}

func (p *pickler) global(module, name string) {
	p.op(opGlobal)
	p.buf.WriteString(module + "\n" + name + "\n")
}

func (p *pickler) intTuple(v []int) {
	p.op(opMark)
	for _, x := range v {
		p.int(x)
	}
	p.op(opTuple)
}

// tensor pickles torch._utils._rebuild_tensor_v2(storage, 0, shape,
// contiguous strides, False, OrderedDict()) where storage is the persistent
// id ('storage', torch.<Type>Storage, key, 'cpu', numel).
func (p *pickler) tensor(t *Tensor, key string) {
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op(opMark)
	p.op(opMark)
	p.str("storage")
	p.global("torch", storageClass[t.DType])
	p.str(key)
	p.str("cpu")
	p.int(t.NumElements())
	p.op(opTuple)
	p.op(opBinPersID)
	p.int(0)
	p.intTuple(t.Shape)
	p.intTuple(contiguousStrides(t.Shape))
	p.op(opNewFalse)
	p.global("collections", "OrderedDict")
	p.op(opEmptyTuple)
	p.op(opReduce)
	p.op(opTuple)
	p.op(opReduce)
}

// contiguousStrides returns the C-order strides (in elements) of shape, as
// torch computes them (a dimension of size 0 counts as 1).
func contiguousStrides(shape []int) []int {
	strides := make([]int, len(shape))
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		strides[i] = s
		s *= max(shape[i], 1)
	}
	return strides
}

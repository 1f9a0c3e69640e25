package tensorfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// maxPickleBytes bounds the size of the data.pkl record accepted by the reader.
const maxPickleBytes = 64 << 20

// ReadPTTensor reads a .pt file written by torch.save(tensor) (zip format)
// whose top-level object is a single float32, float64 or int64 tensor.
func ReadPTTensor(path string) (*Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tensorfile: %w", err)
	}
	t, err := DecodePTTensor(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ReadPTDict reads a .pt file written by torch.save(dict) (zip format) whose
// top-level object is a dict (or OrderedDict) from string keys to float32,
// float64 or int64 tensors.
func ReadPTDict(path string) (map[string]*Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tensorfile: %w", err)
	}
	d, err := DecodePTDict(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// DecodePTTensor is ReadPTTensor on the bytes of a .pt file.
func DecodePTTensor(b []byte) (*Tensor, error) {
	obj, err := decodePT(b)
	if err != nil {
		return nil, err
	}
	t, ok := obj.(*Tensor)
	if !ok {
		return nil, fmt.Errorf("tensorfile: .pt file holds %s, want a tensor", describe(obj))
	}
	return t, nil
}

// DecodePTDict is ReadPTDict on the bytes of a .pt file.
func DecodePTDict(b []byte) (map[string]*Tensor, error) {
	obj, err := decodePT(b)
	if err != nil {
		return nil, err
	}
	out := map[string]*Tensor{}
	set := func(k, v any) error {
		name, ok := k.(string)
		if !ok {
			return fmt.Errorf("tensorfile: .pt dict has a key of type %s, want str", describe(k))
		}
		t, ok := v.(*Tensor)
		if !ok {
			return fmt.Errorf("tensorfile: .pt dict entry %q is %s, want a tensor", name, describe(v))
		}
		out[name] = t
		return nil
	}
	switch d := obj.(type) {
	case *types.Dict:
		for _, e := range *d {
			if err := set(e.Key, e.Value); err != nil {
				return nil, err
			}
		}
	case *types.OrderedDict:
		for el := d.List.Front(); el != nil; el = el.Next() {
			e, ok := el.Value.(*types.OrderedDictEntry)
			if !ok {
				return nil, fmt.Errorf("tensorfile: malformed OrderedDict")
			}
			if err := set(e.Key, e.Value); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("tensorfile: .pt file holds %s, want a dict of tensors", describe(obj))
	}
	return out, nil
}

// describe names the Python-level kind of an unpickled value for error
// messages.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case *Tensor:
		return "a tensor"
	case *types.Dict, *types.OrderedDict:
		return "a dict"
	case *types.List:
		return "a list"
	case *types.Tuple:
		return "a tuple"
	case string:
		return "a str"
	case int:
		return "an int"
	case bool:
		return "a bool"
	case float64:
		return "a float"
	case *types.GenericClass:
		return "class " + v.Module + "." + v.Name
	default:
		return fmt.Sprintf("a value of Go type %T", v)
	}
}

// ptReader holds the state of one decodePT call.
type ptReader struct {
	prefix   string               // top-level folder of the archive, e.g. "archive"
	records  map[string]*zip.File // records by full name
	storages map[string]*storage  // loaded storages by key
}

// storage is the raw little-endian content of one torch storage record.
type storage struct {
	dtype DType
	numel int
	data  []byte
}

// storageType is an unpickled torch.<Type>Storage class; dtype is empty for
// element types this package does not support.
type storageType struct {
	name  string
	dtype DType
}

// torchStorages maps torch storage class names to DTypes; unsupported types
// map to "" and are reported by name.
var torchStorages = map[string]DType{
	"FloatStorage": Float32, "DoubleStorage": Float64, "LongStorage": Int64,
	"HalfStorage": "", "BFloat16Storage": "", "IntStorage": "", "ShortStorage": "",
	"CharStorage": "", "ByteStorage": "", "BoolStorage": "",
	"ComplexFloatStorage": "", "ComplexDoubleStorage": "",
}

// decodePT unpickles data.pkl of a torch zip archive, loading the storages
// its tensors refer to. Tensors come back as *Tensor.
func decodePT(b []byte) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			result, err = nil, fmt.Errorf("tensorfile: malformed .pt pickle: %v", r)
		}
	}()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("tensorfile: not a torch zip archive (only the zip format of torch.save since PyTorch 1.6 is supported): %w", err)
	}
	r := &ptReader{records: map[string]*zip.File{}, storages: map[string]*storage{}}
	var pklFile *zip.File
	for _, f := range zr.File {
		if _, dup := r.records[f.Name]; dup {
			return nil, fmt.Errorf("tensorfile: duplicate record %q in .pt archive", f.Name)
		}
		r.records[f.Name] = f
		dir, base := path.Split(f.Name)
		if base == "constants.pkl" {
			return nil, fmt.Errorf("tensorfile: TorchScript archives are not supported")
		}
		if base == "data.pkl" && !strings.Contains(strings.TrimSuffix(dir, "/"), "/") {
			if pklFile != nil {
				return nil, fmt.Errorf("tensorfile: more than one data.pkl in .pt archive")
			}
			pklFile, r.prefix = f, dir
		}
	}
	if pklFile == nil {
		return nil, fmt.Errorf("tensorfile: no data.pkl in .pt archive")
	}
	if bo, ok := r.records[r.prefix+"byteorder"]; ok {
		v, err := readRecord(bo, 16)
		if err != nil {
			return nil, err
		}
		if string(v) != "little" {
			return nil, fmt.Errorf("tensorfile: .pt byteorder %q is not supported (want little)", v)
		}
	}
	pkl, err := readRecord(pklFile, maxPickleBytes)
	if err != nil {
		return nil, err
	}
	if err := scanPickle(pkl); err != nil {
		return nil, err
	}
	u := pickle.NewUnpickler(bytes.NewReader(pkl))
	u.FindClass = r.findClass
	u.PersistentLoad = r.persistentLoad
	obj, err := u.Load()
	if err != nil {
		return nil, fmt.Errorf("tensorfile: unpickle data.pkl: %w", err)
	}
	return obj, nil
}

// readRecord returns the uncompressed content of a zip record of at most
// limit bytes.
func readRecord(f *zip.File, limit int) ([]byte, error) {
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("tensorfile: record %q is too large (%d bytes, limit %d)", f.Name, f.UncompressedSize64, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("tensorfile: open record %q: %w", f.Name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("tensorfile: read record %q: %w", f.Name, err)
	}
	if uint64(len(data)) != f.UncompressedSize64 {
		return nil, fmt.Errorf("tensorfile: record %q has %d bytes, header says %d", f.Name, len(data), f.UncompressedSize64)
	}
	return data, nil
}

// findClass resolves the GLOBALs a tensor pickle may reference.
func (r *ptReader) findClass(module, name string) (any, error) {
	if module == "torch" {
		if dtype, ok := torchStorages[name]; ok {
			return &storageType{name: "torch." + name, dtype: dtype}, nil
		}
	}
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2":
		return rebuildTensor{r}, nil
	case "torch._utils._rebuild_parameter":
		return rebuildParameter{}, nil
	}
	return nil, fmt.Errorf("tensorfile: unsupported pickled class %s.%s (only tensors and dicts of tensors are supported)", module, name)
}

// persistentLoad resolves ('storage', torch.<Type>Storage, key, location,
// numel) to the storage record data/<key> of the archive.
func (r *ptReader) persistentLoad(id any) (any, error) {
	tup, ok := id.(*types.Tuple)
	if !ok || tup.Len() != 5 {
		return nil, fmt.Errorf("tensorfile: unexpected persistent id %s (want a 5-tuple)", describe(id))
	}
	kind, _ := tup.Get(0).(string)
	st, stOK := tup.Get(1).(*storageType)
	key, keyOK := tup.Get(2).(string)
	_, locOK := tup.Get(3).(string)
	numel, numelOK := tup.Get(4).(int)
	if kind != "storage" || !stOK || !keyOK || !locOK || !numelOK {
		return nil, fmt.Errorf("tensorfile: malformed storage persistent id")
	}
	if st.dtype == "" {
		return nil, fmt.Errorf("tensorfile: storage type %s is not supported (want float32, float64 or int64)", st.name)
	}
	if numel < 0 || numel > maxElements {
		return nil, fmt.Errorf("tensorfile: storage %q has invalid size %d", key, numel)
	}
	if s, ok := r.storages[key]; ok {
		if s.dtype != st.dtype || s.numel != numel {
			return nil, fmt.Errorf("tensorfile: storage %q is referenced with different types or sizes", key)
		}
		return s, nil
	}
	f, ok := r.records[r.prefix+"data/"+key]
	if !ok {
		return nil, fmt.Errorf("tensorfile: storage record %q missing from .pt archive", r.prefix+"data/"+key)
	}
	want := numel * st.dtype.size()
	if f.UncompressedSize64 != uint64(want) {
		return nil, fmt.Errorf("tensorfile: storage record %q has %d bytes, want %d for %d %s elements", f.Name, f.UncompressedSize64, want, numel, st.dtype)
	}
	data, err := readRecord(f, want)
	if err != nil {
		return nil, err
	}
	s := &storage{dtype: st.dtype, numel: numel, data: data}
	r.storages[key] = s
	return s, nil
}

// rebuildTensor implements torch._utils._rebuild_tensor_v2(storage,
// storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
// for contiguous tensors.
type rebuildTensor struct{ r *ptReader }

// Call builds a *Tensor from the unpickled arguments.
func (rebuildTensor) Call(args ...any) (any, error) {
	if len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("tensorfile: _rebuild_tensor_v2 called with %d arguments, want 6 or 7", len(args))
	}
	s, ok := args[0].(*storage)
	if !ok {
		return nil, fmt.Errorf("tensorfile: _rebuild_tensor_v2: first argument is %s, not a storage", describe(args[0]))
	}
	offset, ok := args[1].(int)
	if !ok || offset < 0 {
		return nil, fmt.Errorf("tensorfile: _rebuild_tensor_v2: invalid storage offset")
	}
	shape, err := intTuple(args[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := intTuple(args[3], "stride")
	if err != nil {
		return nil, err
	}
	n, err := numElements(shape)
	if err != nil {
		return nil, err
	}
	if len(stride) != len(shape) {
		return nil, fmt.Errorf("tensorfile: tensor has shape %v but strides %v", shape, stride)
	}
	if n > 0 {
		want := contiguousStrides(shape)
		for i := range shape {
			if shape[i] > 1 && stride[i] != want[i] {
				return nil, fmt.Errorf("tensorfile: tensor with shape %v has strides %v; only contiguous (C-order) tensors are supported (want %v)", shape, stride, want)
			}
		}
	}
	if offset > s.numel || n > s.numel-offset {
		return nil, fmt.Errorf("tensorfile: tensor of shape %v at offset %d does not fit its storage of %d elements", shape, offset, s.numel)
	}
	size := s.dtype.size()
	return decodeData(s.dtype, shape, s.data[offset*size:(offset+n)*size])
}

// rebuildParameter implements torch._utils._rebuild_parameter(data,
// requires_grad, backward_hooks): a parameter is read as its data tensor.
type rebuildParameter struct{}

// Call returns the parameter's data tensor.
func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("tensorfile: _rebuild_parameter called without arguments")
	}
	t, ok := args[0].(*Tensor)
	if !ok {
		return nil, fmt.Errorf("tensorfile: _rebuild_parameter of %s", describe(args[0]))
	}
	return t, nil
}

// intTuple converts an unpickled tuple of ints.
func intTuple(v any, what string) ([]int, error) {
	tup, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("tensorfile: tensor %s is %s, want a tuple", what, describe(v))
	}
	out := make([]int, tup.Len())
	for i := range out {
		x, ok := tup.Get(i).(int)
		if !ok {
			return nil, fmt.Errorf("tensorfile: tensor %s has a non-int element", what)
		}
		out[i] = x
	}
	return out, nil
}

// scanPickle walks the opcodes of a pickle without executing them and checks
// that every length-prefixed argument fits in the data, so that the
// unpickler never allocates more than the input holds.
func scanPickle(b []byte) error {
	i := 0
	need := func(n uint64) error {
		if n > uint64(len(b)-i) {
			return fmt.Errorf("tensorfile: truncated or corrupt data.pkl (opcode at %d needs %d more bytes, %d left)", i, n, len(b)-i)
		}
		return nil
	}
	line := func() error {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return fmt.Errorf("tensorfile: corrupt data.pkl (unterminated line at %d)", i)
		}
		i += j + 1
		return nil
	}
	for i < len(b) {
		op := b[i]
		i++
		var fixed uint64
		switch op {
		case opStop:
			return nil
		case '(', '0', '1', '2', 'N', '}', 'a', 'b', 'd', ']', 'e', 'l', 'R', 's', 't', ')', 'u', 'o', 'Q',
			'\x81', '\x85', '\x86', '\x87', '\x88', '\x89', '\x8f', '\x90', '\x91', '\x92', '\x93', '\x94', '\x97', '\x98':
		case 'K', 'h', 'q', '\x82', '\x80':
			fixed = 1
		case 'M', '\x83':
			fixed = 2
		case 'J', 'j', 'r', '\x84':
			fixed = 4
		case 'G', '\x95':
			fixed = 8
		case 'I', 'L', 'F', 'S', 'V', 'P', 'g', 'p':
			if err := line(); err != nil {
				return err
			}
		case 'i', 'c':
			if err := line(); err != nil {
				return err
			}
			if err := line(); err != nil {
				return err
			}
		case 'U', 'C', '\x8c', '\x8a':
			if err := need(1); err != nil {
				return err
			}
			fixed = 1 + uint64(b[i])
		case 'T', 'B', 'X', '\x8b':
			if err := need(4); err != nil {
				return err
			}
			fixed = 4 + uint64(binary.LittleEndian.Uint32(b[i:]))
		case '\x8d', '\x8e', '\x96':
			if err := need(8); err != nil {
				return err
			}
			n := binary.LittleEndian.Uint64(b[i:])
			if n > uint64(len(b)) {
				return need(n)
			}
			fixed = 8 + n
		default:
			return fmt.Errorf("tensorfile: corrupt data.pkl (unknown opcode 0x%02x at %d)", op, i-1)
		}
		if err := need(fixed); err != nil {
			return err
		}
		if op == '\x95' { // FRAME: its length must fit too.
			if n := binary.LittleEndian.Uint64(b[i:]); n > uint64(len(b)-i-8) {
				return fmt.Errorf("tensorfile: corrupt data.pkl (frame of %d bytes at %d exceeds the data)", n, i-1)
			}
		}
		i += int(fixed)
	}
	return fmt.Errorf("tensorfile: truncated data.pkl (no STOP opcode)")
}

package tensorfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// courseStatesPT is the course's own states.pt, relative to this package.
const courseStatesPT = "../../../shared/data/states.pt"

func sampleFloat32(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(i)*0.25 - 3.5
	}
	return out
}

func TestNPYRoundTrip(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name  string
		data  []float32
		shape []int
	}{
		{"scalar", []float32{42.5}, []int{}},
		{"empty", []float32{}, []int{0}},
		{"vector", sampleFloat32(5), []int{5}},
		{"matrix", sampleFloat32(6), []int{3, 2}},
		{"rank3", sampleFloat32(24), []int{2, 3, 4}},
		{"special", []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), -0, math.MaxFloat32, math.SmallestNonzeroFloat32}, []int{6}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".npy")
			if err := WriteNPY(path, c.data, c.shape...); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			headerLen := int(binary.LittleEndian.Uint16(raw[8:10]))
			if (10+headerLen)%64 != 0 || raw[10+headerLen-1] != '\n' {
				t.Errorf("header of %d bytes is not 64-aligned and newline-terminated", headerLen)
			}
			if got := len(raw) - 10 - headerLen; got != 4*len(c.data) {
				t.Errorf("data section has %d bytes, want %d", got, 4*len(c.data))
			}
			data, shape, err := ReadNPY(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(shape, c.shape) {
				t.Errorf("shape %v, want %v", shape, c.shape)
			}
			if len(data) != len(c.data) {
				t.Fatalf("got %d elements, want %d", len(data), len(c.data))
			}
			for i := range data {
				if math.Float32bits(data[i]) != math.Float32bits(c.data[i]) {
					t.Errorf("element %d: got %v, want %v", i, data[i], c.data[i])
				}
			}
		})
	}
}

func TestNPYHeaderText(t *testing.T) {
	var buf bytes.Buffer
	tensor, err := NewFloat32(sampleFloat32(10), 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := EncodeNPY(&buf, tensor); err != nil {
		t.Fatal(err)
	}
	header := buf.String()[10:]
	want := "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 2), }"
	if !strings.HasPrefix(header, want) {
		t.Errorf("header %q does not start with %q", header[:len(want)], want)
	}
	buf.Reset()
	tensor.Shape = []int{10}
	if err := EncodeNPY(&buf, tensor); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "'shape': (10,), }") {
		t.Errorf("1-D shape not written as a 1-tuple: %q", buf.String()[10:80])
	}
}

func TestNPYFloat64AndInt64(t *testing.T) {
	dir := t.TempDir()
	f64 := &Tensor{DType: Float64, Shape: []int{2, 2}, Float64s: []float64{1.5, -2, 1e-3, 1e30}}
	path := filepath.Join(dir, "f64.npy")
	if err := WriteNPYTensor(path, f64); err != nil {
		t.Fatal(err)
	}
	data, shape, err := ReadNPY(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(shape, []int{2, 2}) || !reflect.DeepEqual(data, []float32{1.5, -2, 1e-3, 1e30}) {
		t.Errorf("float64 file read as %v %v", data, shape)
	}
	tooBig := &Tensor{DType: Float64, Shape: []int{1}, Float64s: []float64{1e300}}
	if err := WriteNPYTensor(path, tooBig); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadNPY(path); err == nil || !strings.Contains(err.Error(), "overflows float32") {
		t.Errorf("1e300 as float32: err = %v, want an overflow error", err)
	}
	i64 := &Tensor{DType: Int64, Shape: []int{3}, Int64s: []int64{0, -1, 1 << 40}}
	path = filepath.Join(dir, "i64.npy")
	if err := WriteNPYTensor(path, i64); err != nil {
		t.Fatal(err)
	}
	got, err := ReadNPYTensor(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, i64) {
		t.Errorf("int64 round trip: got %+v, want %+v", got, i64)
	}
	if _, _, err := ReadNPY(path); err == nil || !strings.Contains(err.Error(), "want float32 or float64") {
		t.Errorf("ReadNPY of int64 file: err = %v", err)
	}
}

func npyBytes(header string, data []byte) []byte {
	b := []byte(npyMagic + "\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(header)))
	return append(append(b, header...), data...)
}

func TestNPYErrors(t *testing.T) {
	eight := make([]byte, 8)
	cases := []struct {
		name  string
		input []byte
		want  string
	}{
		{"empty", nil, "bad magic"},
		{"magic", []byte("PK\x03\x04 not numpy"), "bad magic"},
		{"version", []byte(npyMagic + "\x09\x00\x00\x00"), "unsupported .npy format version 9.0"},
		{"short header", append([]byte(npyMagic+"\x01\x00"), 0xff, 0x00, '{'), "truncated .npy header"},
		{"big-endian", npyBytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", eight), "unsupported .npy dtype \">f4\""},
		{"int32", npyBytes("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }\n", eight), "unsupported .npy dtype"},
		{"fortran", npyBytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }\n", eight), "Fortran"},
		{"truncated data", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n", eight), "needs 12 data bytes, found 8"},
		{"trailing data", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", eight), "needs 4 data bytes, found 8"},
		{"missing key", npyBytes("{'descr': '<f4', 'shape': (2,), }\n", eight), "missing key \"fortran_order\""},
		{"bad shape", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }\n", eight), "shape is not a tuple"},
		{"huge shape", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }\n", eight), "too many elements"},
		{"unknown key", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", eight), "unexpected key"},
		{"not a dict", npyBytes("['descr']\n", eight), "expected '{'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeNPY(c.input)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	if _, _, err := ReadNPY(filepath.Join(t.TempDir(), "missing.npy")); err == nil {
		t.Error("ReadNPY of a missing file succeeded")
	}
}

func TestWriteRejectsBadShapes(t *testing.T) {
	dir := t.TempDir()
	if err := WriteNPY(filepath.Join(dir, "a.npy"), sampleFloat32(5), 2, 2); err == nil {
		t.Error("WriteNPY with 5 elements for shape [2 2] succeeded")
	}
	if err := WritePTTensor(filepath.Join(dir, "a.pt"), sampleFloat32(4), -2, -2); err == nil {
		t.Error("WritePTTensor with a negative shape succeeded")
	}
	if err := WritePTDict(filepath.Join(dir, "b.pt"), NamedTensor{"x", &Tensor{DType: "float16", Shape: []int{0}}}); err == nil {
		t.Error("WritePTDict with an unsupported dtype succeeded")
	}
	x, _ := NewFloat32(sampleFloat32(2))
	if err := WritePTDict(filepath.Join(dir, "c.pt"), NamedTensor{"x", x}, NamedTensor{"x", x}); err == nil {
		t.Error("WritePTDict with duplicate names succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("failed writes left files behind: %v", entries)
	}
}

// checkTorchZipLayout checks the record names and 64-byte data alignment of
// a written .pt archive.
func checkTorchZipLayout(t *testing.T, path string, wantNames []string) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		off, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		if off%64 != 0 {
			t.Errorf("record %s data at offset %d, not 64-aligned", f.Name, off)
		}
		if f.Method != zip.Store {
			t.Errorf("record %s is compressed", f.Name)
		}
	}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("records %v, want %v", names, wantNames)
	}
}

func TestPTTensorRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, shape := range [][]int{{}, {0}, {7}, {3, 2}, {2, 3, 4}, {1, 300}, {70000}} {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := sampleFloat32(n)
		path := filepath.Join(dir, "t.pt")
		if err := WritePTTensor(path, data, shape...); err != nil {
			t.Fatal(err)
		}
		checkTorchZipLayout(t, path, []string{"archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/version"})
		got, err := ReadPTTensor(path)
		if err != nil {
			t.Fatalf("shape %v: %v", shape, err)
		}
		if got.DType != Float32 || !reflect.DeepEqual(got.Shape, shape) || !reflect.DeepEqual(got.Float32s, data) {
			t.Errorf("shape %v: read back %s %v (%d elements)", shape, got.DType, got.Shape, len(got.Float32s))
		}
		if _, err := ReadPTDict(path); err == nil || !strings.Contains(err.Error(), "want a dict") {
			t.Errorf("ReadPTDict of a tensor file: err = %v", err)
		}
	}
}

func TestPTDictRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "states.pt")
	points, _ := NewFloat32(sampleFloat32(5000*2), 5000, 2)
	labelData := make([]int64, 5000)
	for i := range labelData {
		labelData[i] = int64(i / 1000)
	}
	labels, _ := NewInt64(labelData)
	f64 := &Tensor{DType: Float64, Shape: []int{2}, Float64s: []float64{math.Pi, -1e-300}}
	big, _ := NewInt64([]int64{math.MinInt64, math.MaxInt64, -1}, 3)
	if err := WritePTDict(path, NamedTensor{"data", points}, NamedTensor{"labels", labels}, NamedTensor{"pi", f64}, NamedTensor{"big", big}); err != nil {
		t.Fatal(err)
	}
	checkTorchZipLayout(t, path, []string{"archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/data/1", "archive/data/2", "archive/data/3", "archive/version"})
	got, err := ReadPTDict(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*Tensor{"data": points, "labels": labels, "pi": f64, "big": big}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dict round trip differs: got keys %v", keys(got))
	}
	if _, err := ReadPTTensor(path); err == nil || !strings.Contains(err.Error(), "want a tensor") {
		t.Errorf("ReadPTTensor of a dict file: err = %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.pt")
	if err := WritePTDict(empty); err != nil {
		t.Fatal(err)
	}
	if d, err := ReadPTDict(empty); err != nil || len(d) != 0 {
		t.Errorf("empty dict: %v, %v", d, err)
	}
}

func keys(m map[string]*Tensor) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestReadCourseStatesPT(t *testing.T) {
	if _, err := os.Stat(courseStatesPT); err != nil {
		t.Skipf("course file not available: %v", err)
	}
	d, err := ReadPTDict(courseStatesPT)
	if err != nil {
		t.Fatal(err)
	}
	data, labels := d["data"], d["labels"]
	if data == nil || labels == nil || len(d) != 2 {
		t.Fatalf("keys %v, want data and labels", keys(d))
	}
	if data.DType != Float32 || !reflect.DeepEqual(data.Shape, []int{5000, 2}) {
		t.Errorf("data is %s %v", data.DType, data.Shape)
	}
	if labels.DType != Int64 || !reflect.DeepEqual(labels.Shape, []int{5000}) {
		t.Errorf("labels is %s %v", labels.DType, labels.Shape)
	}
	counts := map[int64]int{}
	for _, l := range labels.Int64s {
		counts[l]++
	}
	if !reflect.DeepEqual(counts, map[int64]int{0: 1000, 1: 1000, 2: 1000, 3: 1000, 4: 1000}) {
		t.Errorf("label counts %v", counts)
	}
	var sum float64
	for i := 0; i < len(data.Float32s); i += 2 {
		sum += float64(data.Float32s[i])
	}
	if math.Abs(sum/5000) > 1e-3 {
		t.Errorf("mean of x is %g, want ~0 (data is standardized)", sum/5000)
	}
}

// ptWithPickle builds a torch zip archive around a hand-made pickle and the
// given storage records.
func ptWithPickle(t *testing.T, pkl []byte, records map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	write := func(name string, data []byte) {
		// Stored, not deflated: compressing large fuzz inputs would
		// dominate the fuzzing time.
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	write("archive/data.pkl", pkl)
	for name, data := range records {
		write("archive/"+name, data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tensorPickle pickles one rebuilt tensor with arbitrary storage metadata.
func tensorPickle(storageType string, numel, offset int, shape, stride []int) []byte {
	var p pickler
	p.begin()
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op(opMark)
	p.op(opMark)
	p.str("storage")
	p.global("torch", storageType)
	p.str("0")
	p.str("cpu")
	p.int(numel)
	p.op(opTuple)
	p.op(opBinPersID)
	p.int(offset)
	p.intTuple(shape)
	p.intTuple(stride)
	p.op(opNewFalse)
	p.global("collections", "OrderedDict")
	p.op(opEmptyTuple)
	p.op(opReduce)
	p.op(opTuple)
	p.op(opReduce)
	p.end()
	return p.buf.Bytes()
}

func TestPTReadViewsAndErrors(t *testing.T) {
	six := make([]byte, 24)
	for i := range 6 {
		binary.LittleEndian.PutUint32(six[4*i:], math.Float32bits(float32(i)))
	}
	// A contiguous view with a storage offset reads the right elements.
	view := ptWithPickle(t, tensorPickle("FloatStorage", 6, 2, []int{2, 2}, []int{2, 1}), map[string][]byte{"data/0": six})
	got, err := DecodePTTensor(view)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Float32s, []float32{2, 3, 4, 5}) {
		t.Errorf("view read as %v, want [2 3 4 5]", got.Float32s)
	}
	// Size-1 dimensions may have any stride (torch still calls them contiguous).
	if _, err := DecodePTTensor(ptWithPickle(t, tensorPickle("FloatStorage", 6, 0, []int{1, 6}, []int{1, 1}), map[string][]byte{"data/0": six})); err != nil {
		t.Errorf("[1 6] tensor with stride (1, 1): %v", err)
	}

	cases := []struct {
		name  string
		input []byte
		want  string
	}{
		{"not zip", []byte("\x80\x02}q\x00."), "not a torch zip archive"},
		{"transposed", ptWithPickle(t, tensorPickle("FloatStorage", 6, 0, []int{3, 2}, []int{1, 3}), map[string][]byte{"data/0": six}), "only contiguous"},
		{"half", ptWithPickle(t, tensorPickle("HalfStorage", 6, 0, []int{6}, []int{1}), map[string][]byte{"data/0": six}), "torch.HalfStorage is not supported"},
		{"missing storage", ptWithPickle(t, tensorPickle("FloatStorage", 6, 0, []int{6}, []int{1}), nil), "storage record \"archive/data/0\" missing"},
		{"short storage", ptWithPickle(t, tensorPickle("FloatStorage", 7, 0, []int{7}, []int{1}), map[string][]byte{"data/0": six}), "has 24 bytes, want 28"},
		{"out of storage", ptWithPickle(t, tensorPickle("FloatStorage", 6, 4, []int{3}, []int{1}), map[string][]byte{"data/0": six}), "does not fit its storage"},
		{"big endian", ptWithPickle(t, tensorPickle("FloatStorage", 6, 0, []int{6}, []int{1}), map[string][]byte{"data/0": six, "byteorder": []byte("big")}), "byteorder \"big\""},
		{"truncated pickle", ptWithPickle(t, tensorPickle("FloatStorage", 6, 0, []int{6}, []int{1})[:40], map[string][]byte{"data/0": six}), "data.pkl"},
		{"huge string", ptWithPickle(t, []byte("\x80\x02X\xff\xff\xff\x7f."), nil), "needs 2147483651 more bytes"},
		{"unknown class", ptWithPickle(t, []byte("\x80\x02cos\nsystem\n."), nil), "unsupported pickled class os.system"},
		{"not a tensor", ptWithPickle(t, []byte("\x80\x02K\x05."), nil), "holds an int, want a tensor"},
		{"no data.pkl", func() []byte {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			zw.Create("archive/version")
			zw.Close()
			return buf.Bytes()
		}(), "no data.pkl"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodePTTensor(c.input)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	var p pickler
	p.begin()
	p.op(opEmptyDict)
	p.op(opMark)
	p.str("x")
	p.int(3)
	p.op(opSetItems)
	p.end()
	if _, err := DecodePTDict(ptWithPickle(t, p.buf.Bytes(), nil)); err == nil || !strings.Contains(err.Error(), "entry \"x\" is an int") {
		t.Errorf("dict with an int value: err = %v", err)
	}
}

func TestPicklerInts(t *testing.T) {
	// Every integer encoding must be read back by the unpickler.
	for _, v := range []int{0, 255, 256, 65535, 65536, -1, math.MaxInt32, math.MinInt32, 1 << 40, -(1 << 40), math.MaxInt64, math.MinInt64} {
		var p pickler
		p.begin()
		p.int(v)
		p.end()
		got, err := decodeTestPickle(p.buf.Bytes())
		if err != nil {
			t.Fatalf("%d: %v", v, err)
		}
		if got != v {
			t.Errorf("pickled %d, unpickled %v", v, got)
		}
	}
}

func decodeTestPickle(pkl []byte) (any, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("archive/data.pkl")
	w.Write(pkl)
	zw.Close()
	return decodePT(buf.Bytes())
}

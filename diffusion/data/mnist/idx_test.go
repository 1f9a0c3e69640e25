package mnist

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"runtime"
	"strings"
	"testing"
)

// encodeIDX builds an IDX stream with the given header and data.
func encodeIDX(typ IDXType, dims []uint32, data []byte) []byte {
	b := []byte{0, 0, byte(typ), byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, data...)
}

// gzipped compresses b.
func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeIDXTypes(t *testing.T) {
	f32 := binary.BigEndian.AppendUint32(nil, math.Float32bits(-1.5))
	f64 := binary.BigEndian.AppendUint64(nil, math.Float64bits(2.25))
	for _, tc := range []struct {
		typ  IDXType
		data []byte
		want float64
	}{
		{IDXUint8, []byte{200}, 200},
		{IDXInt8, []byte{0xff}, -1},
		{IDXInt16, []byte{0xff, 0xfe}, -2},
		{IDXInt32, []byte{0, 1, 0, 0}, 65536},
		{IDXFloat32, f32, -1.5},
		{IDXFloat64, f64, 2.25},
	} {
		raw := encodeIDX(tc.typ, []uint32{1, 1}, tc.data)
		for name, stream := range map[string][]byte{"raw": raw, "gzip": gzipped(t, raw)} {
			a, err := DecodeIDX(bytes.NewReader(stream), 0)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.typ, name, err)
			}
			if a.Type != tc.typ || len(a.Dims) != 2 || a.Len() != 1 {
				t.Errorf("%s %s: got %s%v", tc.typ, name, a.Type, a.Dims)
			}
			if got := a.Float64s(); len(got) != 1 || got[0] != tc.want {
				t.Errorf("%s %s: value %v, want %v", tc.typ, name, got, tc.want)
			}
		}
	}
}

func TestDecodeIDXShape(t *testing.T) {
	data := make([]byte, 2*3*4)
	for i := range data {
		data[i] = byte(i)
	}
	a, err := DecodeIDX(bytes.NewReader(encodeIDX(IDXUint8, []uint32{2, 3, 4}, data)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Dims) != 3 || a.Dims[0] != 2 || a.Dims[1] != 3 || a.Dims[2] != 4 || !bytes.Equal(a.Data, data) {
		t.Errorf("got %v %v", a.Dims, a.Data)
	}
}

func TestDecodeIDXErrors(t *testing.T) {
	valid := encodeIDX(IDXUint8, []uint32{4}, []byte{1, 2, 3, 4})
	gz := gzipped(t, valid)
	badCRC := append([]byte(nil), gz...)
	badCRC[len(badCRC)-6] ^= 0xff // inside the CRC-32 of the trailer
	for _, tc := range []struct {
		name   string
		stream []byte
		want   string
	}{
		{"empty", nil, "empty file"},
		{"one byte", []byte{0}, "truncated header"},
		{"short magic", []byte{0, 0, 8}, "truncated header"},
		{"bad magic", []byte{1, 2, 8, 1, 0, 0, 0, 0}, "bad magic number"},
		{"unknown type", encodeIDX(0x07, []uint32{1}, []byte{1}), "unknown element type"},
		{"zero dims", []byte{0, 0, 8, 0}, "0 dimensions"},
		{"too many dims", []byte{0, 0, 8, 9}, "9 dimensions"},
		{"short dims", []byte{0, 0, 8, 3, 0, 0, 0, 1, 0, 0}, "truncated header"},
		{"truncated data", valid[:len(valid)-1], "truncated"},
		{"trailing data", append(append([]byte(nil), valid...), 9), "trailing bytes"},
		{"huge header", encodeIDX(IDXFloat64, []uint32{1 << 31, 1 << 31, 1 << 31}, nil), "more than the limit"},
		{"over limit", encodeIDX(IDXUint8, []uint32{1 << 30}, nil), "more than the limit"},
		{"truncated gzip", gz[:len(gz)-10], "gzip"},
		{"bad gzip checksum", badCRC, "gzip"},
		{"gzip header only", gz[:5], "gzip"},
		{"gzip of garbage", gzipped(t, []byte("hello world")), "bad magic number"},
	} {
		_, err := DecodeIDX(bytes.NewReader(tc.stream), 0)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
	}
}

// TestDecodeIDXLyingHeaderAllocatesLittle checks that a header promising far more data
// than the stream has does not make the decoder allocate what the header claims.
func TestDecodeIDXLyingHeaderAllocatesLittle(t *testing.T) {
	stream := encodeIDX(IDXUint8, []uint32{60000, 28, 28}, make([]byte, 100))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := DecodeIDX(bytes.NewReader(stream), 0)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("error %v, want truncated", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
		t.Errorf("allocated %d bytes for a 116-byte stream", got)
	}
}

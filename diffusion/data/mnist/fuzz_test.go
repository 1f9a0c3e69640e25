package mnist

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzDecodeIDX checks that any input gives either an error or a consistent array,
// never a panic, and that a decoded array encodes back to the same bytes.
func FuzzDecodeIDX(f *testing.F) {
	valid := encodeIDX(IDXUint8, []uint32{2, 2, 2}, []byte{0, 1, 2, 3, 4, 5, 6, 7})
	f.Add(valid)
	f.Add(gzipped(f, valid))
	f.Add(encodeIDX(IDXUint8, []uint32{3}, []byte{5, 0, 4}))
	f.Add(encodeIDX(IDXFloat64, []uint32{1}, make([]byte, 8)))
	f.Add(encodeIDX(IDXInt16, []uint32{0, 7}, nil))
	f.Add(valid[:len(valid)-3])
	f.Add(encodeIDX(IDXUint8, []uint32{60000, 28, 28}, nil))
	f.Add(gzipped(f, valid)[:20])
	f.Add([]byte{})
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 16
		a, err := DecodeIDX(bytes.NewReader(data), limit)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if len(a.Dims) < 1 || len(a.Dims) > MaxIDXDims || a.Type.Size() == 0 {
			t.Fatalf("accepted %s%v", a.Type, a.Dims)
		}
		if len(a.Data) != a.Len()*a.Type.Size() || len(a.Data) > limit {
			t.Fatalf("%s%v with %d bytes of data", a.Type, a.Dims, len(a.Data))
		}
		if got := a.Float64s(); len(got) != a.Len() {
			t.Fatalf("Float64s gave %d values for %d elements", len(got), a.Len())
		}
		dims := make([]uint32, len(a.Dims))
		for i, d := range a.Dims {
			dims[i] = uint32(d)
		}
		again := encodeIDX(a.Type, dims, a.Data)
		if !(len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b) && !bytes.Equal(again, data) {
			t.Fatalf("raw input does not round-trip")
		}
		if binary.BigEndian.Uint16(again) != 0 {
			t.Fatal("bad magic")
		}
	})
}

package tensorfile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fuzzSeedsNPY returns valid .npy encodings of several tensors.
func fuzzSeedsNPY(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, t := range []*Tensor{
		{DType: Float32, Shape: []int{3, 2}, Float32s: sampleFloat32(6)},
		{DType: Float32, Shape: []int{}, Float32s: []float32{1}},
		{DType: Float64, Shape: []int{2}, Float64s: []float64{1, 2}},
		{DType: Int64, Shape: []int{0, 4}, Int64s: []int64{}},
	} {
		var buf bytes.Buffer
		if err := EncodeNPY(&buf, t); err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, buf.Bytes())
	}
	return seeds
}

func FuzzDecodeNPY(f *testing.F) {
	for _, s := range fuzzSeedsNPY(f) {
		f.Add(s)
	}
	f.Add([]byte(npyMagic + "\x02\x00\x10\x00\x00\x00{'descr':'<f4',}"))
	f.Add(npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }", make([]byte, 8)))
	f.Fuzz(func(t *testing.T, b []byte) {
		defer failAfter(t, 10*time.Second)()
		tensor, err := DecodeNPY(b)
		if err != nil {
			return
		}
		if err := tensor.Validate(); err != nil {
			t.Fatalf("decoded an invalid tensor: %v", err)
		}
		// A decoded tensor re-encodes and decodes to the same shape.
		var buf bytes.Buffer
		if err := EncodeNPY(&buf, tensor); err != nil {
			t.Fatal(err)
		}
		again, err := DecodeNPY(buf.Bytes())
		if err != nil || again.NumElements() != tensor.NumElements() || again.DType != tensor.DType {
			t.Fatalf("re-encoding failed: %v", err)
		}
	})
}

// fuzzSeedsPT returns .pt files written by this package, plus the course's
// states.pt when it is available.
func fuzzSeedsPT(f *testing.F) [][]byte {
	dir := f.TempDir()
	single := filepath.Join(dir, "single.pt")
	if err := WritePTTensor(single, sampleFloat32(6), 2, 3); err != nil {
		f.Fatal(err)
	}
	dict := filepath.Join(dir, "dict.pt")
	labels, _ := NewInt64([]int64{0, 1, 2})
	points, _ := NewFloat32(sampleFloat32(6), 3, 2)
	if err := WritePTDict(dict, NamedTensor{"data", points}, NamedTensor{"labels", labels}); err != nil {
		f.Fatal(err)
	}
	var seeds [][]byte
	for _, p := range []string{single, dict, courseStatesPT} {
		if b, err := os.ReadFile(p); err == nil {
			seeds = append(seeds, b)
		}
	}
	return seeds
}

func FuzzDecodePT(f *testing.F) {
	for _, s := range fuzzSeedsPT(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		defer failAfter(t, 10*time.Second)()
		if tensor, err := DecodePTTensor(b); err == nil {
			if err := tensor.Validate(); err != nil {
				t.Fatalf("decoded an invalid tensor: %v", err)
			}
		}
		if d, err := DecodePTDict(b); err == nil {
			for name, tensor := range d {
				if err := tensor.Validate(); err != nil {
					t.Fatalf("decoded an invalid tensor %q: %v", name, err)
				}
			}
		}
	})
}

// FuzzDecodePickle fuzzes the pickle inside an otherwise valid archive, where
// mutations reach the unpickler instead of failing the zip checksum.
func FuzzDecodePickle(f *testing.F) {
	var p pickler
	p.begin()
	p.op(opEmptyDict)
	p.op(opMark)
	p.str("data")
	p.tensor(&Tensor{DType: Float32, Shape: []int{3, 2}, Float32s: sampleFloat32(6)}, "0")
	p.str("labels")
	p.tensor(&Tensor{DType: Int64, Shape: []int{1}, Int64s: []int64{1}}, "1")
	p.op(opSetItems)
	p.end()
	f.Add(p.buf.Bytes())
	f.Add(tensorPickle("FloatStorage", 6, 2, []int{2, 2}, []int{2, 1}))
	f.Add([]byte("\x80\x02\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01\x8c\x01a."))
	f.Fuzz(func(t *testing.T, pkl []byte) {
		defer failAfter(t, 10*time.Second)()
		storages := map[string][]byte{"data/0": make([]byte, 24), "data/1": make([]byte, 8)}
		archive := ptWithPickle(t, pkl, storages)
		if d, err := DecodePTDict(archive); err == nil {
			for name, tensor := range d {
				if err := tensor.Validate(); err != nil {
					t.Fatalf("decoded an invalid tensor %q: %v", name, err)
				}
			}
		}
		if tensor, err := DecodePTTensor(archive); err == nil {
			if err := tensor.Validate(); err != nil {
				t.Fatalf("decoded an invalid tensor: %v", err)
			}
		}
	})
}

// failAfter makes a decoder that runs longer than d crash the fuzz worker
// with a stack trace (so the fuzzer records the input), and returns the
// function that disarms it.
func failAfter(t *testing.T, d time.Duration) func() {
	timer := time.AfterFunc(d, func() {
		panic(fmt.Sprintf("%s: decoding took longer than %v", t.Name(), d))
	})
	return func() { timer.Stop() }
}

// Package tensorfile reads and writes small tensors in the file formats the
// diffusion coursework uses: NumPy .npy files and PyTorch .pt files (the zip
// format written by torch.save since PyTorch 1.6).
//
// All functions return errors for malformed input; none of them panics on
// corrupt files. Writers replace their destination atomically (a temporary
// file in the same directory is renamed over it).
package tensorfile

import (
	"fmt"
	"math"
)

// DType names the element type of a Tensor.
type DType string

// Element types supported by this package.
const (
	// Float32 is a 32-bit IEEE float (NumPy '<f4', torch.float32).
	Float32 DType = "float32"
	// Float64 is a 64-bit IEEE float (NumPy '<f8', torch.float64).
	Float64 DType = "float64"
	// Int64 is a 64-bit signed integer (NumPy '<i8', torch.int64).
	Int64 DType = "int64"
)

// size returns the number of bytes of one element, or 0 for an unknown DType.
func (d DType) size() int {
	switch d {
	case Float32:
		return 4
	case Float64, Int64:
		return 8
	}
	return 0
}

// Tensor is a dense, C-ordered (row-major) tensor. Exactly one of the data
// slices is used, the one matching DType; its length is the product of Shape
// (1 for a scalar with an empty Shape).
type Tensor struct {
	// DType is the element type.
	DType DType
	// Shape holds the size of each dimension, outermost first.
	Shape []int
	// Float32s holds the elements when DType is Float32.
	Float32s []float32
	// Float64s holds the elements when DType is Float64.
	Float64s []float64
	// Int64s holds the elements when DType is Int64.
	Int64s []int64
}

// NewFloat32 returns a float32 tensor holding data with the given shape. It
// does not copy data. Without a shape the tensor is one-dimensional; for a
// scalar pass an empty, non-nil shape ([]int{}...).
func NewFloat32(data []float32, shape ...int) (*Tensor, error) {
	t := &Tensor{DType: Float32, Shape: defaultShape(shape, len(data)), Float32s: data}
	return t, t.Validate()
}

// NewInt64 returns an int64 tensor holding data with the given shape. It does
// not copy data. Without a shape the tensor is one-dimensional; for a scalar
// pass an empty, non-nil shape ([]int{}...).
func NewInt64(data []int64, shape ...int) (*Tensor, error) {
	t := &Tensor{DType: Int64, Shape: defaultShape(shape, len(data)), Int64s: data}
	return t, t.Validate()
}

func defaultShape(shape []int, n int) []int {
	if shape == nil {
		return []int{n}
	}
	return append([]int(nil), shape...)
}

// NumElements returns the number of elements implied by Shape.
func (t *Tensor) NumElements() int {
	n, _ := numElements(t.Shape)
	return n
}

// dataLen returns the number of elements stored for the tensor's DType, or -1.
func (t *Tensor) dataLen() int {
	switch t.DType {
	case Float32:
		return len(t.Float32s)
	case Float64:
		return len(t.Float64s)
	case Int64:
		return len(t.Int64s)
	}
	return -1
}

// Validate checks that the DType is known, the shape has no negative
// dimensions and that the data length matches the shape.
func (t *Tensor) Validate() error {
	if t == nil {
		return fmt.Errorf("tensorfile: nil tensor")
	}
	if t.DType.size() == 0 {
		return fmt.Errorf("tensorfile: unsupported dtype %q", t.DType)
	}
	n, err := numElements(t.Shape)
	if err != nil {
		return err
	}
	if got := t.dataLen(); got != n {
		return fmt.Errorf("tensorfile: shape %v needs %d elements, %s data has %d", t.Shape, n, t.DType, got)
	}
	return nil
}

// maxElements bounds the element count of any tensor this package reads or
// writes, so that a corrupt header cannot request an absurd allocation.
const maxElements = 1 << 31

// numElements multiplies the dimensions of shape, rejecting negative sizes
// and overflow.
func numElements(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("tensorfile: negative dimension in shape %v", shape)
		}
		if d != 0 && n > maxElements/d {
			return 0, fmt.Errorf("tensorfile: shape %v has too many elements (limit %d)", shape, maxElements)
		}
		n *= d
	}
	return n, nil
}

// AsFloat32 returns the elements as float32: the data itself for a float32
// tensor, a converted copy for float64 (an error if a finite value does not
// fit in float32) and int64 (an error if a value is not exactly
// representable).
func (t *Tensor) AsFloat32() ([]float32, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	switch t.DType {
	case Float32:
		return t.Float32s, nil
	case Float64:
		out := make([]float32, len(t.Float64s))
		for i, v := range t.Float64s {
			f := float32(v)
			if math.IsInf(float64(f), 0) && !math.IsInf(v, 0) {
				return nil, fmt.Errorf("tensorfile: float64 element %d (%g) overflows float32", i, v)
			}
			out[i] = f
		}
		return out, nil
	default: // Int64
		out := make([]float32, len(t.Int64s))
		for i, v := range t.Int64s {
			f := float32(v)
			if int64(f) != v || v > 1<<24 || v < -(1<<24) {
				return nil, fmt.Errorf("tensorfile: int64 element %d (%d) is not exactly representable as float32", i, v)
			}
			out[i] = f
		}
		return out, nil
	}
}

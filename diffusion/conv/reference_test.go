package conv

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/godiffusion/notebooks/diffusion/backend"
)

// This file holds the references the blocks are proven against: naive float64 loop
// implementations of PyTorch's Conv2d, ConvTranspose2d and AvgPool2d on NHWC arrays, and a
// central finite-difference gradient checker.

func testBackend(tb testing.TB) compute.Backend {
	tb.Helper()
	b, err := backend.New()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// array is a dense float64 tensor for the references.
type array struct {
	dims []int
	data []float64
}

func newArray(dims ...int) array {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return array{dims: dims, data: make([]float64, n)}
}

func randArray(rng *rand.Rand, scale float64, dims ...int) array {
	a := newArray(dims...)
	for i := range a.data {
		a.data[i] = scale * (2*rng.Float64() - 1)
	}
	return a
}

func (a array) at(idx ...int) *float64 {
	flat := 0
	for i, d := range a.dims {
		if idx[i] < 0 || idx[i] >= d {
			panic(fmt.Sprintf("index %v out of %v", idx, a.dims))
		}
		flat = flat*d + idx[i]
	}
	return &a.data[flat]
}

func (a array) tensor() *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(append([]float64(nil), a.data...), a.dims...)
}

// refConv2d is PyTorch's Conv2d on x [B, H, W, C] with w [M, C, kh, kw] and bias [M] (may be
// empty), as plain loops.
func refConv2d(x, w, bias array, stride, pad int) array {
	b, h, wd, c := x.dims[0], x.dims[1], x.dims[2], x.dims[3]
	m, kh, kw := w.dims[0], w.dims[2], w.dims[3]
	ho, wo := (h+2*pad-kh)/stride+1, (wd+2*pad-kw)/stride+1
	out := newArray(b, ho, wo, m)
	for bi := range b {
		for i := range ho {
			for j := range wo {
				for mi := range m {
					s := 0.0
					if len(bias.data) > 0 {
						s = bias.data[mi]
					}
					for ky := range kh {
						for kx := range kw {
							y, xx := i*stride-pad+ky, j*stride-pad+kx
							if y < 0 || y >= h || xx < 0 || xx >= wd {
								continue
							}
							for ci := range c {
								s += *x.at(bi, y, xx, ci) * *w.at(mi, ci, ky, kx)
							}
						}
					}
					*out.at(bi, i, j, mi) = s
				}
			}
		}
	}
	return out
}

// refConvTranspose2d is PyTorch's ConvTranspose2d on x [B, H, W, C] with w [C, M, kh, kw]
// (PyTorch's layout) and bias [M] (may be empty).
func refConvTranspose2d(x, w, bias array, stride, pad int) array {
	b, h, wd, c := x.dims[0], x.dims[1], x.dims[2], x.dims[3]
	m, kh, kw := w.dims[1], w.dims[2], w.dims[3]
	ho, wo := (h-1)*stride-2*pad+kh, (wd-1)*stride-2*pad+kw
	out := newArray(b, ho, wo, m)
	for bi := range b {
		for i := range ho {
			for j := range wo {
				for mi := range m {
					if len(bias.data) > 0 {
						*out.at(bi, i, j, mi) = bias.data[mi]
					}
				}
			}
		}
		for i := range h {
			for j := range wd {
				for ky := range kh {
					for kx := range kw {
						y, xx := i*stride-pad+ky, j*stride-pad+kx
						if y < 0 || y >= ho || xx < 0 || xx >= wo {
							continue
						}
						for ci := range c {
							v := *x.at(bi, i, j, ci)
							for mi := range m {
								*out.at(bi, y, xx, mi) += v * *w.at(ci, mi, ky, kx)
							}
						}
					}
				}
			}
		}
	}
	return out
}

// refAvgPool is PyTorch's AvgPool2d(k) (stride k) on x [B, H, W, C].
func refAvgPool(x array, k int) array {
	b, h, w, c := x.dims[0], x.dims[1], x.dims[2], x.dims[3]
	out := newArray(b, h/k, w/k, c)
	for bi := range b {
		for i := range h / k {
			for j := range w / k {
				for ci := range c {
					s := 0.0
					for y := range k {
						for xx := range k {
							s += *x.at(bi, i*k+y, j*k+xx, ci)
						}
					}
					*out.at(bi, i, j, ci) = s / float64(k*k)
				}
			}
		}
	}
	return out
}

// blockCase is one block under test: fn builds its output from the inputs; ref computes the
// same output with the naive references.
type blockCase struct {
	name   string
	inputs []array
	fn     func(in []*Node) *Node
	ref    func(in []array) array
}

func maxAbsDiff(a, b []float64) (float64, int) {
	worst, at := 0.0, -1
	for i := range a {
		if d := math.Abs(a[i] - b[i]); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	return worst, at
}

// checkForward compares the block's output with the reference (float64: 1e-9).
func checkForward(t *testing.T, be compute.Backend, c blockCase) error {
	t.Helper()
	want := c.ref(c.inputs)
	exec, err := NewExec(be, func(in []*Node) *Node { return c.fn(in) })
	if err != nil {
		return err
	}
	args := make([]any, len(c.inputs))
	for i, a := range c.inputs {
		args[i] = a.tensor()
	}
	out, err := exec.Exec(args...)
	if err != nil {
		return err
	}
	got := tensors.MustCopyFlatData[float64](out[0])
	if !slices.Equal(out[0].Shape().Dimensions, want.dims) {
		return fmt.Errorf("%s: shape %v, want %v", c.name, out[0].Shape().Dimensions, want.dims)
	}
	if d, i := maxAbsDiff(got, want.data); d > 1e-9 {
		return fmt.Errorf("%s: forward differs from the reference by %g at %d (got %g, want %g)", c.name, d, i, got[i], want.data[i])
	}
	return nil
}

// checkGradients compares the gradients of loss = sum(out * R) (R random) with respect to
// every input with central finite differences in float64, on up to `samples` coordinates of
// each input. It returns an error describing the worst mismatch.
func checkGradients(t *testing.T, be compute.Backend, c blockCase, samples int) error {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	outDims := c.ref(c.inputs).dims
	r := randArray(rng, 1, outDims...)
	n := len(c.inputs)
	lossFn := func(in []*Node) *Node {
		out := c.fn(in)
		return ReduceAllSum(Mul(out, ConstTensor(out.Graph(), r.tensor())))
	}
	gradExec, err := NewExec(be, func(in []*Node) []*Node {
		loss := lossFn(in)
		return append([]*Node{loss}, Gradient(loss, in...)...)
	})
	if err != nil {
		return err
	}
	lossExec, err := NewExec(be, func(in []*Node) *Node { return lossFn(in) })
	if err != nil {
		return err
	}
	args := make([]any, n)
	for i, a := range c.inputs {
		args[i] = a.tensor()
	}
	outs, err := gradExec.Exec(args...)
	if err != nil {
		return err
	}
	evalLoss := func(in []array) float64 {
		a := make([]any, n)
		for i, x := range in {
			a[i] = x.tensor()
		}
		o, err := lossExec.Exec(a...)
		if err != nil {
			t.Fatal(err)
		}
		return tensors.ToScalar[float64](o[0])
	}
	const h = 1e-5
	for i := range n {
		grad := tensors.MustCopyFlatData[float64](outs[1+i])
		in := make([]array, n)
		for j := range n {
			in[j] = array{dims: c.inputs[j].dims, data: append([]float64(nil), c.inputs[j].data...)}
		}
		idx := rng.Perm(len(in[i].data))
		if len(idx) > samples {
			idx = idx[:samples]
		}
		for _, k := range idx {
			x0 := in[i].data[k]
			in[i].data[k] = x0 + h
			lp := evalLoss(in)
			in[i].data[k] = x0 - h
			lm := evalLoss(in)
			in[i].data[k] = x0
			fd := (lp - lm) / (2 * h)
			if math.Abs(fd-grad[k]) > 1e-6*math.Max(1, math.Abs(fd)) || math.IsNaN(grad[k]) {
				return fmt.Errorf("%s: d loss / d input[%d][%d] = %g, finite differences %g", c.name, i, k, grad[k], fd)
			}
		}
	}
	return nil
}

func runBlockCase(t *testing.T, c blockCase) {
	t.Run(c.name, func(t *testing.T) {
		be := testBackend(t)
		if err := checkForward(t, be, c); err != nil {
			t.Error(err)
		}
		if err := checkGradients(t, be, c, 40); err != nil {
			t.Error(err)
		}
	})
}

func shapeOf(a array) shapes.Shape {
	return shapes.Make(tensors.FromFlatDataAndDimensions(a.data, a.dims...).DType(), a.dims...)
}

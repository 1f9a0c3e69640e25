package backend

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// matMulCase is one layout of a matrix product: operand shapes and axes.
type matMulCase struct {
	name                  string
	lhs, rhs              []int
	lhsContract, lhsBatch []int
	rhsContract, rhsBatch []int
}

// matMulCases are the layouts of a product of sizes n x k x m (lhs [n, k], rhs [k, m] and
// every transposition, with and without a batch axis in any position).
func matMulCases(n, k, m int) []matMulCase {
	return []matMulCase{
		{"NN", []int{n, k}, []int{k, m}, []int{1}, nil, []int{0}, nil},
		{"NT", []int{n, k}, []int{m, k}, []int{1}, nil, []int{1}, nil},
		{"TN", []int{k, n}, []int{k, m}, []int{0}, nil, []int{0}, nil},
		{"TT", []int{k, n}, []int{m, k}, []int{0}, nil, []int{1}, nil},
		{"batch NN", []int{3, n, k}, []int{3, k, m}, []int{2}, []int{0}, []int{1}, []int{0}},
		{"batch TN", []int{3, k, n}, []int{3, m, k}, []int{1}, []int{0}, []int{2}, []int{0}},
		{"batch inside", []int{n, 3, k}, []int{k, 3, m}, []int{2}, []int{1}, []int{0}, []int{1}},
		{"two contracting", []int{n, k, 2}, []int{k, 2, m}, []int{1, 2}, nil, []int{0, 1}, nil},
		{"two free", []int{n, 2, k}, []int{k, m}, []int{2}, nil, []int{0}, nil},
	}
}

// randomTensor returns a maker of fresh tensors (one per backend) of normal values.
func randomTensor(rng *rand.Rand, dims []int) func() *tensors.Tensor {
	flat := make([]float32, shapes.Make(dtypes.Float32, dims...).Size())
	for i := range flat {
		flat[i] = float32(rng.NormFloat64())
	}
	return func() *tensors.Tensor { return tensors.FromFlatDataAndDimensions(slices.Clone(flat), dims...) }
}

// Every layout of a product, small and large, and the gradients through it give the same
// values with the MatMulLayouts rewrite as on the plain Go backend.
func TestMatMulLayoutsMatchPlainBackend(t *testing.T) {
	plain := plainGoBackend(t)
	rewritten := Rewrite(plain, Rewrites{MatMulLayouts: true})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range [][3]int{{5, 7, 3}, {300, 128, 130}} {
		for _, c := range matMulCases(size[0], size[1], size[2]) {
			t.Run(fmt.Sprintf("%v/%s", size, c.name), func(t *testing.T) {
				fn := func(x, w *Node) []*Node {
					y := DotGeneral(x, c.lhsContract, c.lhsBatch, w, c.rhsContract, c.rhsBatch)
					loss := ReduceAllSum(Square(Tanh(y)))
					g := Gradient(loss, x, w)
					return []*Node{y, g[0], g[1]}
				}
				x, w := randomTensor(rng, c.lhs), randomTensor(rng, c.rhs)
				want, err := ExecOnceN(plain, fn, x(), w())
				if err != nil {
					t.Fatal(err)
				}
				got, err := ExecOnceN(rewritten, fn, x(), w())
				if err != nil {
					t.Fatal(err)
				}
				for i := range want {
					if !want[i].Shape().Equal(got[i].Shape()) {
						t.Fatalf("output %d: shape %v, plain %v", i, got[i].Shape(), want[i].Shape())
					}
					a, b := tensors.MustCopyFlatData[float32](want[i]), tensors.MustCopyFlatData[float32](got[i])
					for j := range a {
						if d := math.Abs(float64(a[j] - b[j])); d > 1e-4*(1+math.Abs(float64(a[j]))) {
							t.Fatalf("output %d, element %d: %v, plain %v", i, j, b[j], a[j])
						}
					}
				}
			})
		}
	}
}

// The rewrite picks the row-major layout: transposes for the small products' operands that
// are not (when the product has the multiply-adds to pay for them and m is a multiple of 8),
// and none for a large product's rhs [m, k].
func TestMatMulLayoutPermutations(t *testing.T) {
	b := Rewrite(plainGoBackend(t), Rewrites{MatMulLayouts: true})
	for _, tc := range []struct {
		c        matMulCase
		lhs, rhs []int
		ok       bool
	}{
		{matMulCases(64, 64, 64)[0], nil, nil, true},
		{matMulCases(64, 64, 64)[1], nil, []int{1, 0}, true},
		{matMulCases(64, 64, 64)[2], []int{1, 0}, nil, true},
		{matMulCases(64, 64, 64)[3], []int{1, 0}, []int{1, 0}, true},
		{matMulCases(256, 256, 256)[1], nil, nil, true},
		{matMulCases(256, 256, 256)[3], []int{1, 0}, nil, true},
		{matMulCases(64, 64, 64)[5], []int{0, 2, 1}, []int{0, 2, 1}, true},
		{matMulCases(64, 64, 64)[6], []int{1, 0, 2}, []int{1, 0, 2}, true},
		{matMulCases(64, 64, 64)[7], nil, nil, false},
		{matMulCases(64, 64, 64)[8], nil, nil, false},
		// Too few multiply-adds per moved element: rhs [256, 1000] stays.
		{matMulCases(3, 1000, 256)[1], nil, nil, true},
		// m = 2 is not a multiple of 8.
		{matMulCases(1000, 256, 2)[1], nil, nil, true},
		// Worth it: lhs [1000, 3] is cheap to move.
		{matMulCases(3, 1000, 256)[2], []int{1, 0}, nil, true},
	} {
		bld := b.Builder("layout")
		f := bld.Main().(*elidingFunction)
		lhs, err := f.Parameter("lhs", shapes.Make(dtypes.Float32, tc.c.lhs...), nil)
		if err != nil {
			t.Fatal(err)
		}
		rhs, err := f.Parameter("rhs", shapes.Make(dtypes.Float32, tc.c.rhs...), nil)
		if err != nil {
			t.Fatal(err)
		}
		lp, rp, ok := f.matMulLayout(lhs, tc.c.lhsContract, tc.c.lhsBatch, rhs, tc.c.rhsContract, tc.c.rhsBatch)
		if ok != tc.ok || fmt.Sprint(lp) != fmt.Sprint(tc.lhs) || fmt.Sprint(rp) != fmt.Sprint(tc.rhs) {
			t.Errorf("%s %v x %v: permutations %v, %v (ok %v), want %v, %v (ok %v)", tc.c.name, tc.c.lhs, tc.c.rhs, lp, rp, ok, tc.lhs, tc.rhs, tc.ok)
		}
	}
}

// BenchmarkMatMulLayouts measures one product of each layout (package matMulCases: NN, NT,
// TN) on the plain Go backend and with the MatMulLayouts rewrite, at sizes of the
// assignments' small networks (n x k x m: the spiral score network's shards, the STATES
// denoiser's, the VAE's).
func BenchmarkMatMulLayouts(b *testing.B) {
	plain, err := compute.NewWithConfig(Effective("go"))
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Finalize()
	rewritten := Rewrite(plain, Rewrites{MatMulLayouts: true})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range [][3]int{{128, 128, 128}, {64, 128, 128}, {500, 256, 256}, {128, 784, 400}, {1000, 2, 256}, {3, 1000, 256}, {1000, 256, 2}} {
		for _, c := range matMulCases(size[0], size[1], size[2])[:3] {
			x0, w0 := randomTensor(rng, c.lhs), randomTensor(rng, c.rhs)
			for _, be := range []struct {
				name string
				b    compute.Backend
			}{{"plain", plain}, {"rewritten", rewritten}} {
				e := MustNewExec(be.b, func(x, w *Node) *Node {
					return DotGeneral(x, c.lhsContract, c.lhsBatch, w, c.rhsContract, c.rhsBatch)
				})
				x, w := x0(), w0()
				e.MustExec(x, w)
				b.Run(fmt.Sprintf("%dx%dx%d/%s/%s", size[0], size[1], size[2], c.name, be.name), func(b *testing.B) {
					for b.Loop() {
						e.MustExec(x, w)
					}
				})
			}
		}
	}
}

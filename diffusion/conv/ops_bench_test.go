package conv

import (
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
)

// BenchmarkUnaryOps times single go-backend ops on a [32, 57600] float32 array (one 28x28 feature
// map of the UNet): the cost model behind the formulations chosen in this package.
func BenchmarkUnaryOps(b *testing.B) {
	ops := []struct {
		name string
		f    func(x *Node) *Node
	}{
		{"identity_copy", func(x *Node) *Node { return x }},
		{"mulscalar", func(x *Node) *Node { return MulScalar(x, 1.5) }},
		{"mul", func(x *Node) *Node { return Mul(x, x) }},
		{"mul_chain4", func(x *Node) *Node { return Mul(Mul(Mul(Mul(x, x), x), x), x) }},
		{"tanh", Tanh},
		{"erf", Erf},
		{"exp", Exp},
		{"expm1", Expm1},
		{"rsqrt", Rsqrt},
		{"sqrt", Sqrt},
		{"abs", Abs},
		{"div", func(x *Node) *Node { return Div(x, AddScalar(x, 3)) }},
		{"maxscalar", func(x *Node) *Node { return MaxScalar(x, 0) }},
		{"round", Round},
		{"convert_i32", func(x *Node) *Node { return ConvertDType(x, dtypes.Int32) }},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			benchExec(b, func(in []*Node) []*Node { return []*Node{op.f(in[0])} }, randTensor(32, 57600))
		})
	}
}

// BenchmarkUnaryOps2 times the backend's fused single-op activations on the same array.
func BenchmarkUnaryOps2(b *testing.B) {
	ops := []struct {
		name string
		f    func(x *Node) *Node
	}{
		{"fusedgelu_exact", func(x *Node) *Node { return BackendFusedGelu(x, true) }},
		{"fusedgelu_tanh", func(x *Node) *Node { return BackendFusedGelu(x, false) }},
		{"logistic", Logistic},
		{"softmax_axis0_2", func(x *Node) *Node { return BackendFusedSoftmax(Reshape(x, 2, -1), 0) }},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			benchExec(b, func(in []*Node) []*Node { return []*Node{op.f(in[0])} }, randTensor(32, 57600))
		})
	}
}

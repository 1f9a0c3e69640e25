// Package safeexp is the one home of the exponential-based graph ops (exp, sigmoid, SiLU,
// softplus) that do not pay the AVX-SSE transition penalty of the go backend.
//
// The penalty: the go backend computes Exp, Logistic, Tanh and Erf per element with math.Exp
// (math.Tanh and math.Erf call it), an assembly routine that mixes VEX-encoded FMA with legacy
// SSE instructions. In SIMD builds the backend's matrix-product kernels return with the upper
// halves of the vector registers dirty, and math.Exp then takes 0.8 us per call instead of 14
// ns: on an AMD EPYC (Zen 3, family 25) with GODEBUG=asyncpreemptoff=1 set, 13.2 ms instead of
// 0.29 ms for 16384 calls right after a 128 x 128 product (BenchmarkExpAfterMatMul; clearing
// the upper halves after the product brings it back to 0.25 ms). math.Expm1, math.Log1p,
// math.Log and math.Sqrt are pure Go (legacy SSE only) and do not pay it (0.5 ms, 0.46 ms,
// 0.37 ms, 0.48 ms in the same run). Without asyncpreemptoff Go's asynchronous preemption
// dirties the registers too (Intel, docs/STATUS.md session 6). On an AMD EPYC Zen 5 (family 26,
// session 12) math.Expm1 pays it as well (0.21 ms fresh, 0.77 ms after the product), so there
// these forms help only where asyncpreemptoff is missing.
//
// So on the go backend of a SIMD build every op here is written with Expm1 instead of Exp, as
// exact in float32 (see each function); on other backends (XLA) and in builds without SIMD
// kernels it uses the plain ops. It also registers the gradient of Expm1, which GoMLX v0.28
// does not define, so that these forms can be differentiated (to any order).
package safeexp

import (
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"

	"github.com/godiffusion/notebooks/diffusion/backend"
)

// GoMLX v0.28 defines no gradient for Expm1 ("no gradient is defined yet"). This registers
// d/dx expm1(x) = expm1(x) + 1 in GoMLX's table of gradients, the extension point it documents
// for ops without one; a GoMLX version that defines its own is left alone.
func init() {
	if _, ok := graph.VJPRegistration[graph.NodeTypeExpm1]; ok {
		return
	}
	graph.VJPRegistration[graph.NodeTypeExpm1] = func(node *graph.Node, vjpOutputs []*graph.Node, _ shapes.Shape) []*graph.Node {
		return []*graph.Node{graph.Mul(vjpOutputs[0], graph.AddScalar(node, 1))}
	}
}

// Needed reports whether graphs of g avoid math.Exp: the go backend in a SIMD build (whatever
// GODEBUG says: the matrix kernels dirty the registers by themselves).
func Needed(g *graph.Graph) bool {
	return backend.IsGo(g.Backend()) && backend.SIMDBuild()
}

// maxArg bounds the arguments of Expm1 where its result is inverted (e^88 < float32's largest
// value): the result stays finite, so the gradients stay finite too (an infinite expm1 would
// give 0 * Inf = NaN in the backward pass), at a cost of values near 6e-39 instead of 0.
const maxArg = 88

// Exp is exp(x). Where Needed: e = expm1(a) + 1 with a = |x| (capped at 88 for x < 0), >= 1
// with a relative error within float32's epsilon, and exp(x) = e for x >= 0, 1/e for x < 0.
func Exp(x *graph.Node) *graph.Node {
	if !Needed(x.Graph()) {
		return graph.Exp(x)
	}
	nonNeg := graph.GreaterOrEqual(x, graph.ZerosLike(x))
	a := graph.Abs(x)
	e := graph.AddScalar(graph.Expm1(graph.Where(nonNeg, a, graph.MinScalar(a, maxArg))), 1)
	return graph.Where(nonNeg, e, graph.Reciprocal(e))
}

// ExpNonPositive is exp(v) for v <= 0 (e.g. -|x|): where Needed 1 / (expm1(min(-v, 88)) + 1),
// one Expm1 and no select.
func ExpNonPositive(v *graph.Node) *graph.Node {
	if !Needed(v.Graph()) {
		return graph.Exp(v)
	}
	return graph.Reciprocal(graph.AddScalar(graph.Expm1(graph.MinScalar(graph.Neg(v), maxArg)), 1))
}

// SigmoidOfNeg is sigmoid(-v) = 1 / (1 + exp(v)); where Needed 1 / (2 + expm1(min(v, 88))),
// exact for every v (expm1 > -1).
func SigmoidOfNeg(v *graph.Node) *graph.Node {
	if !Needed(v.Graph()) {
		return graph.Reciprocal(graph.AddScalar(graph.Exp(v), 1))
	}
	return graph.Reciprocal(graph.AddScalar(graph.Expm1(graph.MinScalar(v, maxArg)), 2))
}

// Sigmoid is the logistic function 1 / (1 + exp(-x)) (the backend's Logistic op calls
// math.Exp: where Needed, SigmoidOfNeg(-x)).
func Sigmoid(x *graph.Node) *graph.Node {
	if !Needed(x.Graph()) {
		return graph.Sigmoid(x)
	}
	return SigmoidOfNeg(graph.Neg(x))
}

// SiLU is x sigmoid(x) (swish); where Needed x / (2 + expm1(-max(x, -88))), one pass fewer
// than x times Sigmoid(x).
func SiLU(x *graph.Node) *graph.Node {
	if !Needed(x.Graph()) {
		return graph.Mul(x, graph.Sigmoid(x))
	}
	return graph.Div(x, graph.AddScalar(graph.Expm1(graph.Neg(graph.MaxScalar(x, -maxArg))), 2))
}

// Softplus is log(1 + exp(x)), computed stably as max(x, 0) + log1p(exp(-|x|)).
func Softplus(x *graph.Node) *graph.Node {
	zeros := graph.ZerosLike(x)
	pos := graph.Where(graph.GreaterOrEqual(x, zeros), x, zeros)
	return graph.Add(pos, graph.Log1P(ExpNonPositive(graph.Neg(graph.Abs(x)))))
}

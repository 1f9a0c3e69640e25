package safeexp

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/godiffusion/notebooks/diffusion/backend"
)

var inputs = []float32{-200, -100, -88, -30, -5, -1, -0.3, -1e-4, 0, 1e-4, 0.3, 1, 5, 30, 80}

type op struct {
	name      string
	f         func(*graph.Node) *graph.Node
	ref, dref func(float64) float64 // value and derivative
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

var ops = []op{
	{"Exp", Exp, math.Exp, math.Exp},
	{"ExpNonPositive", func(x *graph.Node) *graph.Node { return ExpNonPositive(graph.Neg(graph.Abs(x))) },
		func(x float64) float64 { return math.Exp(-math.Abs(x)) },
		func(x float64) float64 { return -math.Copysign(1, x) * math.Exp(-math.Abs(x)) }},
	{"Sigmoid", Sigmoid, sigmoid, func(x float64) float64 { return sigmoid(x) * (1 - sigmoid(x)) }},
	{"SigmoidOfNeg", SigmoidOfNeg, func(x float64) float64 { return sigmoid(-x) }, func(x float64) float64 { return -sigmoid(x) * (1 - sigmoid(x)) }},
	{"SiLU", SiLU, func(x float64) float64 { return x * sigmoid(x) }, func(x float64) float64 { return sigmoid(x) * (1 + x*(1-sigmoid(x))) }},
	{"Softplus", Softplus, func(x float64) float64 { return math.Max(x, 0) + math.Log1p(math.Exp(-math.Abs(x))) }, sigmoid},
}

// close reports whether got is within float32 rounding of want: relative 2e-6, or absolute
// 1e-35 near 0 (the capped forms give ~6e-39 for 0, SiLU(-200) -1.2e-36).
func close(got float32, want float64) bool {
	if math.IsInf(want, 0) {
		return math.IsInf(float64(got), int(math.Copysign(1, want)))
	}
	return math.Abs(float64(got)-want) <= 2e-6*math.Abs(want)+1e-35
}

// Every form matches its float64 reference in value and derivative over [-200, 80] (ExpNonPositive at
// 0 excepted: |x| has no derivative there), with finite gradients everywhere, also where the
// plain exp underflows or the expm1 inside would overflow.
func TestValuesAndGradients(t *testing.T) {
	be, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ops {
		e, err := graph.NewExec(be, func(x *graph.Node) []*graph.Node {
			y := o.f(x)
			return []*graph.Node{y, graph.Gradient(graph.ReduceAllSum(y), x)[0]}
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.Exec(inputs)
		if err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		ys, ds := tensors.MustCopyFlatData[float32](out[0]), tensors.MustCopyFlatData[float32](out[1])
		for i, x := range inputs {
			if !close(ys[i], o.ref(float64(x))) {
				t.Errorf("%s(%v) = %v, want %v", o.name, x, ys[i], o.ref(float64(x)))
			}
			d := float64(ds[i])
			if math.IsNaN(d) || (math.IsInf(d, 0) && !math.IsInf(o.dref(float64(x)), 0)) {
				t.Errorf("%s'(%v) = %v", o.name, x, d)
				continue
			}
			if o.name == "ExpNonPositive" && x == 0 {
				continue
			}
			if want := o.dref(float64(x)); math.Abs(d-want) > 1e-5*math.Abs(want)+1e-7 { // float32: 1 - sigmoid(30) = 0
				t.Errorf("%s'(%v) = %v, want %v", o.name, x, d, want)
			}
		}
	}
}

// The second derivative of SiLU (what the Hyvarinen loss differentiates through) matches
// the analytic one.
func TestSecondDerivative(t *testing.T) {
	be, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	e, err := graph.NewExec(be, func(x *graph.Node) *graph.Node {
		d := graph.Gradient(graph.ReduceAllSum(SiLU(x)), x)[0]
		return graph.Gradient(graph.ReduceAllSum(d), x)[0]
	})
	if err != nil {
		t.Fatal(err)
	}
	xs := []float32{-30, -3, -0.5, 0, 0.5, 3, 30}
	got := tensors.MustCopyFlatData[float32](e.MustExec(xs)[0])
	for i, x := range xs {
		s := sigmoid(float64(x))
		want := s * (1 - s) * (2 + float64(x)*(1-2*s))
		if math.Abs(float64(got[i])-want) > 1e-5 {
			t.Errorf("SiLU''(%v) = %v, want %v", x, got[i], want)
		}
	}
}

// Where Needed (the go backend of a SIMD build), no form leaves an Exp, Logistic, Tanh or Erf
// op in its graph, forward or backward: none calls math.Exp.
func TestNoExpOps(t *testing.T) {
	be, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	g := graph.NewGraph(be, "probe")
	if !Needed(g) {
		t.Skipf("not needed on backend %q (SIMD build %v)", be.Name(), backend.SIMDBuild())
	}
	for _, o := range ops {
		g := graph.NewGraph(be, o.name)
		x := graph.Parameter(g, "x", graph.Const(g, inputs).Shape())
		y := o.f(x)
		graph.Gradient(graph.ReduceAllSum(graph.Gradient(graph.ReduceAllSum(y), x)[0]), x)
		for _, n := range g.Nodes() {
			switch n.Type() {
			case graph.NodeTypeExp, graph.NodeTypeLogistic, graph.NodeTypeTanh, graph.NodeTypeErf:
				t.Errorf("%s: the graph has a %s op", o.name, n.Type())
			}
		}
	}
}

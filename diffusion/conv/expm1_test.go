package conv

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
)

// TestExpm1Gradient checks the gradient registered for Expm1 (package safeexp) against exp(x), and the
// tanh-GELU decomposition through Expm1 against its closed form, value and derivative, on
// the go backend (autodiff through the decomposed form is what guidance gradients use).
func TestExpm1Gradient(t *testing.T) {
	be := testBackend(t)
	xs := []float64{-40, -5, -1, -1e-3, 0, 1e-4, 0.5, 3, 20}
	exec, err := NewExec(be, func(x *Node) []*Node {
		y := Expm1(x)
		gelu, _ := implOf(GELUTanh).apply(x)
		return []*Node{y, Gradient(ReduceAllSum(y), x)[0], gelu, Gradient(ReduceAllSum(gelu), x)[0]}
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec(xs)
	if err != nil {
		t.Fatal(err)
	}
	y, dy := out[0].Value().([]float64), out[1].Value().([]float64)
	g, dg := out[2].Value().([]float64), out[3].Value().([]float64)
	for i, x := range xs {
		if want := math.Expm1(x); y[i] != want {
			t.Errorf("expm1(%g) = %g, want %g", x, y[i], want)
		}
		if want := math.Exp(x); math.Abs(dy[i]-want) > 1e-15*math.Max(1, want) {
			t.Errorf("d expm1/dx at %g = %g, want exp(x) = %g", x, dy[i], want)
		}
		u := geluK * (x + geluC*x*x*x)
		th := math.Tanh(u)
		wantG := 0.5 * x * (1 + th)
		wantD := 0.5*(1+th) + 0.5*x*(1-th*th)*geluK*(1+3*geluC*x*x)
		if math.Abs(g[i]-wantG) > 1e-14*math.Max(1, math.Abs(wantG)) {
			t.Errorf("gelu_tanh(%g) = %.17g, want %.17g", x, g[i], wantG)
		}
		if math.Abs(dg[i]-wantD) > 1e-13 {
			t.Errorf("gelu_tanh'(%g) = %.17g, want %.17g", x, dg[i], wantD)
		}
	}
}

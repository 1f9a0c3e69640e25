package nets

import (
	"fmt"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers/activation"

	"github.com/godiffusion/notebooks/diffusion/backend"
)

// reluAndGradient returns relu(x) and the gradient of sum(relu(x) * w) with respect to x.
func reluAndGradient(relu func(*Node) *Node) func(x, w *Node) []*Node {
	return func(x, w *Node) []*Node {
		y := relu(x)
		return []*Node{y, Gradient(ReduceAllSum(Mul(y, w)), x)[0]}
	}
}

func ourReLU(x *Node) *Node { return ApplyActivation(nil, ReLU, x) }

// Our ReLU gives the values and gradients of GoMLX's activation.Relu (Max(x, 0)), including
// at x = 0, where both pass the gradient through.
func TestReLUMatchesMax(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	x := [][]float32{{-2, -0.5, 0, 0.25, 3}, {1e-30, -1e-30, 7, -7, 0}}
	w := [][]float32{{1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}}
	want, err := ExecOnceN(b, reluAndGradient(activation.Relu), x, w)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ExecOnceN(b, reluAndGradient(ourReLU), x, w)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"values", "gradients"} {
		if want[i].String() != got[i].String() {
			t.Errorf("%s: Max(x, 0) gives %v, ours %v", name, want[i], got[i])
		}
	}
	if g := got[1].Value().([][]float32); g[0][2] != 3 || g[0][1] != 0 {
		t.Errorf("gradient at x = 0 is %v, at x = -0.5 %v: want 3 and 0", g[0][2], g[0][1])
	}
}

// BenchmarkReLUGradient compares relu(x) and its gradient for x of [5000, 500] (the
// classifier's widest layer at 5000 guided samples): GoMLX's activation.Relu against ours.
func BenchmarkReLUGradient(b *testing.B) {
	be, err := backend.New()
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([][]float32, 5000)
	for i := range x {
		x[i] = make([]float32, 500)
		for j := range x[i] {
			x[i][j] = float32(rng.NormFloat64())
		}
	}
	xt := tensors.FromValue(x)
	for _, c := range []struct {
		name string
		relu func(*Node) *Node
	}{{"max", activation.Relu}, {"where", ourReLU}} {
		b.Run(fmt.Sprintf("relu=%s", c.name), func(b *testing.B) {
			exec, err := NewExec(be, reluAndGradient(c.relu))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := exec.Exec(xt, xt); err != nil { // compile outside the timing
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := exec.Exec(xt, xt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package spiral

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// The gradient of the Hyvarinen loss with respect to the weights (GoMLX differentiates
// through the two backward passes of the trace) equals finite differences of the loss.
func TestHyvarinenWeightGradientMatchesFiniteDifferences(t *testing.T) {
	b := testBackend(t)
	for _, cfg := range []NetConfig{DefaultNet(), {Width: 32, Layers: 2, Activation: "silu", TimeInput: TimeT}} {
		n, err := NewNet(b, cfg, DefaultProcess(), 5)
		if err != nil {
			t.Fatal(err)
		}
		batch, err := drawBatch(testMixture(t), Dim, n.Process, batchOptions{size: 64, tMin: 0.005, skew: 3, weighting: Uniform}, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		args := batch.tensors()[:4]
		var vars []*model.Variable
		for v := range n.store.Scope("/" + NetScope).IterVariables() {
			if v.Trainable {
				vars = append(vars, v)
			}
		}
		exec, err := model.NewExec(n.backend, n.store, func(scope *model.Scope, in []*Node) []*Node {
			s, tr := n.scoreAndTrace(scope, in[0], in[1], nil)
			loss := ReduceAllMean(hyvarinenLoss(s, tr))
			return append([]*Node{loss}, scope.BuildTrainableVariablesGradientsGraph(loss)...)
		})
		if err != nil {
			t.Fatal(err)
		}
		lossOnly, err := model.NewExec(n.backend, n.store, func(scope *model.Scope, in []*Node) *Node {
			s, tr := n.scoreAndTrace(scope, in[0], in[1], nil)
			return ReduceAllMean(hyvarinenLoss(s, tr))
		})
		if err != nil {
			t.Fatal(err)
		}
		outs, err := exec.Call(args...)
		if err != nil {
			t.Fatal(err)
		}
		loss := func() float64 {
			out, err := lossOnly.Call1(args...)
			if err != nil {
				t.Fatal(err)
			}
			return float64(tensors.ToScalar[float32](out))
		}
		checked := 0
		for vi, v := range vars {
			grad := tensors.MustCopyFlatData[float32](outs[1+vi])
			value, _ := v.Value()
			w := tensors.MustCopyFlatData[float32](value)
			dims := append([]int(nil), value.Shape().Dimensions...)
			// The element with the largest gradient.
			j := 0
			for i := range grad {
				if math.Abs(float64(grad[i])) > math.Abs(float64(grad[j])) {
					j = i
				}
			}
			if math.Abs(float64(grad[j])) < 1e-2 {
				continue
			}
			h := float32(1e-2) * max(1, float32(math.Abs(float64(w[j]))))
			set := func(x float32) {
				c := append([]float32(nil), w...)
				c[j] = x
				if err := v.SetValue(tensors.FromFlatDataAndDimensions(c, dims...)); err != nil {
					t.Fatal(err)
				}
			}
			set(w[j] + h)
			lp := loss()
			set(w[j] - h)
			lm := loss()
			set(w[j])
			fd := (lp - lm) / float64(2*h)
			if math.Abs(fd-float64(grad[j])) > 0.05*math.Abs(float64(grad[j]))+1e-2 {
				t.Errorf("%+v: d loss / d %s[%d]: autodiff %v, finite differences %v", cfg, v.Path(), j, grad[j], fd)
			}
			checked++
		}
		if checked < 3 {
			t.Errorf("only %d variables checked", checked)
		}
	}
}

package ema

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/backend"
)

// A weight stepped to 1, 2, 3 in a graph has the average the recurrence gives, and Apply
// copies it into the weight.
func TestUpdateAndApply(t *testing.T) {
	be, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	store := model.NewStore()
	w := store.VariableWithValue("/net/w", tensors.FromValue([]float32{0, 10}))
	a, err := New(store, []*model.Variable{w})
	if err != nil {
		t.Fatal(err)
	}
	exec, err := model.NewExec(be, store, func(scope *model.Scope, inputs []*Node) {
		g := inputs[0].Graph()
		w.SetNodeValue(AddScalar(w.NodeValue(g), 1)) // the "optimizer update"
		a.Update(g, inputs[0])
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0, 10}
	for k := range 3 {
		d := WarmupDecay(0.9, k)
		if _, err := exec.Exec(float32(d)); err != nil {
			t.Fatal(err)
		}
		for j := range want {
			wj := float64(k+1) + 10*float64(j)
			want[j] = wj + d*(want[j]-wj)
		}
	}
	if err := a.Apply(); err != nil {
		t.Fatal(err)
	}
	v, err := w.Value()
	if err != nil {
		t.Fatal(err)
	}
	got := tensors.MustCopyFlatData[float32](v)
	for j := range want {
		if math.Abs(float64(got[j])-want[j]) > 1e-5 {
			t.Errorf("average %d = %g, want %g", j, got[j], want[j])
		}
	}
	if WarmupDecay(0.999, 0) != 0.1 || WarmupDecay(0.5, 1000) != 0.5 {
		t.Errorf("warm-up: %g %g", WarmupDecay(0.999, 0), WarmupDecay(0.5, 1000))
	}
}

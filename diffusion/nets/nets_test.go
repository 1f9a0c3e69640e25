package nets

import (
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/backend"
)

func TestSizes(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	store := model.NewStore()
	out, err := model.CallOnceN(b, store, func(scope *model.Scope, g *Graph) []*Node {
		x := Zeros(g, shapes.Make(dtypes.Float32, 7, 2))
		tn := Zeros(g, shapes.Make(dtypes.Float32, 7))
		return []*Node{
			Denoiser(scope.In("denoiser"), DefaultDenoiserConfig(), x, tn),
			Classifier(scope.In("classifier"), DefaultClassifierConfig(), x, Scalar(g, dtypes.Float32, 0.5)),
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !out[0].Shape().Equal(shapes.Make(dtypes.Float32, 7, 2)) || !out[1].Shape().Equal(shapes.Make(dtypes.Float32, 7, 5)) {
		t.Fatalf("shapes %s %s", out[0].Shape(), out[1].Shape())
	}
	// 3->256 (+PReLU), 3 x 256->256 (+PReLU), 256->2.
	if n := store.Scope("/denoiser").NumParameters(); n != 3*256+256+3*(256*256+256)+256*2+2+4 {
		t.Errorf("denoiser parameters: %d", n)
	}
	if n := store.Scope("/classifier").NumParameters(); n != 3*100+100+100*200+200+200*500+500+500*5+5 {
		t.Errorf("classifier parameters: %d", n)
	}
	// PyTorch-style init: weights within +-1/sqrt(fan_in), PReLU slopes 0.25.
	for v := range store.IterVariables() {
		if v.Name() == "prelu" {
			if got := v.MustValue().Value().(float32); got != 0.25 {
				t.Errorf("%s = %g", v.Path(), got)
			}
		}
	}
	for _, c := range []DenoiserConfig{{DataDim: 0, HiddenWidth: 1}, {DataDim: 2, HiddenWidth: 8, HiddenLayers: 1, Activation: "x"}} {
		if c.Validate() == nil {
			t.Errorf("%+v: want error", c)
		}
	}
}

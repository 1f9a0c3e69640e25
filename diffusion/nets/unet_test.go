package nets

import (
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/backend"
)

func TestUNetShapesAndParameters(t *testing.T) {
	be, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []UNetConfig{
		DefaultUNetConfig(8),
		{Channels: 1, ImageSize: 28, Hidden: 8, TimeConditioned: true, Activation: "gelu_tanh"},
		{Channels: 1, ImageSize: 28, Hidden: 8, TimeConditioned: true, NumClasses: 10, Activation: "gelu_tanh"},
		{Channels: 1, ImageSize: 28, Hidden: 8, TimeConditioned: true, NumClasses: 10, SinusoidalTimeDim: 16, Modulation: ModulationAdd, Activation: "gelu"},
	} {
		store := model.NewStore()
		out, err := model.CallOnceN(be, store, func(scope *model.Scope, g *Graph) []*Node {
			x := Zeros(g, shapes.Make(dtypes.Float32, 3, 28, 28, 1))
			var tt, c *Node
			if cfg.TimeConditioned {
				tt = Zeros(g, shapes.Make(dtypes.Float32, 3))
			}
			if cfg.NumClasses > 0 {
				c = Zeros(g, shapes.Make(dtypes.Float32, 3, cfg.NumClasses))
			}
			return []*Node{UNet(scope.In("unet"), cfg, x, tt, c)}
		})
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		if !out[0].Shape().Equal(shapes.Make(dtypes.Float32, 3, 28, 28, 1)) {
			t.Errorf("%+v: output shape %s", cfg, out[0].Shape())
		}
		t.Logf("%+v: %d parameters", cfg, trainableParameters(store))
	}
	// The same count as PyTorch for D=32 (bench/torch_unet.py prints params=495137; running
	// statistics are buffers there, non-trainable variables here).
	store := model.NewStore()
	_, err = model.CallOnceN(be, store, func(scope *model.Scope, g *Graph) []*Node {
		return []*Node{UNet(scope, DefaultUNetConfig(32), Zeros(g, shapes.Make(dtypes.Float32, 2, 28, 28, 1)), nil, nil)}
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := trainableParameters(store); n != 495137 {
		t.Errorf("D=32 UNet has %d trainable parameters, PyTorch's has 495137", n)
	}
}

func trainableParameters(store *model.Store) int {
	n := 0
	for v := range store.IterVariables() {
		if v.Trainable {
			n += v.Shape().Size()
		}
	}
	return n
}

// TestUNetTimingShards checks the sharded timing computations of unetbench: a batch of 3 in 2
// shards (1 and 2 examples) trains with a finite loss and runs forward; more shards than
// examples is an error that says so.
func TestUNetTimingShards(t *testing.T) {
	be, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := UNetConfig{Channels: 1, ImageSize: 28, Hidden: 4, TimeConditioned: true, NumClasses: 10, Activation: "gelu_tanh"}
	step, err := UNetTrainStep(be, cfg, 3, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		loss, err := step()
		if err != nil {
			t.Fatal(err)
		}
		if !(loss > 0 && loss < 100) {
			t.Fatalf("sharded training step: loss %v, want a finite positive mean squared error", loss)
		}
	}
	call, err := UNetForward(be, cfg, 3, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := call(); err != nil {
		t.Fatal(err)
	}
	if _, err := UNetForward(be, cfg, 3, 4, 1); err == nil || !strings.Contains(err.Error(), "4 shards") {
		t.Errorf("a batch of 3 in 4 shards: %v, want an error naming the shards", err)
	}
}

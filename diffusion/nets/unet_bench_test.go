package nets

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/conv"
)

// The UNet benchmarks have a PyTorch twin, bench/torch_unet.py (same architecture, loss,
// optimizer and batch). Run both pinned to the same core, e.g.
//
//	GOEXPERIMENT=simd GOMLX_BACKEND=go taskset -c 1 go test ./diffusion/nets -run XXX -bench UNet -benchtime 10x
//	taskset -c 1 /usr/bin/python3 bench/torch_unet.py --threads 1 --gelu tanh

func randImages(rng *rand.Rand, n int, scale float32) *tensors.Tensor {
	data := make([]float32, n*28*28)
	for i := range data {
		data[i] = scale * float32(rng.NormFloat64())
	}
	return tensors.FromFlatDataAndDimensions(data, n, 28, 28, 1)
}

// BenchmarkUNetTrainStep measures one training step of the D=32 CS180 UNet at batch 64:
// x = clean + 0.5 noise, MSE(unet(x), clean), Adam lr 1e-4 (the denoiser objective), per
// activation, unconditional (part 1) and class-conditioned (part 2: t and one-hot c). The first
// step (compilation, variable initialization) is excluded.
func BenchmarkUNetTrainStep(b *testing.B) {
	const batch = 64
	type variant struct {
		act   conv.Activation
		class bool
	}
	for _, v := range []variant{{conv.GELUTanh, false}, {conv.GELUExact, false}, {conv.GELUFast, false}, {conv.GELUTanh, true}} {
		name := fmt.Sprintf("D=32/batch=%d/%s", batch, v.act)
		if v.class {
			name += "/class"
		}
		b.Run(name, func(b *testing.B) {
			be, err := backend.New()
			if err != nil {
				b.Fatal(err)
			}
			cfg := DefaultUNetConfig(32)
			cfg.Activation = v.act
			if v.class {
				cfg.TimeConditioned, cfg.NumClasses = true, 10
			}
			store := model.NewStore()
			opt := optimizer.Adam().LearningRate(1e-4).Epsilon(1e-8).Done()
			exec, err := model.NewExec(be, store, func(scope *model.Scope, clean, noise *Node) *Node {
				g := clean.Graph()
				scope.Store().SetTraining(g, true)
				var t, c *Node
				if v.class {
					// Fixed times and classes (one-hot of 0..9, all-zero "unconditional" vectors for
					// rows 10..63): the cost does not depend on their values.
					t = MulScalar(Iota(g, shapes.Make(clean.DType(), batch), 0), 1.0/batch)
					c = OneHot(Iota(g, shapes.Make(dtypes.Int32, batch), 0), 10, clean.DType())
				}
				pred := UNet(scope.In("unet"), cfg, Add(clean, MulScalar(noise, 0.5)), t, c)
				loss := ReduceAllMean(Square(Sub(pred, clean)))
				opt.UpdateGraph(scope, g, loss)
				return loss
			})
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			clean := randImages(rng, batch, 0.5)
			step := func() float32 {
				out, err := exec.Exec(clean, randImages(rng, batch, 1))
				if err != nil {
					b.Fatal(err)
				}
				return tensors.ToScalar[float32](out[0])
			}
			step()
			b.ResetTimer()
			start := time.Now()
			var loss float32
			for range b.N {
				loss = step()
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/step")
			b.ReportMetric(float64(loss), "loss")
		})
	}
}

// BenchmarkUNetForward measures one inference call (a sampling step: batch norm with running
// statistics) of the D=32 UNet at batch 64.
func BenchmarkUNetForward(b *testing.B) {
	const batch = 64
	for _, act := range []conv.Activation{conv.GELUTanh, conv.GELUExact, conv.GELUFast} {
		b.Run(fmt.Sprintf("D=32/batch=%d/%s", batch, act), func(b *testing.B) {
			be, err := backend.New()
			if err != nil {
				b.Fatal(err)
			}
			cfg := DefaultUNetConfig(32)
			cfg.Activation = act
			store := model.NewStore()
			exec, err := model.NewExec(be, store, func(scope *model.Scope, x *Node) *Node {
				return UNet(scope.In("unet"), cfg, x, nil, nil)
			})
			if err != nil {
				b.Fatal(err)
			}
			x := randImages(rand.New(rand.NewPCG(3, 4)), batch, 1)
			run := func() {
				out, err := exec.Exec(x)
				if err != nil {
					b.Fatal(err)
				}
				out[0].FinalizeAll()
			}
			run()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				run()
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/step")
		})
	}
}

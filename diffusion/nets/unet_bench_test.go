package nets

import (
	"fmt"
	"testing"
	"time"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/conv"
)

// The UNet benchmarks have a PyTorch twin, bench/torch_unet.py (same architecture, loss,
// optimizer and batch); the command diffusion/cmd/unetbench runs both in one go and prints
// their ratios. By hand, pinned to the same core:
//
//	GOEXPERIMENT=simd GOMLX_BACKEND=go taskset -c 1 go test ./diffusion/nets -run XXX -bench UNet -benchtime 10x
//	taskset -c 1 /usr/bin/python3 bench/torch_unet.py --threads 1 --gelu tanh

// BenchmarkUNetTrainStep measures one training step of the D=32 CS180 UNet at batch 64
// (UNetTrainStep: the denoiser objective, Adam), per activation, unconditional (part 1) and
// class-conditioned (part 2: t and one-hot c). The first step (compilation, variable
// initialization) is excluded.
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
			step, err := UNetTrainStep(be, cfg, batch, 1, 1)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := step(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			var loss float32
			for range b.N {
				if loss, err = step(); err != nil {
					b.Fatal(err)
				}
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
			call, err := UNetForward(be, cfg, batch, 1, 3)
			if err != nil {
				b.Fatal(err)
			}
			if err := call(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if err := call(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/step")
		})
	}
}

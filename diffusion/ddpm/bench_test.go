package ddpm

import (
	"fmt"
	"testing"
	"time"

	"github.com/gomlx/compute"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/schedule"
)

// BenchmarkDenoiserTrainStep measures one Adam step of the assignment's denoiser (3 -> 4 x 256
// PReLU -> 2) at batch 10000 and 1000, with 1 and 2 data-parallel workers.
// Compilation (first step) is excluded.
func BenchmarkDenoiserTrainStep(b *testing.B) {
	for _, batch := range []int{10000, 1000} {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("batch=%d/workers=%d", batch, workers), func(b *testing.B) {
				benchTrainStep(b, testBackend(b), batch, workers)
			})
		}
	}
}

// BenchmarkDenoiserTrainStepElision measures the same step (batch 1000, one worker) on the
// Go backend as compute.NewWithConfig returns it ("plain"), with the identity transposes
// elided ("elided", backend.ElideIdentityTransposes) and with every rewrite of backend.New
// ("rewritten", backend.AllRewrites: also the matrix products' layouts).
func BenchmarkDenoiserTrainStepElision(b *testing.B) {
	plain, err := compute.NewWithConfig(backend.Effective("go"))
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Finalize()
	for _, c := range []struct {
		name string
		be   compute.Backend
	}{{"plain", plain}, {"elided", backend.ElideIdentityTransposes(plain)}, {"rewritten", backend.Rewrite(plain, backend.AllRewrites)}} {
		b.Run(c.name, func(b *testing.B) { benchTrainStep(b, c.be, 1000, 1) })
	}
}

func benchTrainStep(b *testing.B, be compute.Backend, batch, workers int) {
	d, err := NewDenoiser(be, nets.DefaultDenoiserConfig(), schedule.DefaultConfig(), 1)
	if err != nil {
		b.Fatal(err)
	}
	data := gaussianData(5000, [2]float64{0, 0}, [2]float64{1, 1}, 1)
	var t1 time.Time
	b.ResetTimer()
	_, err = d.Train(data, nil, TrainConfig{Steps: b.N + 1, BatchSize: batch, LR: 1e-3, ValSize: 10, Workers: workers,
		Progress: func(step int, _ float64) {
			if step == 1 {
				t1 = time.Now()
			}
		}})
	if err != nil {
		b.Fatal(err)
	}
	perStep := time.Since(t1) / time.Duration(b.N)
	b.ReportMetric(float64(perStep.Microseconds())/1000, "ms/step")
	b.ReportMetric(float64(batch)/perStep.Seconds(), "examples/s")
}

// BenchmarkSampleStep measures ancestral, DDIM and classifier-guided DDIM sampling of 5000
// points with the assignment's denoiser (the shared samplers of diffusion/sampling), with 1
// and 2 workers evaluating the network (DESIGN: 12.5 s for 5000 points x 500 steps; PyTorch
// 16.5 s). One op = one full 500-step sampling.
func BenchmarkSampleStep(b *testing.B) {
	be := testBackend(b)
	d, err := NewDenoiser(be, nets.DefaultDenoiserConfig(), schedule.DefaultConfig(), 1)
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewClassifier(be, nets.DefaultClassifierConfig(), schedule.DefaultConfig(), 1)
	if err != nil {
		b.Fatal(err)
	}
	const n = 5000
	T := d.Schedule.T()
	report := func(b *testing.B, dur time.Duration, steps int) {
		perOp := dur / time.Duration(b.N)
		b.ReportMetric(float64(perOp.Microseconds())/1000/float64(steps), "ms/step")
		b.ReportMetric(float64(n)/perOp.Seconds(), "samples/s")
	}
	for _, w := range []int{1, 2} {
		speed := Speed{Workers: w}
		b.Run(fmt.Sprintf("ancestral/workers=%d", w), func(b *testing.B) {
			start := time.Now()
			for i := range b.N {
				if _, err := d.Sample(n, SampleConfig{Seed: int64(i), Speed: speed}); err != nil {
					b.Fatal(err)
				}
			}
			report(b, time.Since(start), T)
		})
		b.Run(fmt.Sprintf("ddim/workers=%d", w), func(b *testing.B) {
			start := time.Now()
			for i := range b.N {
				if _, err := d.SampleDDIM(n, DDIMConfig{Seed: int64(i), Speed: speed}); err != nil {
					b.Fatal(err)
				}
			}
			report(b, time.Since(start), T)
		})
		b.Run(fmt.Sprintf("guided/workers=%d", w), func(b *testing.B) {
			start := time.Now()
			for i := range b.N {
				if _, err := d.SampleGuided(c, []int{0, 1, 2, 3, 4}, n/5, 1, DDIMConfig{Seed: int64(i), Speed: speed}); err != nil {
					b.Fatal(err)
				}
			}
			report(b, time.Since(start), T)
		})
	}
}

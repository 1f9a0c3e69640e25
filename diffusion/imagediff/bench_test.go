package imagediff

import (
	"fmt"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/schedule"
)

// BenchmarkSampleStep times one sampling step of 100 class-conditioned digits with
// classifier-free guidance (two network evaluations per image), D=16 (the cpu preset's width)
// and D=32, for Flow (Euler) and DDPM (ancestral): ms per step, network and sampler together.
func BenchmarkSampleStep(b *testing.B) {
	be, err := backend.New()
	if err != nil {
		b.Fatal(err)
	}
	const n, steps = 100, 4
	labels := make([]int, n)
	for i := range labels {
		labels[i] = i % 10
	}
	for _, d := range []int{16, 32} {
		for _, obj := range []Objective{Flow, DDPM} {
			cfg := Config{Net: nets.DefaultUNetConfig(d), Objective: obj, PixelLo: 0, PixelHi: 1}
			if obj == DDPM {
				sc := schedule.Config{Kind: schedule.Linear, T: 300, BetaStart: 1e-4, BetaEnd: 0.02}
				cfg.Schedule, cfg.PixelLo = &sc, -1
				cfg.Net.SinusoidalTimeDim = 32
			}
			cfg.Net.TimeConditioned = true
			cfg.Net.NumClasses = 10
			m, err := New(be, cfg, 1)
			if err != nil {
				b.Fatal(err)
			}
			sc := SampleConfig{Steps: steps, Guidance: 5, Seed: 1}
			if _, err := m.Sample(n, labels, sc); err != nil { // compile
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("D=%d/%s/n=%d/cfg", d, obj, n), func(b *testing.B) {
				for b.Loop() {
					if _, err := m.Sample(n, labels, sc); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*steps), "ms/step")
			})
		}
	}
}

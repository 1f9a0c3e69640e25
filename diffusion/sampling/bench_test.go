package sampling

import (
	"fmt"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/schedule"
)

// BenchmarkSamplerOverhead measures the host loop of the samplers around a trivial model
// (returns zeros, no time or allocation of its own beyond the result): the cost a sampler adds
// to every model evaluation. ns/step is per grid step of the whole batch.
//
//	GOEXPERIMENT=simd GODEBUG=asyncpreemptoff=1 go test -run '^$' -bench SamplerOverhead ./diffusion/sampling/
func BenchmarkSamplerOverhead(b *testing.B) {
	zero := FuncModel{Kind: Noise, Func: func(x []float32, _ []float64, _ []int) ([]float32, error) {
		return make([]float32, len(x)), nil
	}}
	p := Discrete{mustSchedule(b, schedule.DefaultConfig())}
	const steps = 50
	grid := must[[]float64](b)(EvenGrid(500, steps))
	for _, size := range []struct {
		name   string
		n, dim int
	}{{"states-5000x2", 5000, 2}, {"mnist-100x784", 100, 784}} {
		for _, name := range []string{"ddpm", "ddim", "dpm++2m", "heun"} {
			f := must[Sampler](b)(SamplerByName(name, 0))
			b.Run(fmt.Sprintf("%s/%s", size.name, name), func(b *testing.B) {
				o := Options{N: size.n, Dim: size.dim, Process: p, Grid: grid, Seed: 1}
				for b.Loop() {
					if _, err := f(zero, o); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*steps), "ns/step")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*steps*size.n*size.dim), "ns/value/step")
			})
		}
	}
}

package latent

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/spiral"
)

// benchmarkTrainStep times one optimizer step of the cpu preset's latent score network
// (3 x 256 SiLU; conditional: + the 256-wide class embedding) on standardized latents of
// dimension dz, batch 256, on one shard and on two (the preset's).
func benchmarkTrainStep(b *testing.B, dz int, conditional bool) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) { benchmarkTrainStepOn(b, dz, conditional, workers) })
	}
}

func benchmarkTrainStepOn(b *testing.B, dz int, conditional bool, workers int) {
	cfg, err := Overrides{Preset: "cpu"}.Config()
	if err != nil {
		b.Fatal(err)
	}
	n, err := spiral.NewNet(testBackend(b), cfg.NetFor(dz, conditional), cfg.Process, 1)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	data := &Encoded{Latents: make([]float32, 10000*dz), Dim: dz}
	for i := range data.Latents {
		data.Latents[i] = float32(rng.NormFloat64())
	}
	if conditional {
		data.Labels = make([]int, 10000)
		for i := range data.Labels {
			data.Labels[i] = i % 10
		}
	}
	tc := cfg.TrainFor(conditional)
	tc.Workers = workers
	if _, err := n.TrainStep(data, tc, rng); err != nil { // compile
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := n.TrainStep(data, tc, rng); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLatentTrainStep is one DSM step of the unconditional latent network, d_z = 2.
func BenchmarkLatentTrainStep(b *testing.B) { benchmarkTrainStep(b, 2, false) }

// BenchmarkLatentCFGTrainStep is one DSM step of the class-conditional latent network (label
// dropout 0.2), d_z = 2.
func BenchmarkLatentCFGTrainStep(b *testing.B) { benchmarkTrainStep(b, 2, true) }

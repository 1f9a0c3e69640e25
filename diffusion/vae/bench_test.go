package vae

import (
	"math/rand/v2"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/seeded"
)

// BenchmarkTrainStep is one Adam step of the exam's VAE (d_z = 2, 400 hidden) on a batch of 128.
func BenchmarkTrainStep(b *testing.B) {
	be, err := backend.New()
	if err != nil {
		b.Fatal(err)
	}
	m, err := New(be, DefaultNet(), 1)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 128*Pixels)
	for i := range x {
		x[i] = rng.Float32()
	}
	eps := seeded.Normals(rng, 128*2)
	cfg := ExamTrain()
	if _, err := m.TrainStep(cfg, x, eps); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := m.TrainStep(cfg, x, eps); err != nil {
			b.Fatal(err)
		}
	}
}

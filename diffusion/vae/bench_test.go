package vae

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/seeded"
)

// BenchmarkTrainStep is one Adam step of the exam's VAE (d_z = 2, 400 hidden) on a batch of
// 128, on one shard and on two (package dataparallel; the presets train on two).
func BenchmarkTrainStep(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) { benchTrainStep(b, workers) })
	}
}

func benchTrainStep(b *testing.B, workers int) {
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
	cfg.Workers = workers
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

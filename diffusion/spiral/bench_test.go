package spiral

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchmarkTrainStep times one optimizer step of the notebook's network and batch, on one
// shard and on two (package dataparallel; the presets train on two).
func benchmarkTrainStep(b *testing.B, obj Objective) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) { benchmarkTrainStepOn(b, obj, workers) })
	}
}

func benchmarkTrainStepOn(b *testing.B, obj Objective, workers int) {
	n, err := NewNet(testBackend(b), DefaultNet(), DefaultProcess(), 1)
	if err != nil {
		b.Fatal(err)
	}
	mix := testMixture(b)
	cfg := TrainConfig{Objective: obj, Weighting: Sigma2, Steps: 1, BatchSize: 128, LR: 1e-3, TMin: 0.005, TimeSkew: 3, Workers: workers}
	rng := rand.New(rand.NewPCG(1, 1))
	if _, err := n.TrainStep(mix, cfg, rng); err != nil { // compile
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := n.TrainStep(mix, cfg, rng); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHyvarinenStep is one training step of the Hyvarinen loss (exact trace: two
// backward passes, and the gradient through them), batch 128.
func BenchmarkHyvarinenStep(b *testing.B) { benchmarkTrainStep(b, Hyvarinen) }

// BenchmarkDSMStep is one training step of denoising score matching, batch 128.
func BenchmarkDSMStep(b *testing.B) { benchmarkTrainStep(b, DSM) }

// BenchmarkScoreAndTrace is one evaluation of the score and its divergence for 1000 points
// (one RK4 stage of the PF-ODE likelihood).
func BenchmarkScoreAndTrace(b *testing.B) {
	n, err := NewNet(testBackend(b), DefaultNet(), DefaultProcess(), 1)
	if err != nil {
		b.Fatal(err)
	}
	x := testMixture(b).Sample(1000, rand.New(rand.NewPCG(1, 1)))
	ts := make([]float64, 1000)
	for i := range ts {
		ts[i] = 0.3
	}
	for b.Loop() {
		if _, _, err := n.ScoreAndTrace(x, ts); err != nil {
			b.Fatal(err)
		}
	}
}

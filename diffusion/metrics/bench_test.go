package metrics

import (
	"math/rand/v2"
	"testing"
)

// benchSets returns sets of the assignment's sizes: 5000 reference points (a
// correlated Gaussian cloud) and 5000 samples, half N(0, I) noise and half jittered
// reference points.
func benchSets(b *testing.B) (real, samples [][2]float64) {
	rng := rand.New(rand.NewPCG(5, 6))
	real = randomCloud(rng, 5000)
	samples = make([][2]float64, 5000)
	for i := range samples {
		if i%2 == 0 {
			samples[i] = [2]float64{rng.NormFloat64(), rng.NormFloat64()}
		} else {
			p := real[rng.IntN(len(real))]
			samples[i] = [2]float64{p[0] + 0.02*rng.NormFloat64(), p[1] + 0.02*rng.NormFloat64()}
		}
	}
	return real, samples
}

func BenchmarkKDENLL_5000x5000(b *testing.B) {
	real, samples := benchSets(b)
	kde, err := NewKDE(real)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := kde.NLL(samples); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPrecisionRecall_5000(b *testing.B) {
	real, samples := benchSets(b)
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := PrecisionRecall(real, samples, DefaultK); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvaluate_5000(b *testing.B) {
	real, samples := benchSets(b)
	ref, err := NewReference(real, nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := ref.Evaluate(samples); err != nil {
			b.Fatal(err)
		}
	}
}

package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
)

func gaussianSet(rng *rand.Rand, n, dim int, mean []float64, std float64) []float32 {
	out := make([]float32, n*dim)
	for i := range n {
		for d := range dim {
			out[i*dim+d] = float32(mean[d] + std*rng.NormFloat64())
		}
	}
	return out
}

func TestWasserstein1DKnownCases(t *testing.T) {
	// Equal sizes: the sorted pairing.
	w, err := Wasserstein1D([]float64{0, 1, 2}, []float64{3, 4, 5})
	if err != nil || math.Abs(w-3) > 1e-12 {
		t.Fatalf("shift by 3: got %v, %v", w, err)
	}
	// Unequal sizes: {0} vs {-1, 1}: W2^2 = (1 + 1) / 2.
	w, err = Wasserstein1D([]float64{0}, []float64{1, -1})
	if err != nil || math.Abs(w-1) > 1e-12 {
		t.Fatalf("{0} vs {-1, 1}: got %v, %v", w, err)
	}
	// {0, 0, 3} vs {0, 3}: quantiles 0 on [0, 2/3), 3 after; 0 on [0, 1/2), 3 after: differ on
	// [1/2, 2/3) by 3: W2^2 = 9/6.
	w, err = Wasserstein1D([]float64{0, 3, 0}, []float64{3, 0})
	if err != nil || math.Abs(w*w-1.5) > 1e-12 {
		t.Fatalf("{0, 0, 3} vs {0, 3}: got W2^2 %v, %v", w*w, err)
	}
	if _, err := Wasserstein1D(nil, []float64{1}); err == nil {
		t.Fatal("empty set accepted")
	}
}

func TestSlicedWassersteinShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a := gaussianSet(rng, 500, 2, []float64{0, 0}, 1)
	b := make([]float32, len(a))
	v := [2]float32{0.3, -0.4} // |v| = 0.5
	for i := range b {
		b[i] = a[i] + v[i%2]
	}
	sw, err := SlicedWasserstein(a, b, 2, 64, 7)
	if err != nil {
		t.Fatal(err)
	}
	// W2 of each projection is exactly |<theta, v>|; the mean of cos^2 over evenly spaced
	// angles is exactly 1/2.
	if want := 0.5 / math.Sqrt2; math.Abs(sw-want) > 1e-5 {
		t.Errorf("sliced W2 of a shift by |v| = 0.5: got %v, want %v", sw, want)
	}
	self, err := SlicedWasserstein(a, a, 2, 16, 1)
	if err != nil || self != 0 {
		t.Errorf("distance of a set to itself: %v, %v", self, err)
	}
	// 3-D with random directions: E cos^2 = 1/3.
	a3 := gaussianSet(rng, 300, 3, []float64{0, 0, 0}, 1)
	b3 := make([]float32, len(a3))
	for i := range b3 {
		b3[i] = a3[i]
		if i%3 == 0 {
			b3[i] += 1
		}
	}
	sw3, err := SlicedWasserstein(a3, b3, 3, 4000, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 / math.Sqrt(3); math.Abs(sw3-want) > 0.02 {
		t.Errorf("3-D shift by 1: got %v, want %v", sw3, want)
	}
}

func TestSlicedWassersteinFloorAndSensitivity(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	n := 2000
	a := gaussianSet(rng, n, 2, []float64{0, 0}, 1)
	b := gaussianSet(rng, n, 2, []float64{0, 0}, 1)
	wide := gaussianSet(rng, n, 2, []float64{0, 0}, 1.2)
	floor, _ := SlicedWasserstein(a, b, 2, 50, 1)
	far, _ := SlicedWasserstein(a, wide, 2, 50, 1)
	// Between N(0, 1) and N(0, 1.44) the 1-D W2 is 0.2 in every direction.
	if floor > 0.08 {
		t.Errorf("floor of two N(0, I) sets of %d: %v, expected ~ 0.03", n, floor)
	}
	if math.Abs(far-0.2) > 0.04 || far < 3*floor {
		t.Errorf("N(0, I) vs N(0, 1.44 I): got %v, want ~ 0.2 (floor %v)", far, floor)
	}
}

func TestEnergyDistanceKnownCases(t *testing.T) {
	// Two point masses at distance 5: sqrt(2 * 5).
	e, err := EnergyDistance([]float32{0, 0, 0, 0}, []float32{3, 4}, 2)
	if err != nil || math.Abs(e-math.Sqrt(10)) > 1e-9 {
		t.Fatalf("point masses: got %v, %v", e, err)
	}
	if e, _ := EnergyDistance([]float32{1, 2, 3, 4}, []float32{3, 4, 1, 2}, 2); e != 0 {
		t.Errorf("same set in another order: %v", e)
	}
	// 1-D N(0, 1) vs N(mu, 1): 2 E|N(mu, 2)| - 2 E|N(0, 2)| in closed form,
	// E|N(m, s^2)| = s sqrt(2/pi) exp(-m^2 / (2 s^2)) + m (1 - 2 Phi(-m/s)).
	rng := rand.New(rand.NewPCG(5, 6))
	mu := 1.0
	a := gaussianSet(rng, 3000, 1, []float64{0}, 1)
	b := gaussianSet(rng, 3000, 1, []float64{mu}, 1)
	absMean := func(m, s float64) float64 {
		return s*math.Sqrt(2/math.Pi)*math.Exp(-m*m/(2*s*s)) + m*math.Erf(m/(s*math.Sqrt2))
	}
	want := math.Sqrt(2*absMean(mu, math.Sqrt2) - 2*absMean(0, math.Sqrt2))
	got, err := EnergyDistance(a, b, 1)
	if err != nil || math.Abs(got-want) > 0.05 {
		t.Errorf("N(0, 1) vs N(1, 1): got %v, want %v (%v)", got, want, err)
	}
}

func TestDistancesRejectBadInput(t *testing.T) {
	good := []float32{0, 0, 1, 1}
	for name, f := range map[string]func() error{
		"odd length": func() error { _, err := EnergyDistance([]float32{1, 2, 3}, good, 2); return err },
		"empty":      func() error { _, err := SlicedWasserstein(nil, good, 2, 4, 1); return err },
		"NaN": func() error {
			_, err := SlicedWasserstein(good, []float32{float32(math.NaN()), 0}, 2, 4, 1)
			return err
		},
		"dim 0":       func() error { _, err := EnergyDistance(good, good, 0); return err },
		"projections": func() error { _, err := SlicedWasserstein(good, good, 2, 0, 1); return err },
	} {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func BenchmarkSlicedWasserstein(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	x := gaussianSet(rng, 4000, 2, []float64{0, 0}, 1)
	y := gaussianSet(rng, 4000, 2, []float64{0, 0}, 1)
	for b.Loop() {
		if _, err := SlicedWasserstein(x, y, 2, 64, 1); err != nil {
			b.Fatal(err)
		}
	}
}

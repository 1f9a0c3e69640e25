package metrics

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

// ring returns n points on a noisy unit circle: a 1-D outline like a state's.
func ring(rng *rand.Rand, n int, fromAngle, toAngle float64) [][2]float64 {
	pts := make([][2]float64, n)
	for i := range pts {
		a := fromAngle + (toAngle-fromAngle)*rng.Float64()
		r := 1 + 0.01*rng.NormFloat64()
		pts[i] = [2]float64{r * math.Cos(a), r * math.Sin(a)}
	}
	return pts
}

func dist(a, b [2]float64) float64 { return math.Hypot(a[0]-b[0], a[1]-b[1]) }

// bruteCoverage computes the share of queries inside the k-NN manifold of points by the
// definition, with all pairwise distances.
func bruteCoverage(points, queries [][2]float64, k int) float64 {
	radii := make([]float64, len(points))
	for i, p := range points {
		ds := make([]float64, 0, len(points))
		for _, q := range points {
			ds = append(ds, dist(p, q))
		}
		sort.Float64s(ds)
		radii[i] = ds[k] // ds[0] is the point itself
	}
	inside := 0
	for _, q := range queries {
		for i, p := range points {
			if dist(p, q) <= radii[i] {
				inside++
				break
			}
		}
	}
	return float64(inside) / float64(len(queries))
}

func TestPrecisionRecallMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	real := ring(rng, 600, 0, 2*math.Pi)
	// Samples: part on the ring (blurred), part off it.
	samples := ring(rng, 300, 0, math.Pi)
	for i := range samples {
		samples[i][0] += 0.03 * rng.NormFloat64()
		samples[i][1] += 0.03 * rng.NormFloat64()
	}
	for _, p := range randomCloud(rng, 100) {
		samples = append(samples, [2]float64{p[0] + 10, p[1]})
	}
	for _, k := range []int{1, 3, 5} {
		p, r, err := PrecisionRecall(real, samples, k)
		if err != nil {
			t.Fatal(err)
		}
		wantP, wantR := bruteCoverage(real, samples, k), bruteCoverage(samples, real, k)
		if p != wantP || r != wantR {
			t.Errorf("k=%d: precision %v recall %v, brute force %v %v", k, p, r, wantP, wantR)
		}
		if p <= 0.05 || p >= 0.95 || r <= 0.05 || r >= 0.95 {
			t.Errorf("k=%d: precision %v recall %v: test data should give values strictly between", k, p, r)
		}
	}
}

func TestPrecisionRecallCases(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	real := ring(rng, 2000, 0, 2*math.Pi)

	p, r, err := PrecisionRecall(real, real, DefaultK)
	if err != nil {
		t.Fatal(err)
	}
	if p != 1 || r != 1 {
		t.Errorf("identical sets: precision %v recall %v, want 1 and 1", p, r)
	}

	far := make([][2]float64, len(real))
	for i, q := range real {
		far[i] = [2]float64{q[0] + 50, q[1] - 20}
	}
	if p, r, err = PrecisionRecall(real, far, DefaultK); err != nil {
		t.Fatal(err)
	}
	if p != 0 || r != 0 {
		t.Errorf("far shifted set: precision %v recall %v, want 0 and 0", p, r)
	}

	// Mode collapse: fresh samples from one quarter of the ring.
	quarter := ring(rng, 2000, 0, math.Pi/2)
	if p, r, err = PrecisionRecall(real, quarter, DefaultK); err != nil {
		t.Fatal(err)
	}
	if p < 0.9 || r > 0.35 {
		t.Errorf("samples on a quarter: precision %v recall %v, want high precision (>0.9) and recall about 0.25", p, r)
	}

	// Blur: samples spread far beyond the outline cover it (high recall) but most are
	// off it (low precision).
	blurred := make([][2]float64, len(real))
	for i, q := range real {
		blurred[i] = [2]float64{q[0] + 0.3*rng.NormFloat64(), q[1] + 0.3*rng.NormFloat64()}
	}
	if p, r, err = PrecisionRecall(real, blurred, DefaultK); err != nil {
		t.Fatal(err)
	}
	if p > 0.3 || r < 0.8 {
		t.Errorf("blurred samples: precision %v recall %v, want low precision and high recall", p, r)
	}
}

func TestManifold(t *testing.T) {
	// Points 0, 1, 3, 6, 10 on a line: k=2 radii are 3, 2, 3, 4, 7.
	pts := [][2]float64{{0, 0}, {1, 0}, {3, 0}, {6, 0}, {10, 0}}
	m, err := NewManifold(pts, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{3, 2, 3, 4, 7} {
		if got := m.Radius(i); math.Abs(got-want) > 1e-12 {
			t.Errorf("radius %d = %v, want %v", i, got, want)
		}
	}
	if m.K() != 2 {
		t.Errorf("K() = %d", m.K())
	}
	for _, tc := range []struct {
		q    [2]float64
		want bool
	}{
		{[2]float64{17, 0}, true}, // on the boundary of the ball around 10 (closed balls)
		{[2]float64{17.01, 0}, false},
		{[2]float64{-3, 0}, true},  // boundary of the ball around 0
		{[2]float64{0, 2.9}, true}, // inside the ball around 0
		{[2]float64{6, 3.9}, true}, // inside the ball around 6 (radius 4) only
		{[2]float64{0, -4.5}, false},
	} {
		// Check the expectation itself against the definition.
		want := false
		for i, p := range pts {
			if dist(p, tc.q) <= m.Radius(i) {
				want = true
			}
		}
		if want != tc.want {
			t.Fatalf("test case %v is wrong", tc.q)
		}
		if got := m.Contains(tc.q); got != tc.want {
			t.Errorf("Contains(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	// Duplicates are neighbours at distance 0.
	dup, err := NewManifold([][2]float64{{0, 0}, {0, 0}, {5, 0}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if dup.Radius(0) != 0 || dup.Radius(2) != 5 {
		t.Errorf("duplicate radii %v %v, want 0 and 5", dup.Radius(0), dup.Radius(2))
	}
}

func TestNeighbourErrors(t *testing.T) {
	good := [][2]float64{{0, 0}, {1, 0}, {0, 1}, {1, 1}, {2, 2}}
	nan := [][2]float64{{0, 0}, {math.NaN(), 1}, {2, 2}, {3, 3}, {4, 4}}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"PR empty real", second(PrecisionRecall(nil, good, 3)), "empty"},
		{"PR empty samples", second(PrecisionRecall(good, nil, 3)), "empty"},
		{"PR NaN samples", second(PrecisionRecall(good, nan, 3)), "not finite"},
		{"PR too few samples", second(PrecisionRecall(good, good[:3], 3)), "more than 3"},
		{"PR k=0", second(PrecisionRecall(good, good, 0)), "k must be"},
		{"off empty", errOf(OffOutlineShare(good, nil, 0.05)), "empty"},
		{"off NaN real", errOf(OffOutlineShare(nan, good, 0.05)), "not finite"},
		{"off bad threshold", errOf(OffOutlineShare(good, good, -1)), "threshold"},
		{"off NaN threshold", errOf(OffOutlineShare(good, good, math.NaN())), "threshold"},
		{"purity label count", errOf(Purity(good, []int{0, 1}, good, 0)), "2 labels for 5"},
		{"purity missing label", errOf(Purity(good, []int{0, 0, 1, 1, 1}, good, 4)), "no real point has label 4"},
		{"purity empty samples", errOf(Purity(good, []int{0, 0, 1, 1, 1}, nil, 1)), "empty"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, tc.err, tc.want)
		}
	}
}

func second(_, _ float64, err error) error { return err }
func errOf(_ float64, err error) error     { return err }

func TestOffOutlineShareAndPurity(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	// Two classes: left half of the ring is label 0, right half label 1.
	real := ring(rng, 1000, 0, 2*math.Pi)
	labels := make([]int, len(real))
	for i, p := range real {
		if p[0] > 0 {
			labels[i] = 1
		}
	}
	samples := append(ring(rng, 500, -math.Pi/2, math.Pi/2), randomCloud(rng, 200)...)
	for _, th := range []float64{0.01, DefaultOffOutlineThreshold, 0.2} {
		got, err := OffOutlineShare(real, samples, th)
		if err != nil {
			t.Fatal(err)
		}
		off := 0
		for _, s := range samples {
			best := math.Inf(1)
			for _, p := range real {
				best = math.Min(best, dist(s, p))
			}
			if best > th {
				off++
			}
		}
		if want := float64(off) / float64(len(samples)); got != want {
			t.Errorf("threshold %v: off-outline %v, brute force %v", th, got, want)
		}
	}
	for label := range 2 {
		got, err := Purity(real, labels, samples, label)
		if err != nil {
			t.Fatal(err)
		}
		match := 0
		for _, s := range samples {
			best, bestL := math.Inf(1), -1
			for i, p := range real {
				if d := dist(s, p); d < best {
					best, bestL = d, labels[i]
				}
			}
			if bestL == label {
				match++
			}
		}
		if want := float64(match) / float64(len(samples)); got != want {
			t.Errorf("label %d: purity %v, brute force %v", label, got, want)
		}
	}
	// Samples on the right half are almost all of label 1.
	if got, _ := Purity(real, labels, ring(rng, 500, -1.2, 1.2), 1); got != 1 {
		t.Errorf("purity of samples deep in the label-1 half = %v, want 1", got)
	}
	if got, _ := Purity(real, labels, ring(rng, 500, -1.2, 1.2), 0); got != 0 {
		t.Errorf("purity of label-1 samples for label 0 = %v, want 0", got)
	}
}

func TestKernelSumTails(t *testing.T) {
	// The vector kernel sum (when built with GOEXPERIMENT=simd) must agree with the
	// scalar one for every tail length.
	rng := rand.New(rand.NewPCG(13, 14))
	for n := 1; n <= 13; n++ {
		pts := randomCloud(rng, n)
		wx, wy := make([]float64, n), make([]float64, n)
		for i, p := range pts {
			wx[i], wy[i] = p[0], p[1]
		}
		for _, z := range [][2]float64{{0, 0}, {3, -2}, {30, 30}} {
			q1, s1 := kernelSum(wx, wy, z[0], z[1])
			q2, s2 := kernelSumScalar(wx, wy, z[0], z[1])
			if q1 != q2 || math.Abs(s1-s2) > 1e-13*s2 {
				t.Errorf("n=%d z=%v: kernelSum (%v, %v), scalar (%v, %v)", n, z, q1, s1, q2, s2)
			}
		}
	}
}

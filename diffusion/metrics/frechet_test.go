package metrics

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// randomSPD returns a random symmetric positive definite d x d matrix.
func randomSPD(rng *rand.Rand, d int) *mat.SymDense {
	a := mat.NewDense(d, d, nil)
	for i := range d {
		for j := range d {
			a.Set(i, j, rng.NormFloat64())
		}
	}
	s := mat.NewSymDense(d, nil)
	s.SymOuterK(1, a)
	for i := range d {
		s.SetSym(i, i, s.At(i, i)+0.1)
	}
	return s
}

// gaussianSamples draws n vectors of N(mean, L L^T) for a random lower-triangular L.
func gaussianSamples(rng *rand.Rand, n int, mean []float64, scale float64) [][]float64 {
	d := len(mean)
	l := make([][]float64, d)
	for i := range l {
		l[i] = make([]float64, i+1)
		for j := range l[i] {
			l[i][j] = scale * rng.NormFloat64()
		}
	}
	out := make([][]float64, n)
	z := make([]float64, d)
	for k := range out {
		for i := range z {
			z[i] = rng.NormFloat64()
		}
		v := make([]float64, d)
		for i := range v {
			v[i] = mean[i]
			for j := 0; j <= i; j++ {
				v[i] += l[i][j] * z[j]
			}
		}
		out[k] = v
	}
	return out
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

func TestFrechetDiagonalClosedForm(t *testing.T) {
	mu1, mu2 := []float64{1, 2, 3}, []float64{0, 2, 5}
	v1, v2 := []float64{1, 4, 0.25}, []float64{9, 4, 1}
	g1 := &Gaussian{Mean: mu1, Cov: mat.NewSymDense(3, nil), N: 10}
	g2 := &Gaussian{Mean: mu2, Cov: mat.NewSymDense(3, nil), N: 10}
	want := 0.0
	for i := range 3 {
		g1.Cov.SetSym(i, i, v1[i])
		g2.Cov.SetSym(i, i, v2[i])
		d := math.Sqrt(v1[i]) - math.Sqrt(v2[i])
		want += (mu1[i]-mu2[i])*(mu1[i]-mu2[i]) + d*d
	}
	// want = (1 + 0 + 4) + ((1-3)^2 + 0 + (0.5-1)^2) = 9.25
	if want != 9.25 {
		t.Fatalf("test arithmetic: %v", want)
	}
	got, err := FrechetDistance(g1, g2)
	if err != nil {
		t.Fatal(err)
	}
	if !near(got, want, 1e-12) {
		t.Errorf("diagonal: %.15g, want %.15g", got, want)
	}
}

func TestFrechetScaledCovarianceClosedForm(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s1 := randomSPD(rng, 6)
	const c = 2.25
	s2 := mat.NewSymDense(6, nil)
	s2.ScaleSym(c, s1)
	mean := make([]float64, 6)
	got, err := FrechetDistance(&Gaussian{Mean: mean, Cov: s1, N: 2}, &Gaussian{Mean: mean, Cov: s2, N: 2})
	if err != nil {
		t.Fatal(err)
	}
	// S2 = c S1 commutes with S1: Tr(S1 + c S1 - 2 sqrt(c) S1) = Tr(S1) (1 - sqrt(c))^2.
	want := mat.Trace(s1) * (1 - math.Sqrt(c)) * (1 - math.Sqrt(c))
	if !near(got, want, 1e-10) {
		t.Errorf("scaled covariance: %.15g, want %.15g", got, want)
	}
}

// TestFrechetMatchesGeneralEigenvalues checks the trace term against the eigenvalues
// of the non-symmetric product S1 S2, computed by a different algorithm.
func TestFrechetMatchesGeneralEigenvalues(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 5 {
		d := 2 + trial*3
		s1, s2 := randomSPD(rng, d), randomSPD(rng, d)
		mu1, mu2 := make([]float64, d), make([]float64, d)
		var meanTerm float64
		for i := range d {
			mu1[i], mu2[i] = rng.NormFloat64(), rng.NormFloat64()
			meanTerm += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i])
		}
		var prod mat.Dense
		prod.Mul(s1, s2)
		var eig mat.Eigen
		if !eig.Factorize(&prod, mat.EigenNone) {
			t.Fatal("eigen failed")
		}
		var traceSqrt float64
		for _, v := range eig.Values(nil) {
			if math.Abs(imag(v)) > 1e-8*math.Abs(real(v)) || real(v) <= 0 {
				t.Fatalf("S1 S2 has eigenvalue %v", v)
			}
			traceSqrt += math.Sqrt(real(v))
		}
		want := meanTerm + mat.Trace(s1) + mat.Trace(s2) - 2*traceSqrt
		g1, g2 := &Gaussian{Mean: mu1, Cov: s1, N: 2}, &Gaussian{Mean: mu2, Cov: s2, N: 2}
		got, err := FrechetDistance(g1, g2)
		if err != nil {
			t.Fatal(err)
		}
		back, err := FrechetDistance(g2, g1)
		if err != nil {
			t.Fatal(err)
		}
		if !near(got, want, 1e-9) || !near(back, got, 1e-9) {
			t.Errorf("d=%d: FD %.12g, reversed %.12g, want %.12g", d, got, back, want)
		}
	}
}

func TestFitGaussianAndFeatureSets(t *testing.T) {
	g, err := FitGaussian([][]float64{{1, 0}, {2, 0}, {3, 1}, {4, 1}})
	if err != nil {
		t.Fatal(err)
	}
	// ddof = 1: var(1,2,3,4) = 5/3, var(0,0,1,1) = 1/3, cov = 2/3 (sum of products 2, / 3).
	if !near(g.Mean[0], 2.5, 1e-15) || !near(g.Cov.At(0, 0), 5.0/3, 1e-15) || !near(g.Cov.At(1, 1), 1.0/3, 1e-15) ||
		!near(g.Cov.At(0, 1), 2.0/3, 1e-15) || g.N != 4 {
		t.Errorf("FitGaussian: mean %v cov %v", g.Mean, mat.Formatted(g.Cov))
	}
	flat, err := FitGaussianFlat([]float32{1, 0, 2, 0, 3, 1, 4, 1}, 2)
	if err != nil || !mat.EqualApprox(flat.Cov, g.Cov, 1e-12) {
		t.Errorf("FitGaussianFlat differs: %v", err)
	}

	rng := rand.New(rand.NewPCG(7, 8))
	a := gaussianSamples(rng, 500, []float64{0, 1, -1, 2}, 1)
	if fd, err := FrechetDistanceFeatures(a, a); err != nil || fd > 1e-9 {
		t.Errorf("identical sets: %v, %v", fd, err)
	}
	shift := []float64{0.5, -1, 2, 0}
	b := make([][]float64, len(a))
	for i, v := range a {
		b[i] = make([]float64, len(v))
		for j := range v {
			b[i][j] = v[j] + shift[j]
		}
	}
	if fd, err := FrechetDistanceFeatures(a, b); err != nil || !near(fd, 0.25+1+4, 1e-9) {
		t.Errorf("shifted sets: %v, want 5.25 (%v)", fd, err)
	}
	c := gaussianSamples(rng, 300, []float64{1, 0, 0, 0}, 2)
	ab, err1 := FrechetDistanceFeatures(a, c)
	ba, err2 := FrechetDistanceFeatures(c, a)
	if err1 != nil || err2 != nil || !near(ab, ba, 1e-9) || ab <= 1 {
		t.Errorf("FD(a, c) = %v, FD(c, a) = %v (%v, %v)", ab, ba, err1, err2)
	}
	// Fewer vectors than dimensions: singular covariances still give a finite distance.
	few := gaussianSamples(rng, 3, make([]float64, 8), 1)
	if fd, err := FrechetDistanceFeatures(few, few); err != nil || fd > 1e-6 {
		t.Errorf("identical singular sets: %v, %v", fd, err)
	}
}

func TestFrechetErrors(t *testing.T) {
	two := [][]float64{{1, 2}, {3, 4}}
	for _, tc := range []struct {
		name string
		a, b [][]float64
		want string
	}{
		{"one vector", [][]float64{{1, 2}}, two, "at least 2"},
		{"ragged", [][]float64{{1, 2}, {3}}, two, "length 1"},
		{"empty vectors", [][]float64{{}, {}}, two, "empty"},
		{"dimensions", two, [][]float64{{1}, {2}}, "dimensions 2 and 1"},
		{"NaN", [][]float64{{1, math.NaN()}, {3, 4}}, two, "NaN"},
	} {
		_, err := FrechetDistanceFeatures(tc.a, tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := FitGaussianFlat(make([]float32, 5), 2); err == nil {
		t.Error("FitGaussianFlat of 5 values in dimension 2 gave no error")
	}
	if _, err := FrechetDistance(nil, &Gaussian{}); err == nil {
		t.Error("nil Gaussian gave no error")
	}
	bad := &Gaussian{Mean: []float64{0, 0}, Cov: mat.NewSymDense(3, nil)}
	if _, err := FrechetDistance(bad, bad); err == nil {
		t.Error("mismatched mean and covariance gave no error")
	}
}

package metrics

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomCloud returns n points of an anisotropic, correlated Gaussian cloud.
func randomCloud(rng *rand.Rand, n int) [][2]float64 {
	pts := make([][2]float64, n)
	for i := range pts {
		a, b := rng.NormFloat64(), rng.NormFloat64()
		pts[i] = [2]float64{2*a + 0.3, 0.5*a + 0.7*b - 1}
	}
	return pts
}

// naiveLogPDF computes scipy's gaussian_kde logpdf directly from its definition, with
// no whitening, no cutoff and no shared code: covariance by two-pass sums (ddof=1),
// times n^(-1/3); log mean of Gaussian densities via a max-shifted log-sum-exp.
func naiveLogPDF(data [][2]float64, p [2]float64) float64 {
	n := float64(len(data))
	var mx, my float64
	for _, d := range data {
		mx += d[0]
		my += d[1]
	}
	mx, my = mx/n, my/n
	var sxx, sxy, syy float64
	for _, d := range data {
		sxx += (d[0] - mx) * (d[0] - mx)
		sxy += (d[0] - mx) * (d[1] - my)
		syy += (d[1] - my) * (d[1] - my)
	}
	f2 := math.Pow(n, -1.0/3.0)
	a, b, c := sxx/(n-1)*f2, sxy/(n-1)*f2, syy/(n-1)*f2
	det := a*c - b*b
	terms := make([]float64, len(data))
	maxT := math.Inf(-1)
	for i, d := range data {
		dx, dy := p[0]-d[0], p[1]-d[1]
		q := (c*dx*dx - 2*b*dx*dy + a*dy*dy) / det
		terms[i] = -0.5*q - math.Log(2*math.Pi) - 0.5*math.Log(det)
		maxT = math.Max(maxT, terms[i])
	}
	var sum float64
	for _, t := range terms {
		sum += math.Exp(t - maxT)
	}
	return maxT + math.Log(sum) - math.Log(n)
}

func TestKDEMatchesNaiveDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := randomCloud(rng, 700)
	kde, err := NewKDE(data)
	if err != nil {
		t.Fatal(err)
	}
	queries := append(randomCloud(rng, 200),
		[2]float64{0, 0}, data[3], [2]float64{15, -12}, [2]float64{-40, 40}, [2]float64{1e3, 1e3})
	for _, q := range queries {
		got, want := kde.LogPDF(q), naiveLogPDF(data, q)
		if math.IsInf(got, 0) || math.IsNaN(got) {
			t.Fatalf("LogPDF(%v) = %v, want finite", q, got)
		}
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("LogPDF(%v) = %.12f, naive definition gives %.12f", q, got, want)
		}
	}
}

func TestKDEClosedForm(t *testing.T) {
	// Four points on the unit axes: mean 0, unbiased variances 2/3, no correlation.
	data := [][2]float64{{1, 0}, {-1, 0}, {0, 1}, {0, -1}}
	kde, err := NewKDE(data)
	if err != nil {
		t.Fatal(err)
	}
	factor := math.Pow(4, -1.0/6.0)
	if math.Abs(kde.Factor()-factor) > 1e-15 {
		t.Errorf("Factor() = %v, want 4^(-1/6) = %v", kde.Factor(), factor)
	}
	s2 := 2.0 / 3.0 * factor * factor // kernel variance per axis
	cov := kde.Covariance()
	if math.Abs(cov[0][0]-s2) > 1e-15 || math.Abs(cov[1][1]-s2) > 1e-15 || math.Abs(cov[0][1]) > 1e-15 {
		t.Errorf("Covariance() = %v, want diag(%v)", cov, s2)
	}
	// At the origin every kernel is at distance 1.
	want := -math.Log(2*math.Pi*s2) - 1/(2*s2)
	if got := kde.LogPDF([2]float64{0, 0}); math.Abs(got-want) > 1e-12 {
		t.Errorf("LogPDF(origin) = %.15f, closed form %.15f", got, want)
	}
	// At (1, 0): distances 0, 2, sqrt2, sqrt2.
	want = math.Log((1+math.Exp(-4/(2*s2))+2*math.Exp(-2/(2*s2)))/4) - math.Log(2*math.Pi*s2)
	if got := kde.LogPDF([2]float64{1, 0}); math.Abs(got-want) > 1e-12 {
		t.Errorf("LogPDF(1,0) = %.15f, closed form %.15f", got, want)
	}
	// Far away the nearest kernel dominates: log density = quadratic tail, finite.
	far := [2]float64{100, 0}
	want = math.Log(1.0/4) - math.Log(2*math.Pi*s2) - 99*99/(2*s2) +
		math.Log(1+math.Exp(-(101*101-99*99)/(2*s2))+2*math.Exp(-(100*100+1-99*99)/(2*s2)))
	if got := kde.LogPDF(far); math.Abs(got-want) > 1e-9*math.Abs(want) {
		t.Errorf("LogPDF(%v) = %.9g, closed form %.9g", far, got, want)
	}
}

func TestKDENLLIsMeanOfLogPDF(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	kde, err := NewKDE(randomCloud(rng, 500))
	if err != nil {
		t.Fatal(err)
	}
	samples := randomCloud(rng, 1001) // not a multiple of the worker chunks
	nll, err := kde.NLL(samples)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := kde.LogPDFs(samples)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for i, s := range samples {
		if logs[i] != kde.LogPDF(s) {
			t.Fatalf("LogPDFs[%d] = %v differs from LogPDF = %v", i, logs[i], kde.LogPDF(s))
		}
		sum += logs[i]
	}
	if want := -sum / float64(len(samples)); math.Abs(nll-want) > 1e-12 {
		t.Errorf("NLL = %v, -mean LogPDF = %v", nll, want)
	}
	// A sample set far from the data must score much worse.
	shifted := make([][2]float64, len(samples))
	for i, s := range samples {
		shifted[i] = [2]float64{s[0] + 10, s[1]}
	}
	far, err := kde.NLL(shifted)
	if err != nil {
		t.Fatal(err)
	}
	if !(far > nll+5) {
		t.Errorf("NLL of shifted samples %v, want far above %v", far, nll)
	}
}

func TestKDEErrors(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name string
		data [][2]float64
		want string
	}{
		{"empty", nil, "empty"},
		{"two points", [][2]float64{{0, 0}, {1, 1}}, "at least 3"},
		{"NaN", [][2]float64{{0, 0}, {1, nan}, {2, 1}}, "not finite"},
		{"Inf", [][2]float64{{0, 0}, {1, 0}, {math.Inf(1), 1}}, "not finite"},
		{"collinear", [][2]float64{{0, 0}, {1, 1}, {2, 2}, {3, 3}}, "positive definite"},
		{"identical", [][2]float64{{1, 1}, {1, 1}, {1, 1}}, "positive definite"},
	} {
		_, err := NewKDE(tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewKDE error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	kde, err := NewKDE([][2]float64{{1, 0}, {-1, 0}, {0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kde.NLL(nil); err == nil {
		t.Error("NLL(nil) gave no error")
	}
	if _, err := kde.NLL([][2]float64{{0, 0}, {nan, 0}}); err == nil {
		t.Error("NLL with a NaN sample gave no error")
	}
	if v := kde.LogPDF([2]float64{nan, 0}); !math.IsNaN(v) {
		t.Errorf("LogPDF(NaN) = %v, want NaN", v)
	}
	if v := kde.LogPDF([2]float64{math.Inf(1), 0}); !math.IsInf(v, -1) {
		t.Errorf("LogPDF(+Inf) = %v, want -Inf", v)
	}
}

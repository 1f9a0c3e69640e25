package metrics

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Gaussian is a multivariate normal fitted to a set of feature vectors: the statistics
// that the Fréchet distance compares. Fit the reference set (e.g. the evaluator's
// features of the MNIST test set) once and compare many sample sets with it.
type Gaussian struct {
	// Mean is the mean feature vector.
	Mean []float64
	// Cov is the sample covariance (normalised by N-1, as numpy's np.cov and the
	// reference FID code).
	Cov *mat.SymDense
	// N is the number of vectors the Gaussian was fitted to.
	N int
}

// Dim returns the dimension of the features.
func (g *Gaussian) Dim() int { return len(g.Mean) }

// FitGaussian fits a Gaussian to feature vectors, one per entry of features, all of the
// same length. It needs at least two vectors, all values finite.
func FitGaussian(features [][]float64) (*Gaussian, error) {
	if len(features) < 2 {
		return nil, fmt.Errorf("metrics: FitGaussian needs at least 2 feature vectors, got %d", len(features))
	}
	d := len(features[0])
	if d == 0 {
		return nil, fmt.Errorf("metrics: FitGaussian: empty feature vectors")
	}
	x := mat.NewDense(len(features), d, nil)
	for i, f := range features {
		if len(f) != d {
			return nil, fmt.Errorf("metrics: FitGaussian: feature vector %d has length %d, vector 0 has %d", i, len(f), d)
		}
		x.SetRow(i, f)
	}
	return fitDense(x)
}

// FitGaussianFlat is FitGaussian for n vectors of dim values stored one after the other
// (e.g. the flat values of an [n, dim] float32 tensor).
func FitGaussianFlat(flat []float32, dim int) (*Gaussian, error) {
	if dim <= 0 || len(flat)%dim != 0 {
		return nil, fmt.Errorf("metrics: FitGaussianFlat: %d values are not a whole number of vectors of dimension %d", len(flat), dim)
	}
	n := len(flat) / dim
	if n < 2 {
		return nil, fmt.Errorf("metrics: FitGaussianFlat needs at least 2 feature vectors, got %d", n)
	}
	data := make([]float64, len(flat))
	for i, v := range flat {
		data[i] = float64(v)
	}
	return fitDense(mat.NewDense(n, dim, data))
}

// fitDense fits a Gaussian to the rows of x (at least 2), centring x in place.
func fitDense(x *mat.Dense) (*Gaussian, error) {
	n, d := x.Dims()
	mean := make([]float64, d)
	for i := range n {
		for j, v := range x.RawRowView(i) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("metrics: feature %d of vector %d is %v", j, i, v)
			}
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for i := range n {
		row := x.RawRowView(i)
		for j := range row {
			row[j] -= mean[j]
		}
	}
	cov := mat.NewSymDense(d, nil)
	cov.SymOuterK(1/float64(n-1), x.T())
	return &Gaussian{Mean: mean, Cov: cov, N: n}, nil
}

// FrechetDistance returns the Fréchet distance between two Gaussians,
//
//	||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)),
//
// the squared 2-Wasserstein distance between them (FID when the features are those of
// an image classifier). The trace of the matrix square root is computed stably as the
// sum of the square roots of the eigenvalues of the symmetric positive semi-definite
// matrix S1^(1/2) S2 S1^(1/2) (which has the eigenvalues of S1 S2), with tiny negative
// eigenvalues from rounding clipped to zero; a tiny negative result is clipped to zero
// too. The value is biased upwards at small sample counts: compare distances only
// between sets of equal size, and state that size (e.g. "FID(n=1000)").
func FrechetDistance(a, b *Gaussian) (float64, error) {
	if err := checkGaussian("first", a); err != nil {
		return 0, err
	}
	if err := checkGaussian("second", b); err != nil {
		return 0, err
	}
	if a.Dim() != b.Dim() {
		return 0, fmt.Errorf("metrics: FrechetDistance: dimensions %d and %d differ", a.Dim(), b.Dim())
	}
	var meanTerm float64
	for i := range a.Mean {
		d := a.Mean[i] - b.Mean[i]
		meanTerm += d * d
	}
	sqrtA, err := symSqrt(a.Cov)
	if err != nil {
		return 0, err
	}
	var m, prod mat.Dense
	prod.Mul(sqrtA, b.Cov)
	m.Mul(&prod, sqrtA)
	n := a.Dim()
	sym := mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			sym.SetSym(i, j, (m.At(i, j)+m.At(j, i))/2)
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(sym, false) {
		return 0, fmt.Errorf("metrics: FrechetDistance: eigen decomposition of S1^(1/2) S2 S1^(1/2) failed")
	}
	var traceSqrt float64
	for _, v := range eig.Values(nil) {
		traceSqrt += math.Sqrt(math.Max(v, 0))
	}
	fd := meanTerm + mat.Trace(a.Cov) + mat.Trace(b.Cov) - 2*traceSqrt
	if math.IsNaN(fd) || math.IsInf(fd, 0) {
		return 0, fmt.Errorf("metrics: FrechetDistance is %v", fd)
	}
	return math.Max(fd, 0), nil
}

// FrechetDistanceFeatures fits a Gaussian to each set of feature vectors and returns
// the Fréchet distance between them.
func FrechetDistanceFeatures(a, b [][]float64) (float64, error) {
	ga, err := FitGaussian(a)
	if err != nil {
		return 0, err
	}
	gb, err := FitGaussian(b)
	if err != nil {
		return 0, err
	}
	return FrechetDistance(ga, gb)
}

// checkGaussian reports a Gaussian that cannot be compared.
func checkGaussian(which string, g *Gaussian) error {
	if g == nil || g.Cov == nil || len(g.Mean) == 0 {
		return fmt.Errorf("metrics: FrechetDistance: %s Gaussian is empty", which)
	}
	if g.Cov.SymmetricDim() != len(g.Mean) {
		return fmt.Errorf("metrics: FrechetDistance: %s Gaussian has a mean of dimension %d and a %dx%d covariance",
			which, len(g.Mean), g.Cov.SymmetricDim(), g.Cov.SymmetricDim())
	}
	for _, v := range g.Mean {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("metrics: FrechetDistance: %s Gaussian has a non-finite mean", which)
		}
	}
	return nil
}

// symSqrt returns the square root of a symmetric positive semi-definite matrix, its
// negative eigenvalues (rounding errors) clipped to zero.
func symSqrt(s *mat.SymDense) (*mat.Dense, error) {
	var eig mat.EigenSym
	if !eig.Factorize(s, true) {
		return nil, fmt.Errorf("metrics: FrechetDistance: eigen decomposition of a covariance failed")
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	n := len(vals)
	scaled := mat.NewDense(n, n, nil)
	for j, v := range vals {
		r := math.Sqrt(math.Max(v, 0))
		for i := range n {
			scaled.Set(i, j, vecs.At(i, j)*r)
		}
	}
	var out mat.Dense
	out.Mul(scaled, vecs.T())
	return &out, nil
}

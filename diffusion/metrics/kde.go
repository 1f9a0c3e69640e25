// Package metrics scores 2-D point sets produced by generative models against the real
// data: the KDE negative log-likelihood the STATES assignment is graded with, precision
// and recall on k-NN manifolds, the share of samples off the data outline and, for
// conditional samples, class purity.
//
// Points are [2]float64 values. Functions return errors for bad input (empty sets,
// NaN or infinite coordinates, mismatched sizes); they never panic on it.
package metrics

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
)

// logCutoff is the largest drop below the leading term, in log units, at which a
// kernel term is still added to the log-sum-exp: exp(-69.08) = 1e-30, so skipped terms
// change a log density by less than n*1e-30 (relative).
const logCutoff = 69.08

// KDE is a Gaussian kernel density estimate in two dimensions that reproduces
// scipy.stats.gaussian_kde with its default bandwidth (Scott's factor n^(-1/6)): the
// kernel covariance is the unbiased (ddof=1) data covariance times the factor squared.
// A KDE is immutable after NewKDE and safe for concurrent use.
type KDE struct {
	// wx, wy are the data points in whitened coordinates (L^-1 x with L L^T the kernel
	// covariance), so a kernel's exponent is -|z - w_i|^2 / 2.
	wx, wy []float64
	// inv is L^-1 (lower triangular), used to whiten query points.
	inv00, inv10, inv11 float64
	// logNorm is -log(2 pi) - log det(L) - log n: the log of the kernel normalisation
	// including the 1/n mixture weight.
	logNorm    float64
	factor     float64
	covariance [2][2]float64
}

// NewKDE fits a KDE on points exactly as scipy.stats.gaussian_kde(points.T) does.
// It needs at least three points that do not lie on one line (the covariance must be
// positive definite) and all coordinates finite.
func NewKDE(points [][2]float64) (*KDE, error) {
	if err := checkPoints("KDE data", points); err != nil {
		return nil, err
	}
	n := len(points)
	if n < 3 {
		return nil, fmt.Errorf("metrics: KDE needs at least 3 points, got %d", n)
	}
	data := mat.NewDense(n, 2, nil)
	for i, p := range points {
		data.Set(i, 0, p[0])
		data.Set(i, 1, p[1])
	}
	var dataCov mat.SymDense
	stat.CovarianceMatrix(&dataCov, data, nil) // unbiased, as numpy.cov's default.
	factor := math.Pow(float64(n), -1.0/6.0)   // Scott: n^(-1/(d+4)) with d = 2.
	var cov mat.SymDense
	cov.ScaleSym(factor*factor, &dataCov)

	var chol mat.Cholesky
	if ok := chol.Factorize(&cov); !ok {
		return nil, errors.New("metrics: KDE data covariance is not positive definite (points collinear or identical)")
	}
	var l mat.TriDense
	chol.LTo(&l)
	l00, l10, l11 := l.At(0, 0), l.At(1, 0), l.At(1, 1)
	if !(l00 > 0 && l11 > 0) || math.IsInf(l00, 0) || math.IsInf(l11, 0) {
		return nil, errors.New("metrics: KDE covariance is degenerate")
	}
	k := &KDE{
		wx:     make([]float64, n),
		wy:     make([]float64, n),
		inv00:  1 / l00,
		inv10:  -l10 / (l00 * l11),
		inv11:  1 / l11,
		factor: factor,
		covariance: [2][2]float64{
			{cov.At(0, 0), cov.At(0, 1)},
			{cov.At(1, 0), cov.At(1, 1)},
		},
	}
	k.logNorm = -math.Log(2*math.Pi) - math.Log(l00) - math.Log(l11) - math.Log(float64(n))
	for i, p := range points {
		k.wx[i], k.wy[i] = k.whiten(p)
	}
	return k, nil
}

// whiten maps p to the coordinates in which the kernel is a standard normal.
func (k *KDE) whiten(p [2]float64) (float64, float64) {
	// Forward substitution with L: z0 = x0 / l00, z1 = (x1 - l10 z0) / l11.
	return k.inv00 * p[0], k.inv10*p[0] + k.inv11*p[1]
}

// Len returns the number of data points the KDE was fitted on.
func (k *KDE) Len() int { return len(k.wx) }

// Factor returns the bandwidth factor (Scott's n^(-1/6)), scipy's kde.factor.
func (k *KDE) Factor() float64 { return k.factor }

// Covariance returns the kernel covariance (data covariance times Factor()^2),
// scipy's kde.covariance.
func (k *KDE) Covariance() [2][2]float64 { return k.covariance }

// LogPDF returns the log density (nats) of the KDE at p, computed with a log-sum-exp so
// that points far from the data get a finite value. It returns NaN if p has a NaN
// coordinate.
func (k *KDE) LogPDF(p [2]float64) float64 {
	if math.IsNaN(p[0]) || math.IsNaN(p[1]) {
		return math.NaN()
	}
	if math.IsInf(p[0], 0) || math.IsInf(p[1], 0) {
		return math.Inf(-1)
	}
	zx, zy := k.whiten(p)
	minQ, sum := kernelSum(k.wx, k.wy, zx, zy)
	return k.logNorm - 0.5*minQ + math.Log(sum)
}

// LogPDFs returns LogPDF for every sample, computed in parallel. It returns an error if
// samples is empty or has a NaN or infinite coordinate.
func (k *KDE) LogPDFs(samples [][2]float64) ([]float64, error) {
	if err := checkPoints("samples", samples); err != nil {
		return nil, err
	}
	out := make([]float64, len(samples))
	parallelFor(len(samples), func(start, end int) {
		for i := start; i < end; i++ {
			out[i] = k.LogPDF(samples[i])
		}
	})
	return out, nil
}

// NLL returns the negative mean log density (nats) of samples under the KDE: the
// STATES assignment's grade when the KDE is fitted on all real points. It returns an
// error if samples is empty or has a NaN or infinite coordinate.
func (k *KDE) NLL(samples [][2]float64) (float64, error) {
	logs, err := k.LogPDFs(samples)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, l := range logs {
		sum += l
	}
	return -sum / float64(len(logs)), nil
}

// kernelSumScalar returns the smallest squared distance minQ from (zx, zy) to the
// points (wx[i], wy[i]) and the sum over points of exp(-(q_i - minQ)/2), skipping terms
// below 1e-30 of the leading one. wx and wy must have the same length.
func kernelSumScalar(wx, wy []float64, zx, zy float64) (minQ, sum float64) {
	wy = wy[:len(wx)]
	// Pass 1: the smallest squared distance, the leading term of the sum.
	minQ = math.Inf(1)
	for i, x := range wx {
		dx, dy := zx-x, zy-wy[i]
		if q := dx*dx + dy*dy; q < minQ {
			minQ = q
		}
	}
	// Pass 2: the shifted sum.
	limit := minQ + 2*logCutoff
	for i, x := range wx {
		dx, dy := zx-x, zy-wy[i]
		if q := dx*dx + dy*dy; q <= limit {
			sum += math.Exp(-0.5 * (q - minQ))
		}
	}
	return minQ, sum
}

// checkPoints returns an error if points is empty or has a non-finite coordinate.
func checkPoints(what string, points [][2]float64) error {
	if len(points) == 0 {
		return fmt.Errorf("metrics: %s: empty point set", what)
	}
	for i, p := range points {
		if math.IsNaN(p[0]) || math.IsNaN(p[1]) || math.IsInf(p[0], 0) || math.IsInf(p[1], 0) {
			return fmt.Errorf("metrics: %s: point %d is not finite: (%v, %v)", what, i, p[0], p[1])
		}
	}
	return nil
}

// parallelFor splits [0, n) into contiguous chunks and runs fn on them from
// GOMAXPROCS goroutines, returning when all are done.
func parallelFor(n int, fn func(start, end int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		fn(0, n)
		return
	}
	// Several chunks per worker keep the load balanced when costs differ per item.
	chunks := workers * 8
	if chunks > n {
		chunks = n
	}
	next := make(chan int, chunks)
	for c := 0; c < chunks; c++ {
		next <- c
	}
	close(next)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				fn(c*n/chunks, (c+1)*n/chunks)
			}
		}()
	}
	wg.Wait()
}

package spiral

import (
	"fmt"
	"math"

	"github.com/godiffusion/notebooks/diffusion/sampling"
)

// Process is the notebook's forward process: the VP SDE with beta(t) linear from BetaMin at
// t = 0 to BetaMax at t = 1 (sampling.VPSDE), so the exam's K-step schedule is
// beta_k = beta(k/K) and abar_k = abar(k/K) = exp(-int_0^{k/K} beta).
type Process struct {
	BetaMin float64 `json:"beta_min"`
	BetaMax float64 `json:"beta_max"`
}

// DefaultProcess is beta from 0.1 to 20 (Song et al. 2021).
func DefaultProcess() Process { return Process{BetaMin: 0.1, BetaMax: 20} }

// VPSDE returns the process as the sampling core's VPSDE.
func (p Process) VPSDE() sampling.VPSDE {
	return sampling.VPSDE{BetaMin: p.BetaMin, BetaMax: p.BetaMax}
}

// Validate reports a schedule that is not a VP process.
func (p Process) Validate() error {
	if !(p.BetaMin >= 0 && p.BetaMax >= p.BetaMin && p.BetaMax > 0) || math.IsInf(p.BetaMax, 0) {
		return fmt.Errorf("spiral: the schedule needs 0 <= beta_min <= beta_max, beta_max finite > 0; got %g, %g", p.BetaMin, p.BetaMax)
	}
	return nil
}

// Beta returns beta(t).
func (p Process) Beta(t float64) float64 { return p.BetaMin + t*(p.BetaMax-p.BetaMin) }

// Scales returns alpha(t) = sqrt(abar(t)) and sigma(t) = sqrt(1 - abar(t)).
func (p Process) Scales(t float64) (alpha, sigma float64, err error) {
	sc, err := p.VPSDE().Scales(t)
	return sc.Alpha, sc.Sigma, err
}

// Grid returns the reverse-time grid of the exam's K steps, t = k/K for k = K .. 0
// (sampling.UniformGrid(1, 0, K)).
func Grid(K int) ([]float64, error) {
	if K < 1 {
		return nil, fmt.Errorf("spiral: the number of steps K must be >= 1, got %d", K)
	}
	return sampling.UniformGrid(1, 0, K)
}

// ScoreModel is a score model that can also return the divergence of its score,
// tr(d s / d x), per sample: what the exact log-likelihood along the PF-ODE needs.
type ScoreModel interface {
	sampling.Model // Predicts() == sampling.Score
	// ScoreAndTrace returns the scores (n*2 values) and their divergences (n values) at the
	// points x (n*2 values) and times t (n values).
	ScoreAndTrace(x []float32, t []float64) (score []float32, trace []float64, err error)
}

// Exact is the exact score of the mixture's marginals p_t under the process: a
// sampling.Model predicting sampling.Score, and a ScoreModel.
type Exact struct {
	Mixture *Mixture
	Process Process
}

// Predicts returns sampling.Score.
func (Exact) Predicts() sampling.Prediction { return sampling.Score }

// Predict returns the exact scores grad log p_t(x) (cond is ignored).
func (e Exact) Predict(x []float32, t []float64, _ []int) ([]float32, error) {
	s, _, err := e.eval(x, t, false)
	return s, err
}

// ScoreAndTrace returns the exact scores and the traces of the Hessians of log p_t.
func (e Exact) ScoreAndTrace(x []float32, t []float64) ([]float32, []float64, error) {
	return e.eval(x, t, true)
}

func (e Exact) eval(x []float32, t []float64, withTrace bool) ([]float32, []float64, error) {
	if e.Mixture == nil {
		return nil, nil, fmt.Errorf("spiral: Exact without a mixture")
	}
	if len(x) != Dim*len(t) {
		return nil, nil, fmt.Errorf("spiral: %d values for %d times (want 2 per time)", len(x), len(t))
	}
	score := make([]float32, len(x))
	var trace []float64
	if withTrace {
		trace = make([]float64, len(t))
	}
	var g Marginal
	lastT := math.NaN()
	for i, ti := range t {
		if ti != lastT {
			a, s, err := e.Process.Scales(ti)
			if err != nil {
				return nil, nil, err
			}
			g, lastT = e.Mixture.At(a, s), ti
		}
		_, sc, tr := g.Eval(float64(x[2*i]), float64(x[2*i+1]))
		score[2*i], score[2*i+1] = float32(sc[0]), float32(sc[1])
		if withTrace {
			trace[i] = tr
		}
	}
	return score, trace, nil
}

// NoScore is the model whose score is 0 everywhere: the reverse SDE without the score term
// (the exam's "run without the score"), which only shrinks and adds noise.
type NoScore struct{}

// Predicts returns sampling.Score.
func (NoScore) Predicts() sampling.Prediction { return sampling.Score }

// Predict returns zeros.
func (NoScore) Predict(x []float32, _ []float64, _ []int) ([]float32, error) {
	return make([]float32, len(x)), nil
}

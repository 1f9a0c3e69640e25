package sampling

import (
	"fmt"
	"math"
)

// Prediction names what a Model predicts. Every sampler accepts every kind: it converts the
// prediction to the pair (x0, eps) with the Process's scales before its update.
type Prediction string

const (
	// Noise is an eps-prediction: E[eps | x_t] (Ho et al. 2020; ddpm, the imagediff DDPM).
	Noise Prediction = "noise"
	// Velocity is dx_t/dt along the forward path, alpha'(t) x0 + sigma'(t) eps; for the Flow
	// process (x_tau = tau x0 + (1 - tau) eps) it is x0 - eps (flow matching; imagediff Flow).
	Velocity Prediction = "velocity"
	// Score is grad_x log p_t(x) = -eps / sigma(t) (score models).
	Score Prediction = "score"
	// X0 is a prediction of the clean data E[x0 | x_t].
	X0 Prediction = "x0"
)

// Valid reports an unknown prediction kind.
func (p Prediction) Valid() error {
	switch p {
	case Noise, Velocity, Score, X0:
		return nil
	}
	return fmt.Errorf("sampling: unknown prediction kind %q (want %q, %q, %q or %q)", p, Noise, Velocity, Score, X0)
}

// Null is the condition of an unconditional prediction (classifier-free guidance's null
// class). Any negative condition means unconditional.
const Null = -1

// Model is a (conditional) denoising model over flat float32 batches.
//
// Predict evaluates n = len(t) samples: x holds them row-major (n*D values, D = len(x)/n),
// t[i] is the time of sample i in the time variable of the Process the model was trained on
// (the step index k for Discrete, t in [0, 1] for VPSDE, tau in [0, 1] for Flow; see Process),
// and cond is nil (all unconditional) or holds one condition per sample (a class label, or
// Null). It returns n*D values of the kind Predicts reports. Predict must not retain or
// modify x, t or cond, and must return a fresh slice (samplers reuse their buffers).
// Samplers call Predict with the whole batch; a model that needs smaller batches splits
// them itself.
type Model interface {
	Predict(x []float32, t []float64, cond []int) ([]float32, error)
	Predicts() Prediction
}

// FuncModel adapts a function to the Model interface (tests, quick adapters).
type FuncModel struct {
	Kind Prediction
	Func func(x []float32, t []float64, cond []int) ([]float32, error)
}

// Predict calls f.Func.
func (f FuncModel) Predict(x []float32, t []float64, cond []int) ([]float32, error) {
	return f.Func(x, t, cond)
}

// Predicts returns f.Kind.
func (f FuncModel) Predicts() Prediction { return f.Kind }

// predict calls m and checks the size of its answer.
func predict(m Model, x []float32, t []float64, cond []int) ([]float32, error) {
	out, err := m.Predict(x, t, cond)
	if err != nil {
		return nil, err
	}
	if len(out) != len(x) {
		return nil, fmt.Errorf("sampling: the model returned %d values for %d inputs (%d samples)", len(out), len(x), len(t))
	}
	return out, nil
}

// toX0Eps converts the prediction pred of kind k for the samples x (all at scales sc) into
// the clean-data estimate x0 and the noise estimate eps (written into x0 and eps):
//
//	noise     eps = p,            x0 = (x - sigma eps) / alpha
//	score     eps = -sigma p,     x0 = (x - sigma eps) / alpha
//	x0        x0 = p,             eps = (x - alpha x0) / sigma
//	velocity  x0 = (sigma' x - sigma v) / det, eps = (alpha v - alpha' x) / det,
//	          det = alpha sigma' - sigma alpha'
func toX0Eps(k Prediction, sc Scales, x, pred, x0, eps []float32) error {
	a, s := sc.Alpha, sc.Sigma
	switch k {
	case Noise, Score:
		if !(a > 0) {
			return fmt.Errorf("sampling: cannot turn a %s prediction into x0 where alpha(t) = %g (pure noise)", k, a)
		}
		ce := 1.0
		if k == Score {
			ce = -s
		}
		ia := 1 / a
		for j, p := range pred {
			e := ce * float64(p)
			eps[j] = float32(e)
			x0[j] = float32((float64(x[j]) - s*e) * ia)
		}
	case X0:
		if !(s > 0) {
			return fmt.Errorf("sampling: cannot turn an x0 prediction into noise where sigma(t) = %g (clean data)", s)
		}
		is := 1 / s
		for j, p := range pred {
			x0[j] = p
			eps[j] = float32((float64(x[j]) - a*float64(p)) * is)
		}
	case Velocity:
		det := a*sc.DSigma - s*sc.DAlpha
		if det == 0 || math.IsNaN(det) || math.IsInf(det, 0) {
			return fmt.Errorf("sampling: cannot convert a velocity prediction at scales %+v (alpha sigma' - sigma alpha' = %g)", sc, det)
		}
		id := 1 / det
		for j, p := range pred {
			xj, v := float64(x[j]), float64(p)
			x0[j] = float32((sc.DSigma*xj - s*v) * id)
			eps[j] = float32((a*v - sc.DAlpha*xj) * id)
		}
	default:
		return k.Valid()
	}
	return nil
}

// fromX0Eps writes the prediction of kind k into out given x0 and eps at scales sc.
func fromX0Eps(k Prediction, sc Scales, x0, eps, out []float32) error {
	switch k {
	case Noise:
		copy(out, eps)
	case X0:
		copy(out, x0)
	case Score:
		if !(sc.Sigma > 0) {
			return fmt.Errorf("sampling: the score is undefined where sigma(t) = %g", sc.Sigma)
		}
		is := -1 / sc.Sigma
		for j, e := range eps {
			out[j] = float32(float64(e) * is)
		}
	case Velocity:
		for j := range out {
			out[j] = float32(sc.DAlpha*float64(x0[j]) + sc.DSigma*float64(eps[j]))
		}
	default:
		return k.Valid()
	}
	return nil
}

// Convert converts predictions pred of kind from, made for the samples x at times t (one per
// sample), into predictions of kind to, with the scales of process p. It returns a new slice.
func Convert(p Process, from, to Prediction, x, pred []float32, t []float64) ([]float32, error) {
	if err := from.Valid(); err != nil {
		return nil, err
	}
	if err := to.Valid(); err != nil {
		return nil, err
	}
	d, err := sampleDim(len(x), len(t))
	if err != nil {
		return nil, err
	}
	if len(pred) != len(x) {
		return nil, fmt.Errorf("sampling: Convert: %d predictions for %d inputs", len(pred), len(x))
	}
	out := make([]float32, len(x))
	if from == to {
		copy(out, pred)
		return out, nil
	}
	x0, eps := make([]float32, d), make([]float32, d)
	err = forEachTime(p, t, func(lo, hi int, sc Scales) error {
		for i := lo; i < hi; i++ {
			r := x[i*d : (i+1)*d]
			if err := toX0Eps(from, sc, r, pred[i*d:(i+1)*d], x0, eps); err != nil {
				return err
			}
			if err := fromX0Eps(to, sc, x0, eps, out[i*d:(i+1)*d]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AsPrediction wraps m so that it predicts kind to (converted with the scales of p).
func AsPrediction(m Model, p Process, to Prediction) (Model, error) {
	if m == nil || p == nil {
		return nil, fmt.Errorf("sampling: AsPrediction needs a model and a process")
	}
	if err := to.Valid(); err != nil {
		return nil, err
	}
	if err := m.Predicts().Valid(); err != nil {
		return nil, err
	}
	if m.Predicts() == to {
		return m, nil
	}
	return FuncModel{Kind: to, Func: func(x []float32, t []float64, cond []int) ([]float32, error) {
		pred, err := predict(m, x, t, cond)
		if err != nil {
			return nil, err
		}
		return Convert(p, m.Predicts(), to, x, pred, t)
	}}, nil
}

// sampleDim returns the number of values per sample of a batch of n samples in size values.
func sampleDim(size, n int) (int, error) {
	if n < 1 || size < n || size%n != 0 {
		return 0, fmt.Errorf("sampling: %d values do not make %d samples", size, n)
	}
	return size / n, nil
}

// forEachTime calls f for each run [lo, hi) of samples with equal times, with their scales.
func forEachTime(p Process, t []float64, f func(lo, hi int, sc Scales) error) error {
	for lo := 0; lo < len(t); {
		hi := lo + 1
		for hi < len(t) && t[hi] == t[lo] {
			hi++
		}
		sc, err := p.Scales(t[lo])
		if err != nil {
			return err
		}
		if err := f(lo, hi, sc); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

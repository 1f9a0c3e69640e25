package sampling

import (
	"fmt"
	"math"
)

// Guidance wrappers take models and return a Model of the same interface, so every sampler
// samples guided models unchanged. Their output is of the wrapped model's kind.

// Interval is a closed interval of times (in the process's time variable) where guidance
// applies (Kynkaanniemi et al. 2024, "Applying guidance in a limited interval"); outside it
// the wrappers return the conditional (or main) prediction alone. A nil *Interval means all
// times.
type Interval struct{ Lo, Hi float64 }

func (iv *Interval) contains(t float64) bool { return iv == nil || (t >= iv.Lo && t <= iv.Hi) }

func checkGuidance(what string, scale float64, iv *Interval) error {
	if !(scale >= 0) || math.IsInf(scale, 0) {
		return fmt.Errorf("sampling.%s: the guidance scale must be a finite number >= 0, got %g", what, scale)
	}
	if iv != nil && !(iv.Lo <= iv.Hi) {
		return fmt.Errorf("sampling.%s: empty guidance interval [%g, %g]", what, iv.Lo, iv.Hi)
	}
	return nil
}

// guidedModel combines predictions p_weak + scale (p_strong - p_weak) per sample.
type guidedModel struct {
	kind    Prediction
	predict func(x []float32, t []float64, cond []int) ([]float32, error)
}

// Predict returns the guided prediction.
func (g *guidedModel) Predict(x []float32, t []float64, cond []int) ([]float32, error) {
	return g.predict(x, t, cond)
}

// Predicts returns the kind of the wrapped model.
func (g *guidedModel) Predicts() Prediction { return g.kind }

// combine writes weak + scale (strong - weak) into strong, for sample rows of d values.
func combine(strong, weak []float32, scale float64) {
	for j, s := range strong {
		w := float64(weak[j])
		strong[j] = float32(w + scale*(float64(s)-w))
	}
}

// ClassifierFree returns classifier-free guidance of m (Ho & Salimans 2022):
// p_u + scale (p_c - p_u), with p_c = m(x, t, cond) and p_u = m(x, t, Null). scale 0 is
// the unconditional model, 1 the conditional one (returned as m itself, at no extra cost).
// For the guided samples (cond not Null, t in the interval) the conditional and unconditional
// predictions are made in one call of m on a batch of up to 2N samples. Samples with a Null
// condition get the unconditional prediction. Linear in the prediction, so it is the same rule
// for every kind (eps, velocity, score, x0).
func ClassifierFree(m Model, scale float64, iv *Interval) (Model, error) {
	if m == nil {
		return nil, fmt.Errorf("sampling.ClassifierFree: nil model")
	}
	if err := checkGuidance("ClassifierFree", scale, iv); err != nil {
		return nil, err
	}
	if scale == 1 {
		return m, nil
	}
	return &guidedModel{kind: m.Predicts(), predict: func(x []float32, t []float64, cond []int) ([]float32, error) {
		d, err := sampleDim(len(x), len(t))
		if err != nil {
			return nil, err
		}
		if cond == nil {
			return predict(m, x, t, nil)
		}
		if len(cond) != len(t) {
			return nil, fmt.Errorf("sampling: classifier-free guidance: %d conditions for %d samples", len(cond), len(t))
		}
		var guided []int
		for i, c := range cond {
			if c >= 0 && iv.contains(t[i]) {
				guided = append(guided, i)
			}
		}
		if len(guided) == 0 {
			return predict(m, x, t, cond)
		}
		n := len(t)
		bx := make([]float32, 0, len(x)+len(guided)*d)
		bt := make([]float64, 0, n+len(guided))
		bc := make([]int, 0, n+len(guided))
		bx, bt, bc = append(bx, x...), append(bt, t...), append(bc, cond...)
		for _, i := range guided {
			bx = append(bx, x[i*d:(i+1)*d]...)
			bt = append(bt, t[i])
			bc = append(bc, Null)
		}
		out, err := predict(m, bx, bt, bc)
		if err != nil {
			return nil, err
		}
		for k, i := range guided {
			combine(out[i*d:(i+1)*d], out[(n+k)*d:(n+k+1)*d], scale)
		}
		return out[:n*d], nil
	}}, nil
}

// Autoguidance returns main guided by a weaker version of itself (Karras et al. 2024):
// p_weak + scale (p_main - p_weak), both with the same condition; for t outside the interval
// the main prediction alone. Both models must predict the same kind. With main == weak it
// is main.
func Autoguidance(main, weak Model, scale float64, iv *Interval) (Model, error) {
	if main == nil || weak == nil {
		return nil, fmt.Errorf("sampling.Autoguidance: needs a main and a weak model")
	}
	if err := checkGuidance("Autoguidance", scale, iv); err != nil {
		return nil, err
	}
	if main.Predicts() != weak.Predicts() {
		return nil, fmt.Errorf("sampling.Autoguidance: the main model predicts %q, the weak one %q (wrap one with AsPrediction)", main.Predicts(), weak.Predicts())
	}
	return &guidedModel{kind: main.Predicts(), predict: func(x []float32, t []float64, cond []int) ([]float32, error) {
		d, err := sampleDim(len(x), len(t))
		if err != nil {
			return nil, err
		}
		out, err := predict(main, x, t, cond)
		if err != nil {
			return nil, err
		}
		guide := false
		for _, ti := range t {
			guide = guide || iv.contains(ti)
		}
		if !guide {
			return out, nil
		}
		w, err := predict(weak, x, t, cond)
		if err != nil {
			return nil, err
		}
		for i, ti := range t {
			if iv.contains(ti) {
				combine(out[i*d:(i+1)*d], w[i*d:(i+1)*d], scale)
			}
		}
		return out, nil
	}}, nil
}

// GradFunc returns grad_x log p(cond | x_t, t) for every sample (n*D values), e.g. the
// gradient of a noisy classifier's log-softmax at the requested class, taken by GoMLX
// autodiff inside the function. It is called only with conditions that are not Null.
type GradFunc func(x []float32, t []float64, cond []int) ([]float32, error)

// ClassifierGuidance returns m guided by a classifier (Dhariwal & Nichol 2021; the STATES
// assignment): the score becomes score + scale * grad, that is
// eps_hat = eps - scale * sigma(t) * grad (sigma = sqrt(1 - abar_t) on VP processes), and
// x0_hat = x0 + scale sigma^2 / alpha grad, v_hat = v + scale sigma (alpha' sigma / alpha -
// sigma') grad for the other kinds, with the scales of process p. Samples with a Null
// condition, or at a time outside the interval iv (nil: all times), are not guided and cost
// no gradient: guiding only the noisier times leaves the last steps to the model alone.
func ClassifierGuidance(m Model, p Process, grad GradFunc, scale float64, iv *Interval) (Model, error) {
	if m == nil || p == nil || grad == nil {
		return nil, fmt.Errorf("sampling.ClassifierGuidance: needs a model, a process and a gradient function")
	}
	if err := checkGuidance("ClassifierGuidance", scale, iv); err != nil {
		return nil, err
	}
	kind := m.Predicts()
	if err := kind.Valid(); err != nil {
		return nil, err
	}
	return &guidedModel{kind: kind, predict: func(x []float32, t []float64, cond []int) ([]float32, error) {
		d, err := sampleDim(len(x), len(t))
		if err != nil {
			return nil, err
		}
		out, err := predict(m, x, t, cond)
		if err != nil || cond == nil || scale == 0 {
			return out, err
		}
		if len(cond) != len(t) {
			return nil, fmt.Errorf("sampling: classifier guidance: %d conditions for %d samples", len(cond), len(t))
		}
		// Guide the samples with a condition at a time in the interval, in one call of grad.
		var idx []int
		var gx []float32
		var gt []float64
		var gc []int
		for i, c := range cond {
			if c >= 0 && iv.contains(t[i]) {
				idx = append(idx, i)
				gx = append(gx, x[i*d:(i+1)*d]...)
				gt = append(gt, t[i])
				gc = append(gc, c)
			}
		}
		if len(idx) == 0 {
			return out, nil
		}
		g, err := grad(gx, gt, gc)
		if err != nil {
			return nil, fmt.Errorf("sampling: classifier guidance gradient: %w", err)
		}
		if len(g) != len(gx) {
			return nil, fmt.Errorf("sampling: the guidance gradient has %d values for %d inputs", len(g), len(gx))
		}
		err = forEachTime(p, gt, func(lo, hi int, sc Scales) error {
			var c float64
			switch kind {
			case Noise:
				c = -scale * sc.Sigma
			case Score:
				c = scale
			case X0, Velocity:
				if !(sc.Alpha > 0) {
					return fmt.Errorf("sampling: classifier guidance of a %s prediction needs alpha(t) > 0, got %g", kind, sc.Alpha)
				}
				c = scale * sc.Sigma * sc.Sigma / sc.Alpha
				if kind == Velocity {
					c = scale * sc.Sigma * (sc.DAlpha*sc.Sigma/sc.Alpha - sc.DSigma)
				}
			}
			for k := lo; k < hi; k++ {
				row, gr := out[idx[k]*d:(idx[k]+1)*d], g[k*d:(k+1)*d]
				for j := range row {
					row[j] = float32(float64(row[j]) + c*float64(gr[j]))
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	}}, nil
}

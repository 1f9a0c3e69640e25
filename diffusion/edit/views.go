package edit

import (
	"fmt"
	"math/rand/v2"

	"github.com/godiffusion/notebooks/diffusion/imageops"
	"github.com/godiffusion/notebooks/diffusion/sampling"
)

// imageStream returns the random stream of image i of a seed.
func imageStream(seed int64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15^uint64(i)))
}

// View is one reading of a visual anagram: the image seen through Transform should read as
// the class Cond.
type View struct {
	Transform imageops.Transform
	Cond      int
}

// Anagram returns the model of a visual anagram over views (Geng et al. 2024; CS180 5A):
// its prediction for x at t is the mean over the views of
// T^-1 m(T x, t, view.Cond), so that the sample reads as each view's class when seen
// through its transform (5A: eps = (eps(x, p1) + flip(eps(flip(x), p2))) / 2, views
// {identity, c1} and {flip, c2}). m is usually classifier-free guided; the views' estimates
// are made in one call of m. The transforms are pixel permutations, so the mean of the noise
// estimates is still an estimate of white noise. The conditions of the sampler are not used:
// they must be nil or Null.
func Anagram(m sampling.Model, views ...View) (sampling.Model, error) {
	if m == nil {
		return nil, fmt.Errorf("edit.Anagram: nil model")
	}
	if len(views) < 1 {
		return nil, fmt.Errorf("edit.Anagram: no views")
	}
	inv := make([]imageops.Transform, len(views))
	for k, v := range views {
		if v.Cond < 0 {
			return nil, fmt.Errorf("edit.Anagram: view %d (%s) has no class (condition %d)", k, v.Transform.Name, v.Cond)
		}
		if v.Transform.Shape != views[0].Transform.Shape {
			return nil, fmt.Errorf("edit.Anagram: views of different image shapes (%v, %v)", views[0].Transform.Shape, v.Transform.Shape)
		}
		inv[k] = v.Transform.Inverse()
	}
	shape := views[0].Transform.Shape
	return sampling.FuncModel{Kind: m.Predicts(), Func: func(x []float32, t []float64, cond []int) ([]float32, error) {
		if err := unconditional("Anagram", cond); err != nil {
			return nil, err
		}
		n, err := shape.Count(len(x))
		if err != nil || n != len(t) {
			return nil, fmt.Errorf("edit.Anagram: %d values are not %d images of %v", len(x), len(t), shape)
		}
		bx := make([]float32, 0, len(views)*len(x))
		bt := make([]float64, 0, len(views)*n)
		bc := make([]int, 0, len(views)*n)
		for _, v := range views {
			tx, err := v.Transform.Apply(x)
			if err != nil {
				return nil, err
			}
			bx, bt = append(bx, tx...), append(bt, t...)
			for range n {
				bc = append(bc, v.Cond)
			}
		}
		pred, err := m.Predict(bx, bt, bc)
		if err != nil {
			return nil, err
		}
		if len(pred) != len(bx) {
			return nil, fmt.Errorf("edit.Anagram: the model returned %d values for %d", len(pred), len(bx))
		}
		out := make([]float32, len(x))
		w := 1 / float32(len(views))
		for k := range views {
			back, err := inv[k].Apply(pred[k*len(x) : (k+1)*len(x)])
			if err != nil {
				return nil, err
			}
			for j, v := range back {
				out[j] += w * v
			}
		}
		return out, nil
	}}, nil
}

// Hybrid returns the model of a hybrid image (CS180 5A, after Oliva et al. 2006): its
// prediction is lowpass(m(x, t, low)) + highpass(m(x, t, high)), the high-pass being the
// estimate minus its blur, so that the sample reads as class low from afar (blurred) and as
// class high up close. Both estimates are made in one call of m (usually classifier-free
// guided). The conditions of the sampler are not used: they must be nil or Null.
func Hybrid(m sampling.Model, shape imageops.Shape, blur imageops.Blur, low, high int) (sampling.Model, error) {
	if m == nil {
		return nil, fmt.Errorf("edit.Hybrid: nil model")
	}
	if err := blur.Validate(); err != nil {
		return nil, fmt.Errorf("edit.Hybrid: %w", err)
	}
	if low < 0 || high < 0 {
		return nil, fmt.Errorf("edit.Hybrid: both classes must be set, got low %d, high %d", low, high)
	}
	return sampling.FuncModel{Kind: m.Predicts(), Func: func(x []float32, t []float64, cond []int) ([]float32, error) {
		if err := unconditional("Hybrid", cond); err != nil {
			return nil, err
		}
		n := len(t)
		bx := append(append(make([]float32, 0, 2*len(x)), x...), x...)
		bt := append(append(make([]float64, 0, 2*n), t...), t...)
		bc := make([]int, 2*n)
		for i := range n {
			bc[i], bc[n+i] = low, high
		}
		pred, err := m.Predict(bx, bt, bc)
		if err != nil {
			return nil, err
		}
		if len(pred) != len(bx) {
			return nil, fmt.Errorf("edit.Hybrid: the model returned %d values for %d", len(pred), len(bx))
		}
		lo, err := blur.Apply(pred[:len(x)], shape)
		if err != nil {
			return nil, err
		}
		hi, err := blur.HighPass(pred[len(x):], shape)
		if err != nil {
			return nil, err
		}
		for j := range lo {
			lo[j] += hi[j]
		}
		return lo, nil
	}}, nil
}

func unconditional(what string, cond []int) error {
	for _, c := range cond {
		if c >= 0 {
			return fmt.Errorf("edit.%s: the model carries its own classes; sample it without conditions (got %d)", what, c)
		}
	}
	return nil
}

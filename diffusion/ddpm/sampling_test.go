package ddpm

import (
	"math"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/sampling"
	"github.com/godiffusion/notebooks/diffusion/schedule"
)

// The sampling model is the denoiser's PredictNoise at the given steps, per point, whatever
// the sharding; the guidance gradient is GuidanceGradientValues; bad inputs are errors.
func TestSamplingModelAndGuidanceGrad(t *testing.T) {
	be := testBackend(t)
	sc := schedule.Config{Kind: schedule.Linear, T: 100, BetaStart: 1e-4, BetaEnd: 0.05}
	d, err := NewDenoiser(be, nets.DefaultDenoiserConfig(), sc, 3)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClassifier(be, nets.DefaultClassifierConfig(), sc, 4)
	if err != nil {
		t.Fatal(err)
	}
	x := []float32{0.1, -0.3, 1.2, 0.4, -2, 0.5, 0.7, 0.7, 0, 1}
	steps := []int{0, 99, 50, 3, 3}
	ts := []float64{0, 99, 50, 3, 3}
	want, err := d.PredictNoise(x, steps)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []int{1, 2, 3} {
		m, err := d.shardedModel(w)
		if err != nil {
			t.Fatal(err)
		}
		if m.Predicts() != sampling.Noise {
			t.Fatalf("predicts %q", m.Predicts())
		}
		got, err := m.Predict(x, ts, []int{0, 1, 2, 3, 4}) // conditions are ignored
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-6 {
				t.Fatalf("%d workers: eps[%d] = %g, PredictNoise %g", w, i, got[i], want[i])
			}
		}
		grad, err := c.shardedGrad(w)
		if err != nil {
			t.Fatal(err)
		}
		g, err := grad(x, []float64{7, 7, 7, 7, 7}, []int{4, 0, 1, 2, 3})
		if err != nil {
			t.Fatal(err)
		}
		wantG, err := c.GuidanceGradientValues(x, []int{4, 0, 1, 2, 3}, 7)
		if err != nil {
			t.Fatal(err)
		}
		for i := range wantG {
			if math.Abs(float64(g[i]-wantG[i])) > 1e-6 {
				t.Fatalf("%d workers: grad[%d] = %g, GuidanceGradientValues %g", w, i, g[i], wantG[i])
			}
		}
		if _, err := grad(x, ts, []int{0, 1, 2, 3, 9}); err == nil || !strings.Contains(err.Error(), "label 9") {
			t.Errorf("%d workers: label 9 of 5 classes: %v", w, err)
		}
	}
	m, _ := d.SamplingModel()
	for _, bad := range []struct {
		x  []float32
		ts []float64
	}{{x, []float64{0, 1, 2, 3}}, {x, []float64{0, 1, 2, 3, 100}}, {x, []float64{0, 1, 2.5, 3, 4}}, {x[:3], []float64{0}}} {
		if _, err := m.Predict(bad.x, bad.ts, nil); err == nil {
			t.Errorf("Predict(%d values, t %v): no error", len(bad.x), bad.ts)
		}
	}
}

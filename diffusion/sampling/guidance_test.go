package sampling

import (
	"math"
	"slices"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/schedule"
)

// twoClassModel is the exact denoiser of two Gaussian classes with an "unconditional" mean
// in between (not the mixture: guidance only combines predictions).
func twoClassModel(p Process, kind Prediction) *gaussModel {
	return &gaussModel{p: p, mus: [][]float64{{0, 0}, {1, -0.5}, {-1, 2}}, s: testS, kind: kind}
}

func testBatch(n int) (x []float32, t []float64, cond []int) {
	for i := range n {
		x = append(x, float32(i)*0.3-1, 0.7-float32(i)*0.2)
		t = append(t, float64(100*(i%5)))
		cond = append(cond, i%3-1) // Null, 0, 1, ...
	}
	return
}

// TestClassifierFree: scale 1 is the conditional model, scale 0 the unconditional one, other
// scales follow u + w (c - u) with one batched call, Null samples stay unconditional, and
// outside the guidance interval the prediction is the conditional one.
func TestClassifierFree(t *testing.T) {
	p := Discrete{mustSchedule(t, schedule.DefaultConfig())}
	m := twoClassModel(p, Noise)
	x, ts, cond := testBatch(12)
	null := make([]int, len(cond))
	for i := range null {
		null[i] = Null
	}
	c := must[[]float32](t)(m.Predict(x, ts, cond))
	u := must[[]float32](t)(m.Predict(x, ts, null))

	g1 := must[Model](t)(ClassifierFree(m, 1, nil))
	if got := must[[]float32](t)(g1.Predict(x, ts, cond)); !slices.Equal(got, c) {
		t.Error("CFG with scale 1 differs from the conditional model")
	}
	g0 := must[Model](t)(ClassifierFree(m, 0, nil))
	if got := must[[]float32](t)(g0.Predict(x, ts, cond)); maxAbsDiff(got, u) > 1e-6 {
		t.Error("CFG with scale 0 differs from the unconditional model")
	}
	g := must[Model](t)(ClassifierFree(m, 3, nil))
	m.calls, m.sizes = 0, nil
	got := must[[]float32](t)(g.Predict(x, ts, cond))
	if m.calls != 1 || m.sizes[0] != 12+8 {
		t.Errorf("CFG made %d calls of sizes %v, want one call of 12 + 8 guided samples", m.calls, m.sizes)
	}
	for i := range got {
		want := u[i] + 3*(c[i]-u[i])
		if cond[i/2] < 0 {
			want = u[i]
		}
		if math.Abs(float64(got[i]-want)) > 1e-5 {
			t.Fatalf("CFG value %d = %g, want %g", i, got[i], want)
		}
	}
	gi := must[Model](t)(ClassifierFree(m, 3, &Interval{Lo: 150, Hi: 350}))
	got = must[[]float32](t)(gi.Predict(x, ts, cond))
	for i := range got {
		want := c[i]
		if ti := ts[i/2]; ti >= 150 && ti <= 350 && cond[i/2] >= 0 {
			want = u[i] + 3*(c[i]-u[i])
		}
		if math.Abs(float64(got[i]-want)) > 1e-5 {
			t.Fatalf("CFG with interval: value %d (t = %g) = %g, want %g", i, ts[i/2], got[i], want)
		}
	}
	if g.Predicts() != Noise {
		t.Errorf("CFG predicts %q", g.Predicts())
	}
}

// TestAutoguidance: the same model twice is the model; otherwise weak + w (main - weak).
func TestAutoguidance(t *testing.T) {
	p := Discrete{mustSchedule(t, schedule.DefaultConfig())}
	main, weak := twoClassModel(p, Noise), twoClassModel(p, Noise)
	weak.s = 0.8
	x, ts, cond := testBatch(10)
	want := must[[]float32](t)(main.Predict(x, ts, cond))
	same := must[Model](t)(Autoguidance(main, main, 2.5, nil))
	if got := must[[]float32](t)(same.Predict(x, ts, cond)); !slices.Equal(got, want) {
		t.Errorf("autoguidance of a model by itself differs from it by %g", maxAbsDiff(got, want))
	}
	w := must[[]float32](t)(weak.Predict(x, ts, cond))
	ag := must[Model](t)(Autoguidance(main, weak, 2.5, &Interval{Lo: 0, Hi: 250}))
	got := must[[]float32](t)(ag.Predict(x, ts, cond))
	for i := range got {
		e := want[i]
		if ts[i/2] <= 250 {
			e = w[i] + 2.5*(want[i]-w[i])
		}
		if math.Abs(float64(got[i]-e)) > 1e-5 {
			t.Fatalf("autoguidance value %d = %g, want %g", i, got[i], e)
		}
	}
	if _, err := Autoguidance(main, twoClassModel(p, X0), 2, nil); err == nil {
		t.Error("autoguidance of a noise model by an x0 model: want an error")
	}
}

// TestClassifierGuidance samples the posterior of a Gaussian prior N(0, I) given a
// Gaussian observation y = x0 + N(0, r^2 I) = m, guided by the exact noisy-data likelihood
// gradient grad log p(m | x_t) = alpha (m - alpha x) / (sigma^2 + r^2): the result must be
// N(m / (1 + r^2), r^2 / (1 + r^2)). The guided noise, x0, score and velocity models must
// give the same samples.
func TestClassifierGuidance(t *testing.T) {
	p := Discrete{mustSchedule(t, schedule.DefaultConfig())}
	obs, r2 := []float64{1, -1}, 0.25
	grad := func(x []float32, ts []float64, cond []int) ([]float32, error) {
		out := make([]float32, len(x))
		for i := range ts {
			sc, err := p.Scales(ts[i])
			if err != nil {
				return nil, err
			}
			for j := range 2 {
				out[2*i+j] = float32(sc.Alpha * (obs[j] - sc.Alpha*float64(x[2*i+j])) / (sc.Sigma*sc.Sigma + r2))
			}
		}
		return out, nil
	}
	prior := func(kind Prediction) Model {
		return &gaussModel{p: p, mus: [][]float64{{0, 0}, {0, 0}}, s: 1, kind: kind}
	}
	const n = 4000
	cond := make([]int, n) // class 0 everywhere: guided
	grid := must[[]float64](t)(EvenGrid(500, 500))
	g := must[Model](t)(ClassifierGuidance(prior(Noise), p, grad, 1, nil))
	out := must[[]float32](t)(Ancestral(g, Options{N: n, Dim: 2, Process: p, Grid: grid, Cond: cond, Seed: 9}, BetaVariance))
	mean, variance := moments(out, 2)
	for j := range 2 {
		wm, wv := obs[j]/(1+r2), r2/(1+r2)
		t.Logf("dim %d: mean %.4f (want %.4f) var %.4f (want %.4f)", j, mean[j], wm, variance[j], wv)
		if math.Abs(mean[j]-wm) > 5*math.Sqrt(wv/n)+0.01 || math.Abs(variance[j]-wv) > 5*wv*math.Sqrt(2.0/n)+0.01 {
			t.Errorf("dim %d: guided samples mean %g var %g, want %g, %g", j, mean[j], variance[j], wm, wv)
		}
	}
	// The guidance shift is consistent across prediction kinds.
	dgrid := must[[]float64](t)(EvenGrid(500, 25))
	var ref []float32
	for _, kind := range []Prediction{Noise, X0, Score, Velocity} {
		gk := must[Model](t)(ClassifierGuidance(prior(kind), p, grad, 2, nil))
		got := must[[]float32](t)(DDIM(gk, Options{N: 50, Dim: 2, Process: p, Grid: dgrid, Cond: cond[:50], Seed: 1}, 0))
		if ref == nil {
			ref = got
		} else if d := maxAbsDiff(ref, got); d > 2e-4 {
			t.Errorf("classifier guidance of a %s model differs from the noise model's by %g", kind, d)
		}
	}
	// Null conditions are not guided.
	x, ts, _ := testBatch(4)
	nulls := []int{Null, Null, Null, Null}
	a := must[[]float32](t)(g.Predict(x, ts, nulls))
	b := must[[]float32](t)(prior(Noise).Predict(x, ts, nulls))
	if !slices.Equal(a, b) {
		t.Error("classifier guidance changed unconditional samples")
	}
	// Outside the interval the model's own prediction, without a call of grad; inside it the
	// guided one.
	calls := 0
	counted := func(x []float32, ts []float64, cond []int) ([]float32, error) {
		calls += len(ts)
		return grad(x, ts, cond)
	}
	lo, hi := ts[1], ts[2] // testBatch's times increase
	gi := must[Model](t)(ClassifierGuidance(prior(Noise), p, counted, 1, &Interval{Lo: lo, Hi: hi}))
	cls := []int{0, 0, 0, 0}
	got := must[[]float32](t)(gi.Predict(x, ts, cls))
	plain := must[[]float32](t)(prior(Noise).Predict(x, ts, cls))
	full := must[[]float32](t)(g.Predict(x, ts, cls))
	inside := 0
	for i, ti := range ts {
		want := plain
		if ti >= lo && ti <= hi {
			want, inside = full, inside+1
		}
		if !slices.Equal(got[2*i:2*i+2], want[2*i:2*i+2]) {
			t.Errorf("sample %d at t=%g: interval [%g, %g] guidance gave %v, want %v", i, ti, lo, hi, got[2*i:2*i+2], want[2*i:2*i+2])
		}
	}
	if calls != inside || inside == 0 || inside == len(ts) {
		t.Errorf("the gradient was taken for %d samples, want the %d inside the interval (of %d)", calls, inside, len(ts))
	}
}

// TestConvert: converting the exact denoiser's predictions between all kinds matches its own
// predictions of the other kind; AsPrediction wraps the same conversion.
func TestConvert(t *testing.T) {
	for _, su := range setups(t) {
		x, _, _ := testBatch(10)
		var ts []float64
		for i := range 10 {
			switch su.name {
			case "discrete-cosine":
				ts = append(ts, float64(50+100*i))
			case "vpsde":
				ts = append(ts, 0.05+0.09*float64(i))
			default:
				ts = append(ts, 0.05+0.09*float64(i))
			}
		}
		kinds := []Prediction{Noise, Velocity, Score, X0}
		preds := map[Prediction][]float32{}
		for _, k := range kinds {
			m := &gaussModel{p: su.p, mus: [][]float64{testMu()}, s: testS, kind: k}
			preds[k] = must[[]float32](t)(m.Predict(x, ts, nil))
		}
		for _, from := range kinds {
			for _, to := range kinds {
				got := must[[]float32](t)(Convert(su.p, from, to, x, preds[from], ts))
				for i := range got {
					if math.Abs(float64(got[i]-preds[to][i])) > 2e-4*(1+math.Abs(float64(preds[to][i]))) {
						t.Fatalf("%s: %s -> %s value %d = %g, want %g", su.name, from, to, i, got[i], preds[to][i])
					}
				}
			}
		}
		m := &gaussModel{p: su.p, mus: [][]float64{testMu()}, s: testS, kind: Noise}
		as := must[Model](t)(AsPrediction(m, su.p, X0))
		got := must[[]float32](t)(as.Predict(x, ts, nil))
		if as.Predicts() != X0 || maxAbsDiff(got, preds[X0]) > 2e-4 {
			t.Errorf("%s: AsPrediction(x0) differs by %g", su.name, maxAbsDiff(got, preds[X0]))
		}
	}
}

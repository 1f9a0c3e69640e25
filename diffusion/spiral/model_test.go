package spiral

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/gomlx/compute"
)

func testBackend(t testing.TB) compute.Backend {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The autodiff trace of the network equals finite differences of its score.
func TestNetTraceMatchesFiniteDifferences(t *testing.T) {
	b := testBackend(t)
	for _, scale := range []bool{false, true} {
		cfg := DefaultNet()
		cfg.ScaleBySigma = scale
		cfg.FourierDamped = scale // the damping depends on t only: the trace is unchanged by it
		n, err := NewNet(b, cfg, DefaultProcess(), 3)
		if err != nil {
			t.Fatal(err)
		}
		x := []float32{0.3, -0.7, 1.1, 0.4, -1.5, 1.2}
		ts := []float64{0.05, 0.5, 0.9}
		s, tr, err := n.ScoreAndTrace(x, ts)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := n.Predict(x, ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		h := float32(1e-2)
		for i := range ts {
			if math.Abs(float64(s[2*i]-s2[2*i])) > 1e-5 {
				t.Fatalf("ScoreAndTrace and Predict disagree: %v vs %v", s, s2)
			}
			fd := 0.0
			for d := range Dim {
				xp, xm := append([]float32{}, x[2*i:2*i+2]...), append([]float32{}, x[2*i:2*i+2]...)
				xp[d] += h
				xm[d] -= h
				sp, _ := n.Predict(xp, ts[i:i+1], nil)
				sm, _ := n.Predict(xm, ts[i:i+1], nil)
				fd += float64(sp[d]-sm[d]) / float64(2*h)
			}
			if math.Abs(fd-tr[i]) > 2e-2*(math.Abs(tr[i])+1) {
				t.Errorf("scale %v, sample %d: trace %v, finite differences %v", scale, i, tr[i], fd)
			}
		}
	}
}

// relativeScoreError is |s_net - s_exact| / |s_exact| (root mean squares) on p_t samples.
func relativeScoreError(t *testing.T, n *Net, mix *Mixture, tt float64) float64 {
	x := mix.Sample(1000, rand.New(rand.NewPCG(5, 5)))
	a, sg, _ := n.Process.Scales(tt)
	rng := rand.New(rand.NewPCG(6, 6))
	ts := make([]float64, 1000)
	for i := range ts {
		ts[i] = tt
		x[2*i] = float32(a*float64(x[2*i]) + sg*rng.NormFloat64())
		x[2*i+1] = float32(a*float64(x[2*i+1]) + sg*rng.NormFloat64())
	}
	sn, err := n.Predict(x, ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	se, _ := (Exact{Mixture: mix, Process: n.Process}).Predict(x, ts, nil)
	e2, n2 := 0.0, 0.0
	for i := range sn {
		d := float64(sn[i] - se[i])
		e2 += d * d
		n2 += float64(se[i]) * float64(se[i])
	}
	return math.Sqrt(e2 / n2)
}

// A few hundred steps of either objective lower both validation losses towards the exact
// score's and learn the large-t score; the checkpoint reloads to the same network.
func TestTrainingLearnsTheScore(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network")
	}
	b := testBackend(t)
	mix := testMixture(t)
	for _, obj := range []Objective{Hyvarinen, DSM} {
		n, err := NewNet(b, DefaultNet(), DefaultProcess(), 1)
		if err != nil {
			t.Fatal(err)
		}
		before := relativeScoreError(t, n, mix, 0.7)
		cfg := TrainConfig{Objective: obj, Weighting: Sigma2, Steps: 300, BatchSize: 128, LR: 5e-3, TMin: 1.0 / 200, Seed: 1, ValEvery: 100, EMADecay: 0.99}
		hist, err := n.Train(mix, cfg)
		if err != nil {
			t.Fatal(err)
		}
		after := relativeScoreError(t, n, mix, 0.7)
		t.Logf("%s: val Hyvarinen %v (exact %.3f), DSM %v (exact %.3f); relative score error at t = 0.7: %.3f -> %.3f",
			obj, hist.ValHyvarinen, hist.ExactHyvarinen, hist.ValDSM, hist.ExactDSM, before, after)
		last := len(hist.ValSteps) - 1
		if len(hist.ValSteps) != 3 || hist.ValHyvarinen[last] >= hist.ValHyvarinen[0] || hist.ValDSM[last] >= hist.ValDSM[0] {
			t.Errorf("%s: validation losses did not decrease: %v, %v", obj, hist.ValHyvarinen, hist.ValDSM)
		}
		if hist.ValHyvarinen[last] < hist.ExactHyvarinen-0.1 || hist.ValDSM[last] < hist.ExactDSM-0.1 {
			t.Errorf("%s: validation losses below the exact score's minimum: %v < %v or %v < %v", obj, hist.ValHyvarinen[last], hist.ExactHyvarinen, hist.ValDSM[last], hist.ExactDSM)
		}
		if after > 0.5 || after > before/2 {
			t.Errorf("%s: relative score error at t = 0.7 went from %.3f to %.3f", obj, before, after)
		}
		dir := filepath.Join(t.TempDir(), "score")
		if err := n.Save(dir); err != nil {
			t.Fatal(err)
		}
		m, err := Load(b, dir, &Meta{Net: n.Config, Process: n.Process})
		if err != nil {
			t.Fatal(err)
		}
		if e := relativeScoreError(t, m, mix, 0.7); e != after {
			t.Errorf("%s: the reloaded network has error %v, the trained one %v", obj, e, after)
		}
	}
}

// The Importance weighting estimates the uniform-t objective without bias: its times lie in
// [TMin, 1), its weights average 1 (E_q[p/q] = 1) and the weighted mean of a function of t is
// its uniform mean (here t and 1/sigma^2(t), the scale of the Hyvarinen loss), while it draws
// t < 0.05 43% of the time instead of uniform sampling's 4.5%. A time skew with it is refused.
func TestImportanceWeightingIsUnbiased(t *testing.T) {
	const n, tMin = 400000, 1.0 / 200
	p := DefaultProcess()
	b, err := drawBatch(testMixture(t), Dim, p, batchOptions{size: n, tMin: tMin, skew: 1, weighting: Importance}, rand.New(rand.NewPCG(5, 6)))
	if err != nil {
		t.Fatal(err)
	}
	var sumW, sumWT, sumWInv, small float64
	for i, ti := range b.t {
		if ti < tMin || ti >= 1 {
			t.Fatalf("t = %v outside [%v, 1)", ti, tMin)
		}
		w := float64(b.w[i])
		sigma := float64(b.sigma[i])
		sumW += w
		sumWT += w * float64(ti)
		sumWInv += w / (sigma * sigma)
		if ti < 0.05 {
			small++
		}
	}
	// Uniform means on [tMin, 1]: t -> (1 + tMin) / 2; 1/sigma^2 by the midpoint rule.
	wantInv := 0.0
	const m = 200000
	for k := range m {
		tt := tMin + (1-tMin)*(float64(k)+0.5)/m
		_, s, _ := p.Scales(tt)
		wantInv += 1 / (s * s) / m
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"mean weight", sumW / n, 1}, {"mean t", sumWT / n, (1 + tMin) / 2}, {"mean 1/sigma^2", sumWInv / n, wantInv}} {
		if math.Abs(c.got-c.want) > 0.01*c.want {
			t.Errorf("%s: %v, want %v within 1%%", c.name, c.got, c.want)
		}
	}
	if frac, want := small/n, math.Log(0.05/tMin)/math.Log(1/tMin); math.Abs(frac-want) > 0.01 {
		t.Errorf("t < 0.05 drawn %.1f%% of the time, want %.1f%% (log-uniform; uniform: 4.5%%)", 100*frac, 100*want)
	}
	cfg := TrainConfig{Objective: Hyvarinen, Weighting: Importance, Steps: 1, BatchSize: 1, LR: 1e-3, TMin: tMin, TimeSkew: 3}
	if err := cfg.Validate(); err == nil {
		t.Errorf("Importance with time skew 3 accepted")
	}
}

// Damped Fourier features leave the network as it is near the data (sigma(t) -> 0) and take
// the fine structure out of it where p_t is smooth (sigma(t) near 1): along a line, the damped
// network's score at t = 1 bends far less than the same weights' undamped one.
func TestFourierDampingFadesWithNoise(t *testing.T) {
	b := testBackend(t)
	plain, damped := DefaultNet(), DefaultNet()
	damped.FourierDamped = true
	np, err := NewNet(b, plain, DefaultProcess(), 5)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := NewNet(b, damped, DefaultProcess(), 5)
	if err != nil {
		t.Fatal(err)
	}
	const points = 101
	x := make([]float32, 2*points)
	for i := range points {
		x[2*i], x[2*i+1] = float32(-1+0.02*float64(i)), 0.3
	}
	at := func(n *Net, tv float64) []float32 {
		ts := make([]float64, points)
		for i := range ts {
			ts[i] = tv
		}
		s, err := n.Predict(x, ts, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// sigma(1e-4)^2 ~ 1e-5: every damping factor is above exp(-72e-5 * 4) ~ 0.997.
	sp, sd := at(np, 1e-4), at(nd, 1e-4)
	for i := range sp {
		if d := math.Abs(float64(sp[i] - sd[i])); d > 0.02*(math.Abs(float64(sp[i]))+1) {
			t.Fatalf("near the data the damped network differs: %v vs %v at %d", sd[i], sp[i], i)
		}
	}
	bend := func(s []float32) float64 {
		sum := 0.0
		for i := 1; i+1 < points; i++ {
			for d := range 2 {
				sum += math.Abs(float64(s[2*(i+1)+d] - 2*s[2*i+d] + s[2*(i-1)+d]))
			}
		}
		return sum
	}
	bp, bd := bend(at(np, 1)), bend(at(nd, 1))
	if !(bd < 0.1*bp) {
		t.Errorf("at t = 1 the damped score bends %.4g, the undamped %.4g: want < 0.1x", bd, bp)
	}
	t.Logf("summed |second differences| at t = 1: damped %.4g, undamped %.4g", bd, bp)
}

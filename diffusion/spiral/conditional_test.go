package spiral

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/sampling"
)

// tinyConditional is a small class-conditional network on data of dimension dim.
func tinyConditional(dim, classes int) NetConfig {
	return NetConfig{Width: 32, Layers: 2, Activation: nets.SiLU, ScaleBySigma: true, TimeInput: TimeLogSigma,
		DataDim: dim, Classes: classes, ClassEmbed: 8}
}

// The class input changes the prediction; nil conditions and any negative condition are the
// null class; a class out of range is an error; the checkpoint kind is checked on load.
func TestConditionalNetClasses(t *testing.T) {
	b := testBackend(t)
	n, err := NewNet(b, tinyConditional(3, 4), DefaultProcess(), 2)
	if err != nil {
		t.Fatal(err)
	}
	x := []float32{0.3, -0.2, 0.5, 0.3, -0.2, 0.5, 0.3, -0.2, 0.5, 0.3, -0.2, 0.5}
	ts := []float64{0.4, 0.4, 0.4, 0.4}
	out, err := n.Predict(x, ts, []int{0, 1, sampling.Null, -7})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(x) {
		t.Fatalf("%d outputs for %d inputs", len(out), len(x))
	}
	row := func(i int) []float32 { return out[3*i : 3*i+3] }
	if slices.Equal(row(0), row(1)) || slices.Equal(row(0), row(2)) {
		t.Errorf("the class does not change the score: %v", out)
	}
	if !slices.Equal(row(2), row(3)) {
		t.Errorf("two negative conditions give different scores: %v vs %v", row(2), row(3))
	}
	uncond, err := n.Predict(x, ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(uncond[:3], row(2)) {
		t.Errorf("nil conditions %v differ from the null class %v", uncond[:3], row(2))
	}
	if _, err := n.Predict(x, ts, []int{0, 1, 4, 0}); err == nil || !strings.Contains(err.Error(), "class 4") {
		t.Errorf("class 4 of 4: %v", err)
	}
	if _, err := n.Predict(x, ts, []int{0}); err == nil {
		t.Error("one condition for four samples accepted")
	}
	if _, err := n.Predict(x[:4], ts[:2], nil); err == nil {
		t.Error("4 values for 2 samples of dimension 3 accepted")
	}
	dir := filepath.Join(t.TempDir(), "net")
	if err := n.SaveAs(dir, "test-kind"); err != nil {
		t.Fatal(err)
	}
	m, err := LoadAs(b, dir, "test-kind", &Meta{Net: n.Config, Process: n.Process})
	if err != nil {
		t.Fatal(err)
	}
	again, err := m.Predict(x, ts, []int{0, 1, sampling.Null, -7})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again, out) {
		t.Errorf("the reloaded network predicts %v, the saved one %v", again, out)
	}
	if _, err := Load(b, dir, nil); err == nil || !strings.Contains(err.Error(), `"test-kind"`) {
		t.Errorf("loading another kind as a spiral score: %v", err)
	}
	other := n.Config
	other.DataDim = 2
	if _, err := LoadAs(b, dir, "test-kind", &Meta{Net: other, Process: n.Process}); err == nil {
		t.Error("a checkpoint of dimension 3 loaded as dimension 2")
	}
	for _, bad := range []NetConfig{{Width: 8, Layers: 1, Activation: nets.SiLU, TimeInput: TimeT, Classes: 3},
		{Width: 8, Layers: 1, Activation: nets.SiLU, TimeInput: TimeT, ClassEmbed: 3}, {Width: 8, Layers: 1, Activation: nets.SiLU, TimeInput: TimeT, DataDim: -1}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

// In 3 dimensions the autodiff trace still equals finite differences of the score.
func TestTraceInThreeDimensions(t *testing.T) {
	cfg := tinyConditional(3, 0)
	cfg.ClassEmbed = 0
	n, err := NewNet(testBackend(t), cfg, DefaultProcess(), 4)
	if err != nil {
		t.Fatal(err)
	}
	x := []float32{0.3, -0.7, 1.1, 0.4, -1.5, 0.2}
	ts := []float64{0.1, 0.6}
	_, tr, err := n.ScoreAndTrace(x, ts)
	if err != nil {
		t.Fatal(err)
	}
	h := float32(1e-2)
	for i := range ts {
		fd := 0.0
		for d := range 3 {
			xp, xm := slices.Clone(x[3*i:3*i+3]), slices.Clone(x[3*i:3*i+3])
			xp[d] += h
			xm[d] -= h
			sp, _ := n.Predict(xp, ts[i:i+1], nil)
			sm, _ := n.Predict(xm, ts[i:i+1], nil)
			fd += float64(sp[d]-sm[d]) / float64(2*h)
		}
		if math.Abs(fd-tr[i]) > 2e-2*(math.Abs(tr[i])+1) {
			t.Errorf("sample %d: trace %v, finite differences %v", i, tr[i], fd)
		}
	}
}

// twoClasses is 1-D labelled data: class 0 ~ N(+1.5, 0.1^2), class 1 ~ N(-1.5, 0.1^2).
type twoClasses struct{}

func (twoClasses) Draw(n int, rng *rand.Rand) ([]float32, []int, error) {
	x, y := make([]float32, n), make([]int, n)
	for i := range n {
		y[i] = rng.IntN(2)
		x[i] = float32(1.5*(1-2*float64(y[i])) + 0.1*rng.NormFloat64())
	}
	return x, y, nil
}

// Label dropout replaces about p_uncond of the labels by Null, and leaves the draws of
// unlabelled data unchanged.
func TestLabelDropout(t *testing.T) {
	o := batchOptions{size: 20000, tMin: 0.01, skew: 1, weighting: Uniform, pUncond: 0.3}
	b, err := drawBatch(twoClasses{}, 1, DefaultProcess(), o, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	null := 0
	for _, y := range b.labels {
		if y == sampling.Null {
			null++
		}
	}
	if f := float64(null) / float64(o.size); math.Abs(f-0.3) > 0.015 {
		t.Errorf("%.3f of the labels dropped, want 0.3", f)
	}
	o.pUncond = 0
	b0, _ := drawBatch(twoClasses{}, 1, DefaultProcess(), o, rand.New(rand.NewPCG(1, 2)))
	if slices.Contains(b0.labels, sampling.Null) || !slices.Equal(b0.xt, b.xt) {
		t.Error("without dropout, labels were dropped or the examples changed")
	}
	mix := testMixture(t)
	o.size, o.pUncond = 100, 0.5
	m1, _ := drawBatch(mix, Dim, DefaultProcess(), o, rand.New(rand.NewPCG(3, 4)))
	o.pUncond = 0
	m2, _ := drawBatch(mix, Dim, DefaultProcess(), o, rand.New(rand.NewPCG(3, 4)))
	if !slices.Equal(m1.xt, m2.xt) || m1.labels != nil {
		t.Error("p_uncond changed the draws of unlabelled data")
	}
	if _, err := drawBatch(mix, 3, DefaultProcess(), o, rand.New(rand.NewPCG(3, 4))); err == nil {
		t.Error("2-D data accepted for a 3-D network")
	}
}

// A conditional network trained by TrainOn with label dropout samples each class at its own
// mean, and the null class both.
func TestTrainOnLearnsClasses(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network")
	}
	b := testBackend(t)
	n, err := NewNet(b, tinyConditional(1, 2), DefaultProcess(), 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := TrainConfig{Objective: DSM, Weighting: Sigma2, Steps: 600, BatchSize: 128, LR: 3e-3, TMin: 0.01, Seed: 1, PUncond: 0.2, ValSize: 512, ValEvery: 200}
	hist, err := n.TrainOn(twoClasses{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if hist.ValDSM[len(hist.ValDSM)-1] >= hist.ValDSM[0] {
		t.Errorf("validation DSM did not decrease: %v", hist.ValDSM)
	}
	stats := func(cond int) (mean, positive float64) {
		c := make([]int, 400)
		for i := range c {
			c[i] = cond
		}
		run, err := Sample(n, DefaultProcess(), SampleOptions{N: 400, K: 100, Seed: 5, Dim: 1, Cond: c})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range run.Points {
			mean += float64(v) / 400
			if v > 0 {
				positive += 1.0 / 400
			}
		}
		return mean, positive
	}
	m0, _ := stats(0)
	m1, _ := stats(1)
	_, pu := stats(sampling.Null)
	t.Logf("class 0 mean %.3f, class 1 mean %.3f, null class positive share %.3f", m0, m1, pu)
	if math.Abs(m0-1.5) > 0.3 || math.Abs(m1+1.5) > 0.3 {
		t.Errorf("class means %.3f, %.3f, want +1.5, -1.5", m0, m1)
	}
	if pu < 0.25 || pu > 0.75 {
		t.Errorf("the null class puts %.3f of its samples at the positive mode, want about half", pu)
	}
	if _, err := n.TrainOn(testMixture(t), cfg); err == nil {
		t.Error("unlabelled data accepted for a conditional network")
	}
}

package ddpm

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/schedule"
)

func testBackend(tb testing.TB) compute.Backend {
	tb.Helper()
	b, err := backend.New()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// gaussianData returns n points of N(mean, diag(std^2)).
func gaussianData(n int, mean, std [2]float64, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]float32, 0, 2*n)
	for range n {
		out = append(out, float32(mean[0]+std[0]*rng.NormFloat64()), float32(mean[1]+std[1]*rng.NormFloat64()))
	}
	return out
}

// clusterData returns n points on k small rings around k centers on a circle of radius 1.3,
// labeled by ring.
func clusterData(n, k int, seed uint64) ([]float32, []int) {
	rng := rand.New(rand.NewPCG(seed, 2))
	pts := make([]float32, 0, 2*n)
	labels := make([]int, n)
	for i := range n {
		c := i % k
		a := 2 * math.Pi * float64(c) / float64(k)
		th := 2 * math.Pi * rng.Float64()
		r := 0.3 + 0.03*rng.NormFloat64()
		pts = append(pts, float32(1.3*math.Cos(a)+r*math.Cos(th)), float32(1.3*math.Sin(a)+r*math.Sin(th)))
		labels[i] = c
	}
	return pts, labels
}

func meanStd(pts []float32) (mean, std [2]float64) {
	n := float64(len(pts) / 2)
	for i := 0; i < len(pts); i += 2 {
		mean[0] += float64(pts[i]) / n
		mean[1] += float64(pts[i+1]) / n
	}
	for i := 0; i < len(pts); i += 2 {
		for j := range 2 {
			d := float64(pts[i+j]) - mean[j]
			std[j] += d * d / n
		}
	}
	std[0], std[1] = math.Sqrt(std[0]), math.Sqrt(std[1])
	return
}

var tinyNet = nets.DenoiserConfig{DataDim: 2, HiddenWidth: 64, HiddenLayers: 3, Activation: nets.PReLU}
var tinyClf = nets.ClassifierConfig{DataDim: 2, Hidden: []int{32, 32}, NumClasses: 3, Activation: nets.ReLU}

func TestDenoiserLearnsGaussian(t *testing.T) {
	b := testBackend(t)
	data := gaussianData(1000, [2]float64{1, -0.5}, [2]float64{0.3, 0.6}, 1)
	d, err := NewDenoiser(b, tinyNet, schedule.DefaultConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	hist, err := d.Train(data, nil, TrainConfig{Steps: 400, BatchSize: 128, LR: 3e-3, LRSchedule: lrschedule.Cosine,
		FinalLRFraction: 0.1, Seed: 2, ValEvery: 200, ValSize: 500, Progress: func(int, float64) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 400 || len(hist.TrainLoss) != 400 || len(hist.ValLoss) != 2 {
		t.Fatalf("progress calls %d, losses %d, val %d", calls, len(hist.TrainLoss), len(hist.ValLoss))
	}
	first, last := avg(hist.TrainLoss[:20]), avg(hist.TrainLoss[len(hist.TrainLoss)-50:])
	t.Logf("train loss %.3f -> %.3f, val %v in %s", first, last, hist.ValLoss, hist.Duration)
	if !(last < 0.6*first) {
		t.Errorf("loss did not go down enough: %.3f -> %.3f", first, last)
	}
	s, err := d.Sample(1000, SampleConfig{Seed: 3, RecordEvery: 100})
	if err != nil {
		t.Fatal(err)
	}
	m, sd := meanStd(s.Points)
	t.Logf("samples mean %.3f std %.3f in %s", m, sd, s.Duration)
	if math.Abs(m[0]-1) > 0.1 || math.Abs(m[1]+0.5) > 0.1 || math.Abs(sd[0]-0.3) > 0.1 || math.Abs(sd[1]-0.6) > 0.1 {
		t.Errorf("samples mean %v std %v, want (1,-0.5) (0.3,0.6)", m, sd)
	}
	if len(s.Frames) != 6 || s.FrameSteps[5] != 500 || len(s.Frames[5]) != 2000 {
		t.Errorf("frames: %d, steps %v", len(s.Frames), s.FrameSteps)
	}
	// DDIM with 50 steps also matches.
	s2, err := d.SampleDDIM(1000, DDIMConfig{Steps: 50, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	m, sd = meanStd(s2.Points)
	t.Logf("DDIM-50 samples mean %.3f std %.3f in %s", m, sd, s2.Duration)
	if math.Abs(m[0]-1) > 0.1 || math.Abs(m[1]+0.5) > 0.1 || math.Abs(sd[0]-0.3) > 0.12 || math.Abs(sd[1]-0.6) > 0.12 {
		t.Errorf("DDIM samples mean %v std %v, want (1,-0.5) (0.3,0.6)", m, sd)
	}
}

func avg(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// nearestLabel returns the label of the nearest data point.
func nearestLabel(x, y float32, pts []float32, labels []int) int {
	best, bl := math.Inf(1), -1
	for i := 0; i < len(pts); i += 2 {
		dx, dy := float64(x-pts[i]), float64(y-pts[i+1])
		if d := dx*dx + dy*dy; d < best {
			best, bl = d, labels[i/2]
		}
	}
	return bl
}

func TestClassifierGuidance(t *testing.T) {
	b := testBackend(t)
	pts, labels := clusterData(900, 3, 5)
	d, err := NewDenoiser(b, tinyNet, schedule.DefaultConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Train(pts, nil, TrainConfig{Steps: 400, BatchSize: 128, LR: 3e-3, LRSchedule: lrschedule.Cosine, FinalLRFraction: 0.1, Seed: 2, ValSize: 100}); err != nil {
		t.Fatal(err)
	}
	c, err := NewClassifier(b, tinyClf, schedule.DefaultConfig(), 3)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := c.Train(pts, labels, nil, nil, TrainConfig{Steps: 300, BatchSize: 128, LR: 3e-3, Seed: 4, ValEvery: 150, ValSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("classifier val acc %v loss %v in %s", hist.ValAcc, hist.ValLoss, hist.Duration)
	accT, err := c.AccuracyByTime(pts, labels, 5, 9)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("accuracy by t: %+v", accT)
	if accT[0].Accuracy < 0.95 || accT[4].Accuracy > accT[0].Accuracy {
		t.Errorf("accuracy by time %+v: want ~1 at small t, decreasing", accT)
	}
	grid, err := c.PredictGrid(-2, 2, -2, 2, 21, 21, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The grid cell at a cluster center predicts its class.
	if k := grid.ArgMax(20-3, 10); k != 0 { // x=1.6,y=0: near center of class 0 at (1.3, 0)
		t.Errorf("grid argmax at (1.6, 0) = %d want 0", k)
	}

	const per = 200
	share := func(s *Samples, want int, from, to int) float64 {
		hits := 0
		for i := from; i < to; i++ {
			if nearestLabel(s.Points[2*i], s.Points[2*i+1], pts, labels) == want {
				hits++
			}
		}
		return float64(hits) / float64(to-from)
	}
	unguided, err := d.SampleDDIM(per, DDIMConfig{Steps: 100, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	guided, err := d.SampleGuided(c, []int{0, 1, 2}, per, 1, DDIMConfig{Steps: 100, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	for k := range 3 {
		u, g := share(unguided, k, 0, per), share(guided, k, k*per, (k+1)*per)
		t.Logf("class %d: share unguided %.2f, guided %.2f", k, u, g)
		if g < 0.9 || g < u+0.4 {
			t.Errorf("class %d: guided share %.2f vs unguided %.2f", k, g, u)
		}
	}
	if guided.Labels[per] != 1 || len(guided.Points) != 2*3*per {
		t.Error("guided labels/points layout")
	}

	// Shards run concurrently give the same deterministic samples, frames included.
	sharded, err := d.SampleGuided(c, []int{0, 1, 2}, per, 1, DDIMConfig{Steps: 100, Seed: 11, RecordEvery: 50, Speed: Speed{Workers: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sharded.Points) != len(guided.Points) || len(sharded.Frames) != 3 || len(sharded.Frames[2]) != len(guided.Points) {
		t.Fatalf("sharded sampler: %d points, %d frames", len(sharded.Points), len(sharded.Frames))
	}
	for i, v := range guided.Points {
		if math.Abs(float64(v-sharded.Points[i])) > 1e-4 || sharded.Frames[2][i] != sharded.Points[i] {
			t.Fatalf("value %d: 1 worker %g, 3 workers %g (last frame %g)", i, v, sharded.Points[i], sharded.Frames[2][i])
		}
	}

	// Starting the ancestral sampler from data at a small t keeps the points near the data;
	// two workers draw different noise streams, deterministically.
	init := pts[:2*per]
	var run [2]*Samples
	for i := range run {
		if run[i], err = d.Sample(per, SampleConfig{Seed: 5, Init: init, InitStep: 10, Speed: Speed{Workers: 2}}); err != nil {
			t.Fatal(err)
		}
	}
	moved := 0.0
	for i, v := range run[0].Points {
		if v != run[1].Points[i] {
			t.Fatalf("ancestral sampling with 2 workers is not deterministic at value %d", i)
		}
		moved += math.Abs(float64(v - init[i]))
	}
	if moved /= float64(len(init)); moved > 0.2 {
		t.Errorf("sampling from the data at t=10 moved the points by %.3f on average", moved)
	}
	if _, err := d.Sample(per, SampleConfig{Init: init[:10], InitStep: 10}); err == nil {
		t.Error("Init of the wrong length: no error")
	}
}

// TestGuidanceGradient checks the autodiff gradient of log softmax_y against central finite
// differences of Probabilities.
func TestGuidanceGradient(t *testing.T) {
	b := testBackend(t)
	c, err := NewClassifier(b, nets.ClassifierConfig{DataDim: 2, Hidden: []int{16, 16}, NumClasses: 3, Activation: nets.GELU},
		schedule.DefaultConfig(), 7)
	if err != nil {
		t.Fatal(err)
	}
	// Train briefly so that the gradients are large (at init they are ~1e-3).
	pts, labels := clusterData(300, 3, 1)
	if _, err := c.Train(pts, labels, nil, nil, TrainConfig{Steps: 100, BatchSize: 128, LR: 1e-2, ValSize: 10}); err != nil {
		t.Fatal(err)
	}
	x := []float32{0.3, -0.7, 1.2, 0.4, -0.5, -1.1}
	y := []int{0, 1, 2}
	const tt = 123
	grad, err := c.GuidanceGradientValues(x, y, tt)
	if err != nil {
		t.Fatal(err)
	}
	logp := func(x []float32) []float64 {
		p, err := c.Probabilities(x, []int{tt, tt, tt})
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, 3)
		for i := range 3 {
			out[i] = math.Log(float64(p[i*3+y[i]]))
		}
		return out
	}
	const h = 1e-2
	maxFD := 0.0
	defer func() {
		if maxFD < 0.5 {
			t.Errorf("largest gradient %.4f: too small for a meaningful check", maxFD)
		}
	}()
	for i := range 3 {
		for j := range 2 {
			xp := append([]float32(nil), x...)
			xm := append([]float32(nil), x...)
			xp[2*i+j] += h
			xm[2*i+j] -= h
			fd := (logp(xp)[i] - logp(xm)[i]) / (2 * h)
			if i == 0 && j == 0 {
				t.Logf("d log p / dx: autodiff %.5f, finite differences %.5f", grad[0], fd)
			}
			maxFD = math.Max(maxFD, math.Abs(fd))
			if math.Abs(fd-float64(grad[2*i+j])) > 1e-3+0.02*math.Abs(fd) {
				t.Errorf("point %d axis %d: autodiff %.5f, finite differences %.5f", i, j, grad[2*i+j], fd)
			}
		}
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	b := testBackend(t)
	dir := filepath.Join(t.TempDir(), "model")
	d, err := NewDenoiser(b, tinyNet, schedule.DefaultConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	pts := gaussianData(500, [2]float64{0, 0}, [2]float64{1, 1}, 3)
	if _, err := d.Train(pts, nil, TrainConfig{Steps: 20, BatchSize: 64, LR: 1e-3, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	ts := []int{0, 100, 499, 7}
	x := pts[:8]
	want, err := d.PredictNoise(x, ts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Save(dir); err != nil {
		t.Fatal(err)
	}
	// Saving again over an existing checkpoint works (atomic replace).
	if err := d.Save(dir); err != nil {
		t.Fatal(err)
	}
	d2, err := LoadDenoiser(b, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d2.Net != d.Net || d2.Schedule.Config != d.Schedule.Config {
		t.Errorf("config not restored: %+v %+v", d2.Net, d2.Schedule.Config)
	}
	got, err := d2.PredictNoise(x, ts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("prediction %d: %g after loading, %g before", i, got[i], want[i])
		}
	}
	// Samples are identical too.
	s1, _ := d.SampleDDIM(10, DDIMConfig{Steps: 20, Seed: 1})
	s2, _ := d2.SampleDDIM(10, DDIMConfig{Steps: 20, Seed: 1})
	for i := range s1.Points {
		if s1.Points[i] != s2.Points[i] {
			t.Fatalf("samples differ at %d", i)
		}
	}

	// Classifier round trip.
	c, err := NewClassifier(b, tinyClf, schedule.DefaultConfig(), 2)
	if err != nil {
		t.Fatal(err)
	}
	cdir := filepath.Join(t.TempDir(), "clf")
	if err := c.Save(cdir); err != nil {
		t.Fatal(err)
	}
	c2, err := LoadClassifier(b, cdir, &tinyClf)
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := c.Probabilities(x, ts)
	p2, _ := c2.Probabilities(x, ts)
	for i := range p1 {
		if p1[i] != p2[i] {
			t.Fatalf("classifier probabilities differ at %d", i)
		}
	}

	// Mismatches are errors, not panics.
	other := tinyNet
	other.HiddenWidth = 32
	if _, err := LoadDenoiser(b, dir, &other); err == nil || !strings.Contains(err.Error(), "hidden_width") {
		t.Errorf("mismatched config: err = %v", err)
	}
	if _, err := LoadClassifier(b, dir, nil); err == nil {
		t.Error("loading a denoiser as a classifier: want error")
	}
	if _, err := LoadDenoiser(b, filepath.Join(t.TempDir(), "missing"), nil); err == nil {
		t.Error("missing dir: want error")
	}
	// A checkpoint whose weights do not match its config (tampered) is an error.
	meta, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(meta), `"hidden_width": 64`, `"hidden_width": 65`, 1)
	if tampered == string(meta) {
		t.Fatalf("meta file format changed: %s", meta)
	}
	if err := os.WriteFile(filepath.Join(dir, MetaFile), []byte(tampered), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDenoiser(b, dir, nil); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("tampered checkpoint: err = %v", err)
	}
}

func TestErrorsNotPanics(t *testing.T) {
	b := testBackend(t)
	d, err := NewDenoiser(b, tinyNet, schedule.DefaultConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.PredictNoise([]float32{1, 2, 3}, []int{0}); err == nil {
		t.Error("odd number of values: want error")
	}
	if _, err := d.PredictNoise([]float32{1, 2}, []int{500}); err == nil {
		t.Error("t out of range: want error")
	}
	if _, err := d.Train([]float32{1, 2}, nil, TrainConfig{Steps: 0, BatchSize: 1, LR: 1}); err == nil {
		t.Error("zero steps: want error")
	}
	for _, skew := range []float64{0.5, -1, math.NaN(), math.Inf(1)} {
		if _, err := d.Train([]float32{1, 2}, nil, TrainConfig{Steps: 1, BatchSize: 1, LR: 1, TimeSkew: skew}); err == nil {
			t.Errorf("TimeSkew %v: want error", skew)
		}
	}
	if _, err := d.SampleDDIM(3, DDIMConfig{Steps: 501}); err == nil {
		t.Error("too many DDIM steps: want error")
	}
	if _, err := NewDenoiser(b, nets.DenoiserConfig{DataDim: 2, HiddenWidth: 8, HiddenLayers: 1, Activation: "tanhh"}, schedule.DefaultConfig(), 1); err == nil {
		t.Error("bad activation: want error")
	}
	c, _ := NewClassifier(b, tinyClf, schedule.DefaultConfig(), 1)
	if _, err := d.SampleGuided(c, []int{7}, 2, 1, DDIMConfig{}); err == nil {
		t.Error("label out of range: want error")
	}
}

// TestTimeSkew checks the distribution of the training time steps: uniform by default,
// P(t < k) = (k/T)^(1/skew) with TimeSkew.
func TestTimeSkew(t *testing.T) {
	const T, draws = 500, 200000
	points := []float32{0, 0}
	for _, skew := range []float64{0, 2, 3} {
		b := newBatcher(points, nil, 2, T, 7)
		b.timeSkew = skew
		counts := make([]int, T)
		for range draws {
			ti := b.drawT()
			if ti < 0 || ti >= T {
				t.Fatalf("skew %v: t = %d out of [0, %d)", skew, ti, T)
			}
			counts[ti]++
		}
		below := 0
		for k := 1; k <= T; k++ {
			below += counts[k-1]
			if k != 5 && k != 20 && k != 125 && k != T {
				continue
			}
			want := float64(k) / T
			if skew > 1 {
				want = math.Pow(want, 1/skew)
			}
			// Binomial standard error is at most 0.0011 at 200000 draws: 5 of them.
			if got := float64(below) / draws; math.Abs(got-want) > 0.0056 {
				t.Errorf("skew %v: P(t < %d) = %.4f, want %.4f", skew, k, got, want)
			}
		}
	}
}

// TestDataParallelTraining checks that splitting each batch over workers gives the same
// updates as one worker (the shards' gradients sum to the batch gradient), also for an
// uneven split.
func TestDataParallelTraining(t *testing.T) {
	b := testBackend(t)
	pts, labels := clusterData(600, 3, 7)
	probe := pts[:40]
	probeT := make([]int, 20)
	for i := range probeT {
		probeT[i] = 25 * i
	}
	var eps [2][]float32
	var closs [2][]float64
	var probs [2][]float32
	for i, workers := range []int{1, 3} {
		d, err := NewDenoiser(b, tinyNet, schedule.DefaultConfig(), 1)
		if err != nil {
			t.Fatal(err)
		}
		cfg := TrainConfig{Steps: 6, BatchSize: 257, LR: 3e-3, Seed: 2, ValSize: 50, Workers: workers}
		if _, err := d.Train(pts, nil, cfg); err != nil {
			t.Fatal(err)
		}
		if eps[i], err = d.PredictNoise(probe, probeT); err != nil {
			t.Fatal(err)
		}
		c, err := NewClassifier(b, tinyClf, schedule.DefaultConfig(), 3)
		if err != nil {
			t.Fatal(err)
		}
		h, err := c.Train(pts, labels, nil, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		closs[i] = h.TrainLoss
		if probs[i], err = c.Probabilities(probe, probeT); err != nil {
			t.Fatal(err)
		}
	}
	for j := range eps[0] {
		if d := math.Abs(float64(eps[0][j] - eps[1][j])); d > 1e-4 {
			t.Fatalf("denoiser output %d: 1 worker %g, 3 workers %g", j, eps[0][j], eps[1][j])
		}
	}
	for j := range probs[0] {
		if d := math.Abs(float64(probs[0][j] - probs[1][j])); d > 1e-4 {
			t.Fatalf("classifier probability %d: 1 worker %g, 3 workers %g", j, probs[0][j], probs[1][j])
		}
	}
	for j := range closs[0] {
		if d := math.Abs(closs[0][j] - closs[1][j]); d > 1e-5 {
			t.Fatalf("classifier loss at step %d: 1 worker %g, 3 workers %g", j+1, closs[0][j], closs[1][j])
		}
	}
}

// trainableValues returns the flat values of a store's trainable variables, in order.
func trainableValues(t *testing.T, d *Denoiser) [][]float32 {
	var out [][]float32
	for v := range d.Store().IterVariables() {
		if !v.Trainable {
			continue
		}
		val, err := v.Value()
		if err != nil {
			t.Fatal(err)
		}
		flat, err := tensors.CopyFlatData[float32](val)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, flat)
	}
	return out
}

// TestEMA checks that with EMADecay the trained weights are the moving average: after one
// step with decay 0.25 they are 0.25 * initial + 0.75 * the plain one-step weights.
func TestEMA(t *testing.T) {
	b := testBackend(t)
	pts := gaussianData(300, [2]float64{0, 0}, [2]float64{1, 1}, 3)
	cfg := TrainConfig{Steps: 1, BatchSize: 64, LR: 1e-2, Seed: 4, ValSize: 10, Workers: 2}
	var w0, w1, avg [][]float32
	for i, decay := range []float64{0, 0.25} {
		d, err := NewDenoiser(b, tinyNet, schedule.DefaultConfig(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			w0 = trainableValues(t, d)
		}
		cfg.EMADecay = decay
		if _, err := d.Train(pts, nil, cfg); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			w1 = trainableValues(t, d)
		} else {
			avg = trainableValues(t, d)
		}
	}
	moved := false
	for k := range w0 {
		for j := range w0[k] {
			want := 0.25*w0[k][j] + 0.75*w1[k][j]
			if math.Abs(float64(avg[k][j]-want)) > 1e-6 {
				t.Fatalf("variable %d value %d: EMA %g, want %g (w0 %g, w1 %g)", k, j, avg[k][j], want, w0[k][j], w1[k][j])
			}
			moved = moved || w0[k][j] != w1[k][j]
		}
	}
	if !moved {
		t.Fatal("one training step did not change the weights")
	}
	cfg.EMADecay = 1
	d, _ := NewDenoiser(b, tinyNet, schedule.DefaultConfig(), 1)
	if _, err := d.Train(pts, nil, cfg); err == nil {
		t.Error("EMADecay 1: no error")
	}
}

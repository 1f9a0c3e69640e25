package vae

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/history"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
)

var (
	beOnce sync.Once
	be     compute.Backend
	beErr  error
)

func testBackend(t *testing.T) compute.Backend {
	t.Helper()
	beOnce.Do(func() { be, beErr = backend.New() })
	if beErr != nil {
		t.Fatal(beErr)
	}
	return be
}

// set assigns a variable of the model by its path under /vae.
func set(t *testing.T, m *Model, path string, values []float32, dims ...int) {
	t.Helper()
	v := m.store.GetVariable("/" + Scope + "/" + path)
	if v == nil {
		var names []string
		for v := range m.store.IterVariables() {
			names = append(names, v.Path())
		}
		t.Fatalf("no variable %s; have %v", path, names)
	}
	if err := v.SetValue(tensors.FromFlatDataAndDimensions(values, dims...)); err != nil {
		t.Fatal(err)
	}
}

func TestKLClosedForm(t *testing.T) {
	for _, c := range []struct {
		mu, logvar []float64
		want       float64
	}{
		{[]float64{0, 0}, []float64{0, 0}, 0},
		{[]float64{1, 0}, []float64{0, 0}, 0.5},
		{[]float64{0}, []float64{math.Log(4)}, 0.5 * (4 - 1 - math.Log(4))},
		{[]float64{2, -1}, []float64{math.Log(0.25), 0}, 0.5*(0.25+4-1-math.Log(0.25)) + 0.5},
	} {
		if got := KL(c.mu, c.logvar); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("KL(%v, %v) = %g, want %g", c.mu, c.logvar, got, c.want)
		}
	}
	// Monte Carlo check of KL(q || p) = E_q[log q(z) - log p(z)] for one case.
	mu, lv := 0.7, math.Log(0.3)
	sd := math.Exp(lv / 2)
	rng := rand.New(rand.NewPCG(1, 2))
	mc, n := 0.0, 400000
	for range n {
		e := rng.NormFloat64()
		z := mu + sd*e
		mc += (-0.5*e*e - math.Log(sd)) - (-0.5 * z * z)
	}
	mc /= float64(n)
	if want := KL([]float64{mu}, []float64{lv}); math.Abs(mc-want) > 0.01 {
		t.Errorf("Monte Carlo KL %g, closed form %g", mc, want)
	}
}

// TestELBOByHand sets the weights of a VAE with d_z = 1 and one hidden unit to known values
// and compares its reconstruction and KL terms with the same computation by hand.
func TestELBOByHand(t *testing.T) {
	m, err := New(testBackend(t), NetConfig{Latent: 1, Hidden: 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Encoder: hidden = relu(0 x + 1) = 1; mu = 0.5 hidden - 0.2 = 0.3; logvar = -1 hidden + 0 = -1.
	set(t, m, "encoder/hidden/weights", make([]float32, Pixels), 1, Pixels)
	set(t, m, "encoder/hidden/biases", []float32{1}, 1)
	set(t, m, "encoder/mu/weights", []float32{0.5}, 1, 1)
	set(t, m, "encoder/mu/biases", []float32{-0.2}, 1)
	set(t, m, "encoder/logvar/weights", []float32{-1}, 1, 1)
	set(t, m, "encoder/logvar/biases", []float32{0}, 1)
	// Decoder: h = relu(2 z + 0.1); logit_p = a_p h + c_p.
	set(t, m, "decoder/hidden/weights", []float32{2}, 1, 1)
	set(t, m, "decoder/hidden/biases", []float32{0.1}, 1)
	a, c := make([]float32, Pixels), make([]float32, Pixels)
	rng := rand.New(rand.NewPCG(3, 4))
	for p := range Pixels {
		a[p], c[p] = float32(rng.Float64()*4-2), float32(rng.Float64()*6-3)
	}
	set(t, m, "decoder/output/weights", a, Pixels, 1)
	set(t, m, "decoder/output/biases", c, Pixels)
	x := make([]float32, 2*Pixels)
	for i := range x {
		x[i] = rng.Float32()
	}
	eps := []float32{0.8, -1.5}
	recon, kl, err := m.Losses(x, eps)
	if err != nil {
		t.Fatal(err)
	}
	mu, lv := 0.3, -1.0
	for i, e := range eps {
		z := mu + math.Exp(lv/2)*float64(e)
		h := math.Max(0, 2*z+0.1)
		bce := 0.0
		for p := range Pixels {
			l := float64(a[p])*h + float64(c[p])
			q := 1 / (1 + math.Exp(-l))
			xp := float64(x[i*Pixels+p])
			bce -= xp*math.Log(q) + (1-xp)*math.Log(1-q)
		}
		if math.Abs(recon[i]-bce) > 1e-3*bce {
			t.Errorf("image %d: reconstruction %g, by hand %g", i, recon[i], bce)
		}
		if want := KL([]float64{mu}, []float64{lv}); math.Abs(kl[i]-want) > 1e-5 {
			t.Errorf("image %d: KL %g, closed form %g", i, kl[i], want)
		}
	}
	// Encode returns the means, Decode the sigmoid of the logits.
	z, err := m.Encode(x)
	if err != nil || len(z) != 2 || math.Abs(float64(z[0])-mu) > 1e-6 {
		t.Fatalf("Encode = %v, %v; want [0.3 0.3]", z, err)
	}
	img, err := m.Decode([]float32{1})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{0, 400, 783} {
		want := 1 / (1 + math.Exp(-(float64(a[p])*2.1 + float64(c[p]))))
		if math.Abs(float64(img[p])-want) > 1e-5 {
			t.Errorf("Decode pixel %d = %g, want %g", p, img[p], want)
		}
	}
	// Extreme logits stay finite (the stable BCE).
	set(t, m, "decoder/output/biases", fill(Pixels, 200), Pixels)
	recon, _, err = m.Losses(make([]float32, Pixels), []float32{0})
	if err != nil || math.IsInf(recon[0], 0) || math.IsNaN(recon[0]) || math.Abs(recon[0]/Pixels-200) > 1 {
		t.Errorf("BCE with logits 200 on black pixels: %v, %v (want about 200 per pixel)", recon, err)
	}
}

func fill(n int, v float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func TestBadShapes(t *testing.T) {
	m, err := New(testBackend(t), NetConfig{Latent: 2, Hidden: 8}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Decode(make([]float32, 3)); err == nil || !strings.Contains(err.Error(), "d_z = 2") {
		t.Errorf("Decode of 3 values with d_z = 2: %v", err)
	}
	if _, err := m.Encode(make([]float32, 100)); err == nil {
		t.Error("Encode of 100 values accepted")
	}
	if _, _, err := m.Losses(make([]float32, 2*Pixels), make([]float32, 2)); err == nil {
		t.Error("noise for 1 of 2 images accepted")
	}
	// More images than one chunk: the same latents as one by one.
	n := chunk + 3
	x := make([]float32, n*Pixels)
	for i := range x {
		x[i] = float32(i%97) / 97
	}
	z, err := m.Encode(x)
	if err != nil || len(z) != 2*n {
		t.Fatalf("Encode of %d images: %d values, %v", n, len(z), err)
	}
	last, _ := m.Encode(x[(n-1)*Pixels:])
	if math.Abs(float64(last[0]-z[2*n-2])) > 1e-5 || math.Abs(float64(last[1]-z[2*n-1])) > 1e-5 {
		t.Errorf("last latent %v in a batch of %d, %v alone", z[2*n-2:], n, last)
	}
	img, err := m.Decode(z)
	if err != nil || len(img) != n*Pixels {
		t.Errorf("Decode of %d latents: %d values, %v", n, len(img), err)
	}
	for _, cfg := range []NetConfig{{Latent: 0, Hidden: 4}, {Latent: 2, Hidden: 0}} {
		if _, err := New(testBackend(t), cfg, 1); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	for _, o := range []Overrides{{Preset: "gpu"}, {LR: -1}, {Latent: -2}, {Epochs: -1}, {LRSchedule: "cubic"}} {
		if _, err := o.Config(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestSaveLoad(t *testing.T) {
	b := testBackend(t)
	cfg := NetConfig{Latent: 2, Hidden: 16}
	m, err := New(b, cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "vae")
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	z := []float32{0.5, -1, 2, 0.25}
	want, err := m.Decode(z)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Load(b, dir, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := got.Decode(z)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if out[i] != want[i] {
			t.Fatalf("pixel %d: %g after loading, %g before", i, out[i], want[i])
		}
	}
	x := make([]float32, Pixels)
	x[300] = 1
	e1, _ := m.Encode(x)
	e2, _ := got.Encode(x)
	if e1[0] != e2[0] || e1[1] != e2[1] {
		t.Errorf("encoder means %v after loading, %v before", e2, e1)
	}
	// Wrong latent dimension.
	_, err = Load(b, dir, &NetConfig{Latent: 8, Hidden: 16})
	if err == nil || !strings.Contains(err.Error(), "latent dimension 2, expected 8") {
		t.Errorf("loading d_z = 2 as 8: %v", err)
	}
	// Another model's checkpoint.
	other := filepath.Join(t.TempDir(), "other")
	st := model.NewStore()
	if err := savedmodel.Save(other, st, "/x", map[string]any{"kind": "spiral-score", "format": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(b, other, nil); err == nil || !strings.Contains(err.Error(), `"spiral-score"`) {
		t.Errorf("loading a spiral checkpoint: %v", err)
	}
	s := &Study{Config: Config{Net: NetConfig{Latent: 2, Hidden: 16}, Train: ExamTrain()}, Backend: b}
	if _, _, _, err := s.TrainOrLoad(other, nil); err == nil || !strings.Contains(err.Error(), "spiral-score") {
		t.Errorf("TrainOrLoad on a spiral checkpoint: %v", err)
	}
	s.Config.Net.Latent = 3
	if _, _, _, err := s.TrainOrLoad(dir, nil); err == nil || !strings.Contains(err.Error(), "latent dimension 2") {
		t.Errorf("TrainOrLoad of d_z = 3 on a d_z = 2 checkpoint: %v", err)
	}
}

func smallSets(t *testing.T, nTrain, nTest int) (*mnist.Set, *mnist.Set) {
	t.Helper()
	tr, err := mnist.Load(mnist.Train)
	if err != nil {
		t.Fatal(err)
	}
	te, err := mnist.Load(mnist.Test)
	if err != nil {
		t.Fatal(err)
	}
	if tr, err = tr.Head(nTrain); err != nil {
		t.Fatal(err)
	}
	if te, err = te.Head(nTest); err != nil {
		t.Fatal(err)
	}
	return tr, te
}

func TestNaNLoss(t *testing.T) {
	m, err := New(testBackend(t), NetConfig{Latent: 2, Hidden: 8}, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr, te := smallSets(t, 300, 100)
	set(t, m, "encoder/mu/biases", []float32{float32(math.NaN()), 0}, 2)
	cfg := ExamTrain()
	cfg.Epochs = 1
	_, err = m.Train(tr, te, cfg)
	if err == nil || !strings.Contains(err.Error(), "step 1") || !strings.Contains(err.Error(), "learning rate 0.001") {
		t.Errorf("training with NaN weights: %v", err)
	}
	if err := m.Save(filepath.Join(t.TempDir(), "nan")); err == nil {
		t.Error("saved NaN weights")
	}
}

func TestTrainOrLoad(t *testing.T) {
	tr, te := smallSets(t, 1500, 500)
	cfg, err := Overrides{Preset: "smoke", Hidden: 64, Epochs: 3}.Config()
	if err != nil {
		t.Fatal(err)
	}
	s := &Study{Config: cfg, Train: tr, Test: te, Backend: testBackend(t)}
	m0, err := New(s.Backend, cfg.Net, cfg.Seed)
	if err != nil {
		t.Fatal(err)
	}
	before, err := m0.Evaluate(te.Images, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), CheckpointName(2))
	steps := 0
	m, h, loaded, err := s.TrainOrLoad(dir, func(epoch, step int, loss float64) { steps = step })
	if err != nil || loaded {
		t.Fatalf("TrainOrLoad: loaded %v, %v", loaded, err)
	}
	if want := 3 * 12; steps != want || len(h.StepLoss) != want || len(h.Train) != 3 || len(h.Test) != 3 {
		t.Errorf("%d steps (%d recorded), %d/%d epochs; want %d steps, 3 epochs", steps, len(h.StepLoss), len(h.Train), len(h.Test), want)
	}
	after := h.Final()
	if !(after.ELBO < before.ELBO-100) || !(h.Test[2].ELBO < h.Test[0].ELBO) {
		t.Errorf("test -ELBO %g before training, %v per epoch", before.ELBO, h.Test)
	}
	if math.Abs(after.ELBO-(after.Recon+after.KL)) > 1e-9 || !(after.KL > 0) {
		t.Errorf("final losses %+v", after)
	}
	// Evaluate is the mean of Losses over the set.
	ev, err := m.Evaluate(te.Images, 5)
	if err != nil || math.Abs(ev.ELBO-after.ELBO) > 5 {
		t.Errorf("Evaluate %+v (%v), history %+v", ev, err, after)
	}
	m2, h2, loaded, err := s.TrainOrLoad(dir, nil)
	if err != nil || !loaded || h2.Final() != after {
		t.Fatalf("second TrainOrLoad: loaded %v, %v", loaded, err)
	}
	z, _ := m.Encode(te.Images[:10*Pixels])
	z2, _ := m2.Encode(te.Images[:10*Pixels])
	for i := range z {
		if z[i] != z2[i] {
			t.Fatalf("latent %d: %g loaded, %g trained", i, z2[i], z[i])
		}
	}
	var rec record
	if found, err := history.Load(dir, &rec); !found || err != nil || rec.Trained.Net != cfg.Net {
		t.Errorf("history: %v %v %+v", found, err, rec.Trained)
	}
	// Another configuration retrains into the same directory.
	s.Config.Train.Epochs = 1
	if _, _, loaded, err := s.TrainOrLoad(dir, nil); err != nil || loaded {
		t.Errorf("changed epochs: loaded %v, %v", loaded, err)
	}
	// Figures render.
	for name, f := range map[string]func() ([]byte, error){
		"prior":   func() ([]byte, error) { return m.PriorFigure(4, 4, 1) },
		"scatter": func() ([]byte, error) { return m.LatentScatterFigure(te) },
		"grid":    func() ([]byte, error) { return m.LatentGridFigure(8) },
		"recon":   func() ([]byte, error) { return m.ReconstructionFigure(te, 8, 4) },
		"curve":   func() ([]byte, error) { return CurveFigure(h, KLTerm) },
	} {
		png, err := f()
		if err != nil || len(png) < 100 || string(png[1:4]) != "PNG" {
			t.Errorf("%s figure: %d bytes, %v", name, len(png), err)
		}
	}
}

func TestLatentGrid(t *testing.T) {
	z, err := LatentGrid(4, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(z) != 4*4*3 {
		t.Fatalf("%d values", len(z))
	}
	// Top-left is (smallest z1, largest z2), bottom-right the opposite; the third coordinate is 0.
	if !(z[0] < 0 && z[1] > 0 && z[0] == -z[1]) || z[2] != 0 {
		t.Errorf("top-left latent %v", z[:3])
	}
	last := z[len(z)-3:]
	if last[0] != -z[0] || last[1] != -z[1] {
		t.Errorf("bottom-right latent %v, top-left %v", last, z[:3])
	}
	if _, err := LatentGrid(1, 2); err == nil {
		t.Error("a 1 x 1 grid accepted")
	}
	if _, err := LatentGrid(4, 1); err == nil {
		t.Error("d_z = 1 accepted")
	}
}

func TestPriorSamplesSeeded(t *testing.T) {
	m, err := New(testBackend(t), NetConfig{Latent: 2, Hidden: 8}, 1)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.PriorSamples(3, 1)
	b, _ := m.PriorSamples(3, 1)
	c, _ := m.PriorSamples(3, 2)
	if len(a) != 3*Pixels || a[5] != b[5] || a[5] == c[5] {
		t.Errorf("prior samples not seeded: %g %g %g", a[5], b[5], c[5])
	}
}

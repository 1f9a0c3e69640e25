package latent

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/metrics"
	"github.com/godiffusion/notebooks/diffusion/mnisteval"
	"github.com/godiffusion/notebooks/diffusion/spiral"
	"github.com/godiffusion/notebooks/diffusion/vae"
)

func testBackend(t testing.TB) compute.Backend {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testStudy returns a latent study on an untrained small VAE of latent dimension dz (its
// encoder means are random but spread) and 400 training, 100 test digits, with a tiny score
// network and training.
func testStudy(t testing.TB, dz int) *Study {
	t.Helper()
	tr, err := mnist.Load(mnist.Train)
	if err != nil {
		t.Fatal(err)
	}
	te, err := mnist.Load(mnist.Test)
	if err != nil {
		t.Fatal(err)
	}
	if tr, err = tr.Head(400); err != nil {
		t.Fatal(err)
	}
	if te, err = te.Head(100); err != nil {
		t.Fatal(err)
	}
	vcfg, err := vae.Overrides{Preset: "smoke", Latent: dz, Hidden: 16}.Config()
	if err != nil {
		t.Fatal(err)
	}
	b := testBackend(t)
	m, err := vae.New(b, vcfg.Net, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Overrides{Preset: "smoke", Steps: 30, Width: 16, Layers: 2, ClassEmbed: 8, Samples: 20, K: 20}.Config()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStudy(cfg, &vae.Study{Config: vcfg, Train: tr, Test: te, Backend: b}, m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNormalization(t *testing.T) {
	z := []float32{1, 10, 3, 20, 5, 30}
	nz, err := FitNormalization(z, 2)
	if err != nil {
		t.Fatal(err)
	}
	if nz.Mean[0] != 3 || nz.Mean[1] != 20 || math.Abs(nz.Std[0]-2) > 1e-12 || math.Abs(nz.Std[1]-10) > 1e-12 {
		t.Errorf("normalization %+v, want mean (3, 20), std (2, 10)", nz)
	}
	n, _ := nz.Normalize(z)
	if n[0] != -1 || n[5] != 1 {
		t.Errorf("normalized %v", n)
	}
	back, _ := nz.Denormalize(n)
	for i := range z {
		if math.Abs(float64(back[i]-z[i])) > 1e-5 {
			t.Fatalf("round trip %v -> %v", z, back)
		}
	}
	if _, err := FitNormalization([]float32{1, 2, 1, 3}, 2); err == nil || !strings.Contains(err.Error(), "coordinate 0") {
		t.Errorf("a constant coordinate: %v", err)
	}
	if _, err := nz.Normalize([]float32{1, 2, 3}); err == nil {
		t.Error("3 values normalized as 2-D latents")
	}
}

func TestMeanMaxConfidenceAndScore(t *testing.T) {
	probs := []float32{0.9, 0.1, 0.3, 0.7}
	if c, err := MeanMaxConfidence(probs, 2); err != nil || math.Abs(c-0.8) > 1e-6 {
		t.Errorf("mean max-confidence %v (%v), want 0.8", c, err)
	}
	if _, err := MeanMaxConfidence(probs, 3); err == nil {
		t.Error("4 probabilities accepted as rows of 3")
	}
	// Features of a set scored against their own Gaussian: FID 0; against a shifted one: the
	// squared shift.
	rng := rand.New(rand.NewPCG(1, 2))
	n, dim := 500, 3
	f := make([]float32, n*dim)
	for i := range f {
		f[i] = float32(rng.NormFloat64())
	}
	ref, _ := metrics.FitGaussianFlat(f, dim)
	p := make([]float32, n*mnist.NumClasses)
	labels := make([]int, n)
	for i := range n {
		labels[i] = i % 10
		p[i*10+(i%5)] = 1 // right for digits 0..4, wrong for 5..9
	}
	r, err := scoreOutputs("x", p, f, dim, ref, &Samples{N: n, Labels: labels})
	if err != nil || math.Abs(r.FID) > 1e-6 || r.MaxConfidence != 1 || math.Abs(r.Accuracy()-0.5) > 1e-12 {
		t.Errorf("row %+v (%v): want FID 0, confidence 1, accuracy 0.5", r, err)
	}
	for i := range f {
		if i%dim == 0 {
			f[i] += 2
		}
	}
	r, _ = scoreOutputs("x", p, f, dim, ref, &Samples{N: n})
	if math.Abs(r.FID-4) > 1e-3 || !math.IsNaN(r.Accuracy()) {
		t.Errorf("shifted by 2: FID %v (want 4), accuracy %v (want NaN: no labels)", r.FID, r.Accuracy())
	}
}

func TestEncodedDraw(t *testing.T) {
	e := &Encoded{Latents: []float32{0, 0, 1, 1, 2, 2}, Dim: 2, Labels: []int{0, 1, 2}}
	x, y, err := e.Draw(50, rand.New(rand.NewPCG(1, 1)))
	if err != nil || len(x) != 100 || len(y) != 50 {
		t.Fatalf("%d values, %d labels, %v", len(x), len(y), err)
	}
	for i, l := range y {
		if x[2*i] != float32(l) || x[2*i+1] != float32(l) {
			t.Fatalf("row %d = %v has label %d", i, x[2*i:2*i+2], l)
		}
	}
	if _, _, err := (&Encoded{Latents: []float32{1, 2, 3}, Dim: 2}).Draw(1, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("3 values drawn as 2-D latents")
	}
}

// TrainOrLoad trains, saves and reuses a matching checkpoint, retrains a changed
// configuration, and refuses another model's checkpoint or another latent dimension; the
// networks sample and decode digits, guided or not.
func TestTrainOrLoadAndSample(t *testing.T) {
	s := testStudy(t, 2)
	root := t.TempDir()
	dir := filepath.Join(root, CheckpointName(2, true))
	steps := 0
	n, h, loaded, err := s.TrainOrLoad(true, dir, func(step int, _ float64) { steps = step })
	if err != nil || loaded || steps != 30 || len(h.TrainLoss) != 30 {
		t.Fatalf("first TrainOrLoad: loaded %v, %d steps, %v", loaded, steps, err)
	}
	if !n.Conditional() || n.Dimension() != 2 || h.Config.PUncond != 0.2 {
		t.Errorf("network conditional %v, dimension %d, p_uncond %g", n.Conditional(), n.Dimension(), h.Config.PUncond)
	}
	n2, _, loaded, err := s.TrainOrLoad(true, dir, nil)
	if err != nil || !loaded {
		t.Fatalf("second TrainOrLoad: loaded %v, %v", loaded, err)
	}
	labels := BalancedLabels(20)
	a, err := s.Sample(n, 20, labels, 7.5, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Sample(n2, 20, labels, 7.5, 3)
	if err != nil {
		t.Fatal(err)
	}
	if a.N != 20 || len(a.Images) != 20*vae.Pixels || len(a.Latents) != 40 {
		t.Fatalf("%d samples, %d pixels, %d latent values", a.N, len(a.Images), len(a.Latents))
	}
	for i := range a.Latents {
		if a.Latents[i] != b.Latents[i] {
			t.Fatalf("the reloaded network samples %v, the trained one %v", b.Latents[:4], a.Latents[:4])
		}
	}
	for _, v := range a.Images {
		if !(v >= 0 && v <= 1) {
			t.Fatalf("pixel %v outside [0, 1]", v)
		}
	}
	w0, _ := s.Sample(n, 20, labels, 0, 3)
	if w0.Latents[0] == a.Latents[0] && w0.Latents[1] == a.Latents[1] {
		t.Error("guidance 0 and 7.5 sample the same latents")
	}
	if _, err := s.Sample(n, 20, labels[:3], 1, 3); err == nil {
		t.Error("3 labels for 20 samples accepted")
	}
	// A changed configuration retrains.
	s.Config.Train.Steps = 31
	if _, _, loaded, err := s.TrainOrLoad(true, dir, nil); err != nil || loaded {
		t.Errorf("changed steps: loaded %v, %v", loaded, err)
	}
	// The unconditional network: no labels.
	u, _, _, err := s.TrainOrLoad(false, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sample(u, 10, BalancedLabels(10), 3, 1); err == nil || !strings.Contains(err.Error(), "class-conditional") {
		t.Errorf("labels for the unconditional network: %v", err)
	}
	if smp, err := s.Sample(u, 10, nil, 0, 1); err != nil || smp.N != 10 {
		t.Errorf("unconditional samples: %v", err)
	}
	// A VAE checkpoint is not a latent score network.
	vdir := filepath.Join(root, "vae")
	if err := s.VAE.Save(vdir); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.TrainOrLoad(false, vdir, nil); err == nil || !strings.Contains(err.Error(), `"vae-mnist"`) {
		t.Errorf("a VAE checkpoint as the latent model: %v", err)
	}
	// A latent checkpoint of d_z = 2 with a VAE of d_z = 3.
	s3 := testStudy(t, 3)
	if _, _, _, err := s3.TrainOrLoad(true, dir, nil); err == nil || !strings.Contains(err.Error(), "dimension 2") || !strings.Contains(err.Error(), "d_z = 3") {
		t.Errorf("a d_z = 2 checkpoint with a d_z = 3 VAE: %v", err)
	}
	if _, err := s3.Sample(n, 10, nil, 0, 1); err == nil {
		t.Error("a 2-D network sampled for a 3-D VAE")
	}
	// Figures render.
	pr, _ := s.PriorSamples(100, 1)
	for name, f := range map[string]func() ([]byte, error){
		"latents": func() ([]byte, error) {
			return s.LatentsFigure(LatentPanel{Title: "prior", Samples: pr}, LatentPanel{Title: "cfg", Samples: a, ByDigit: true})
		},
		"grid":   func() ([]byte, error) { return DigitGridFigure(a, 2, "grid") },
		"images": func() ([]byte, error) { return ImagesFigure(pr, 2, 5, "prior") },
		"loss":   func() ([]byte, error) { return LossFigure([]string{"cfg"}, []*spiral.History{h}) },
		"sweep": func() ([]byte, error) {
			r := Row{Guidance: 1, FID: 3, Classes: &metrics.ClassReport{Accuracy: 0.5}}
			r2 := r
			r2.Guidance = 3
			return SweepFigure([]string{"a"}, [][]Row{{r, r2}})
		},
	} {
		png, err := f()
		if err != nil || len(png) < 100 || string(png[1:4]) != "PNG" {
			t.Errorf("%s figure: %d bytes, %v", name, len(png), err)
		}
	}
}

func TestConfig(t *testing.T) {
	c, err := Overrides{Preset: "cpu"}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if c.PUncond != 0.2 || c.ClassEmbed != 256 || c.Guidance != 7.5 || len(c.Sweep) != 5 || c.Train.TMin != 1.0/float64(c.K) || c.PlaneGrid != 120 {
		t.Errorf("cpu config %+v", c)
	}
	c.PlaneGrid = 1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "plane reading's grid") {
		t.Errorf("a plane grid of 1 point: %v", err)
	}
	if c, _ := (Overrides{Preset: "smoke", Guidance: 5}).Config(); len(c.Sweep) != 6 {
		t.Errorf("guidance 5 is not added to the sweep: %v", c.Sweep)
	}
	if c, _ := (Overrides{Preset: "smoke", PUncond: -1}).Config(); c.PUncond != 0 {
		t.Errorf("p_uncond -1 gives %g, want 0", c.PUncond)
	}
	for _, o := range []Overrides{{Preset: "gpu"}, {Guidance: -1}, {PUncond: 2}, {Samples: 5}, {LR: -1}, {BetaMax: -3}} {
		if o.Preset == "" {
			o.Preset = "smoke"
		}
		if _, err := o.Config(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestPlaneReading(t *testing.T) {
	// 2 x 2 cells: digits 1, 1, 7, 4 win; digit 3 reaches 0.4 somewhere but never wins.
	probs := make([]float32, 4*mnist.NumClasses)
	for i, d := range []int{1, 1, 7, 4} {
		probs[i*10+d] = 0.6
		probs[i*10+3] = 0.1 * float32(i+1)
	}
	r := newPlaneReading(probs, 2, 3)
	if !slices.Equal(r.Class, []int{1, 1, 7, 4}) || r.Share[1] != 0.5 || r.Share[7] != 0.25 || math.Abs(r.Best[3]-0.4) > 1e-6 {
		t.Errorf("reading %+v", r)
	}
	if m := r.Missing(); len(m) != 7 || slices.Contains(m, 1) || !slices.Contains(m, 3) {
		t.Errorf("missing digits %v, want all but 1, 4, 7", m)
	}
	if b := r.AccuracyBound(); math.Abs(b-0.3) > 1e-12 {
		t.Errorf("accuracy bound %v, want 0.3", b)
	}
	if !strings.Contains(r.Summary(), "mean accuracy <= 0.30") {
		t.Errorf("summary %q does not state the bound", r.Summary())
	}
	if c := cellCentre(0, 2, 3); c != -1.5 {
		t.Errorf("centre of the first of 2 cells over [-3, 3]: %v, want -1.5", c)
	}

	// On a real (untrained) VAE and evaluator: every cell classified, the shares sum to 1,
	// and the figure renders; d_z = 8 has no latent plane.
	s := testStudy(t, 2)
	ev, err := mnisteval.New(testBackend(t), mnisteval.DefaultConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err = s.ReadPlane(ev, 8, 3)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, v := range r.Share {
		sum += v
	}
	if len(r.Class) != 64 || math.Abs(sum-1) > 1e-9 {
		t.Errorf("%d cells, shares summing to %v", len(r.Class), sum)
	}
	if png, err := s.PlaneFigure(r, 50); err != nil || len(png) == 0 {
		t.Errorf("figure: %v", err)
	}
	if _, err := testStudy(t, 8).ReadPlane(ev, 8, 3); err == nil || !strings.Contains(err.Error(), "d_z = 2") {
		t.Errorf("d_z = 8 accepted (%v)", err)
	}
	if r, err := s.ReadPlane(ev, 4, 0); err != nil || r.Extent <= 0 || math.Mod(r.Extent, 0.5) != 0 {
		t.Errorf("extent from the data: %v (%v), want a positive multiple of 0.5", r.Extent, err)
	}
	if _, err := s.ReadPlane(ev, 1, 3); err == nil {
		t.Error("a 1 x 1 grid accepted")
	}
}

func TestTargetLine(t *testing.T) {
	rows := func(acc, mode float64) []Row {
		r := Row{Guidance: 7.5, FID: 10, Classes: &metrics.ClassReport{Accuracy: acc}}
		if mode >= 0 {
			r.Mode = &Row{Guidance: 7.5, FID: 5, Classes: &metrics.ClassReport{Accuracy: mode}}
		}
		return []Row{r}
	}
	s2, s8 := testStudy(t, 2), testStudy(t, 8)
	s2.Config.Guidance, s8.Config.Guidance = 7.5, 7.5
	for _, c := range []struct {
		s         *Study
		acc, mode float64
		want      string
	}{{s2, 0.9, -1, "d_z = 2: met."}, {s2, 0.5, -1, "**not met**."}, {s2, 0.5, 0.97, "**not met** on the mean images, met on the mode images"},
		{s8, 0.9, 0.95, "comparison, not the target's): above it on the mean images, above it on the mode images"}, {s8, 0.5, -1, "below it."}} {
		if got := c.s.TargetLine(rows(c.acc, c.mode)); !strings.Contains(got, c.want) {
			t.Errorf("d_z %d, accuracy %v/%v: %q, want %q in it", c.s.Latent(), c.acc, c.mode, got, c.want)
		}
	}
}

func TestModeImagesAndScore(t *testing.T) {
	if got := ModeImages([]float32{0, 0.49, 0.5, 0.9}); !slices.Equal(got, []float32{0, 0, 1, 1}) {
		t.Errorf("mode images %v", got)
	}
	// A decoded set is scored twice, the test digits once.
	s := testStudy(t, 2)
	ev, err := mnisteval.New(testBackend(t), mnisteval.DefaultConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := s.DecodedTest(20)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Score(ev, "decoded", dec)
	if err != nil || r.Mode == nil || r.Mode.Classes == nil || r.Mode.FID == r.FID {
		t.Fatalf("decoded set: %+v (%v): want a mode-image score of its own", r, err)
	}
	real := &Samples{Images: s.Test.Images[:20*784], Labels: s.Test.Labels[:20], N: 20}
	if r, err := Score(ev, "test", real); err != nil || r.Mode != nil {
		t.Errorf("test digits: mode %+v (%v), want none", r.Mode, err)
	}
	if tab := Table([]Row{r}); !strings.Contains(tab, "accuracy, mode images") {
		t.Errorf("table without the mode columns:\n%s", tab)
	}
}

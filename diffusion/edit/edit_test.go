package edit

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/imageops"
	"github.com/godiffusion/notebooks/diffusion/sampling"
	"github.com/godiffusion/notebooks/diffusion/schedule"
)

// gauss is the exact noise estimate of Gaussian images N(mu_c, s^2 I) of class c under a
// process: E[eps | x_t] = sigma (x - alpha mu) / (alpha^2 s^2 + sigma^2). means[c] is the mean of
// class c; unconditional calls use uncond.
type gauss struct {
	p      sampling.Process
	means  [][]float32
	uncond []float32
	s      float64
}

func (g gauss) Predicts() sampling.Prediction { return sampling.Noise }

func (g gauss) Predict(x []float32, t []float64, cond []int) ([]float32, error) {
	d := len(x) / len(t)
	out := make([]float32, len(x))
	for i := range t {
		sc, err := g.p.Scales(t[i])
		if err != nil {
			return nil, err
		}
		mu := g.uncond
		if cond != nil && cond[i] >= 0 {
			mu = g.means[cond[i]]
		}
		v := sc.Alpha*sc.Alpha*g.s*g.s + sc.Sigma*sc.Sigma
		for j := range d {
			out[i*d+j] = float32(sc.Sigma * (float64(x[i*d+j]) - sc.Alpha*float64(mu[j])) / v)
		}
	}
	return out, nil
}

var shape = imageops.Square(6, 1)

func testSetup(t *testing.T, m sampling.Model) Setup {
	t.Helper()
	sch, err := schedule.New(schedule.Config{Kind: schedule.Linear, T: 200, BetaStart: 1e-4, BetaEnd: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	grid, err := sampling.StridedGrid(200, 10)
	if err != nil {
		t.Fatal(err)
	}
	p := sampling.Discrete{Schedule: sch}
	if g, ok := m.(gauss); ok {
		g.p = p
		m = g
	}
	return Setup{Model: m, Process: p, Grid: grid, Shape: shape, Seed: 3}
}

func randomImage(seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]float32, shape.Size())
	for j := range out {
		out[j] = float32(2*r.Float64() - 1)
	}
	return out
}

func maxDiff(a, b []float32) float64 {
	var d float64
	for j := range a {
		d = math.Max(d, math.Abs(float64(a[j]-b[j])))
	}
	return d
}

func TestInpaintKeepsTheKnownPixelsExactly(t *testing.T) {
	mu := randomImage(1)
	s := testSetup(t, gauss{means: [][]float32{mu}, uncond: mu, s: 0.3})
	images := append(randomImage(2), randomImage(3)...)
	mask, err := imageops.MaskByName("center", shape)
	if err != nil {
		t.Fatal(err)
	}
	for _, start := range []int{0, 5} {
		res, err := s.Inpaint(images, mask, nil, start)
		if err != nil {
			t.Fatal(err)
		}
		changed := 0
		for j, v := range res.Images {
			if mask[j%shape.Size()] == 0 && v != images[j] {
				t.Fatalf("start %d: kept pixel %d is %g, the original %g", start, j, v, images[j])
			}
			if mask[j%shape.Size()] == 1 && v != images[j] {
				changed++
			}
		}
		if changed == 0 {
			t.Errorf("start %d: nothing was inpainted", start)
		}
	}
	if _, err := s.Inpaint(images, mask[:5], nil, 0); err == nil || !strings.Contains(err.Error(), "mask") {
		t.Errorf("short mask: %v", err)
	}
}

func TestAnagramIsTheGaussianOfTheMeanOfItsViews(t *testing.T) {
	a, b := randomImage(4), randomImage(5)
	g := gauss{means: [][]float32{a, b}, uncond: a, s: 0.2}
	flip, err := imageops.FlipVertical(shape)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := imageops.Identity(shape)
	base := testSetup(t, g)
	ana, err := Anagram(base.Model, View{id, 0}, View{flip, 1})
	if err != nil {
		t.Fatal(err)
	}
	// The noise estimate is linear in the mean: the anagram of (a, b flipped) is the exact model
	// of the Gaussian with mean (a + flip(b)) / 2.
	fb, _ := flip.Apply(b)
	mean := make([]float32, len(a))
	for j := range a {
		mean[j] = (a[j] + fb[j]) / 2
	}
	want := base
	want.Model = gauss{p: base.Process, means: [][]float32{mean}, uncond: mean, s: 0.2}
	got := base
	got.Model = ana
	r1, err := got.Sample(4, nil)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := want.Sample(4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(r1.Images, r2.Images); d > 1e-4 {
		t.Errorf("anagram samples differ from the mean Gaussian's by %g", d)
	}
	// A flip-symmetric model: the anagram of one class under both views is plain sampling.
	sym := make([]float32, len(a))
	fa, _ := flip.Apply(a)
	for j := range a {
		sym[j] = (a[j] + fa[j]) / 2
	}
	symModel := gauss{p: base.Process, means: [][]float32{sym}, uncond: sym, s: 0.2}
	same, _ := Anagram(symModel, View{id, 0}, View{flip, 0})
	got.Model, want.Model = same, symModel
	r1, _ = got.Sample(3, nil)
	r2, _ = want.Sample(3, nil)
	if d := maxDiff(r1.Images, r2.Images); d > 1e-5 {
		t.Errorf("anagram of a flip-symmetric model differs from plain sampling by %g", d)
	}
	if _, err := got.Sample(2, []int{0, 1}); err == nil {
		t.Error("an anagram sampled with conditions: no error")
	}
	if _, err := Anagram(symModel, View{id, -1}); err == nil {
		t.Error("a view without a class accepted")
	}
}

func TestHybridIsLowPassOfOnePlusHighPassOfTheOther(t *testing.T) {
	a, b := randomImage(6), randomImage(7)
	base := testSetup(t, gauss{means: [][]float32{a, b}, uncond: a, s: 0.25})
	blur := imageops.Blur{Kernel: 5, Sigma: 1}
	hyb, err := Hybrid(base.Model, shape, blur, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	la, _ := blur.Apply(a, shape)
	hb, _ := blur.HighPass(b, shape)
	mean := make([]float32, len(a))
	for j := range a {
		mean[j] = la[j] + hb[j]
	}
	got, want := base, base
	got.Model = hyb
	want.Model = gauss{p: base.Process, means: [][]float32{mean}, uncond: mean, s: 0.25}
	r1, err := got.Sample(4, nil)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := want.Sample(4, nil)
	if d := maxDiff(r1.Images, r2.Images); d > 1e-4 {
		t.Errorf("hybrid samples differ from the Gaussian of low(a) + high(b) by %g", d)
	}
	if _, err := Hybrid(base.Model, shape, imageops.Blur{Kernel: 4, Sigma: 1}, 0, 1); err == nil {
		t.Error("an even blur kernel accepted")
	}
}

func TestSDEditStaysCloserWithLessNoise(t *testing.T) {
	mu := make([]float32, shape.Size()) // the data is centred: the input pulls the result away
	s := testSetup(t, gauss{means: [][]float32{mu}, uncond: mu, s: 0.5})
	var images []float32
	for i := range 16 {
		images = append(images, randomImage(uint64(10+i))...)
	}
	prev := math.Inf(1)
	for _, start := range []int{0, 5, 10, 15, 19} {
		res, err := s.SDEdit(images, nil, start)
		if err != nil {
			t.Fatal(err)
		}
		var d float64
		for j := range images {
			d += math.Abs(float64(res.Images[j] - images[j]))
		}
		d /= float64(len(images))
		if d >= prev {
			t.Errorf("i_start %d: mean distance to the input %.3f, not below %.3f of less noise", start, d, prev)
		}
		prev = d
	}
	if _, err := s.SDEdit(images, nil, len(s.Grid)-1); err == nil {
		t.Error("i_start past the last step accepted")
	}
	if _, err := s.SDEdit(images, []int{0}, 0); err == nil {
		t.Error("one condition for 16 images accepted")
	}
}

func TestDenoiseAndFrames(t *testing.T) {
	mu := randomImage(8)
	s := testSetup(t, gauss{means: [][]float32{mu}, uncond: mu, s: 0.1})
	start := 5
	noisy, err := Noise(s.Process, append(randomImage(9), randomImage(10)...), shape, s.Grid[start], 1)
	if err != nil {
		t.Fatal(err)
	}
	s.Record = []int{0, 5, s.Steps(start)}
	res, err := s.Denoise(noisy, nil, start)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Frames) != 3 || res.FrameSteps[2] != s.Steps(start) || res.FrameTimes[2] != -1 {
		t.Fatalf("frames at steps %v, times %v", res.FrameSteps, res.FrameTimes)
	}
	if maxDiff(res.Frames[0], noisy) != 0 || maxDiff(res.Frames[2], res.Images) != 0 {
		t.Error("the first frame is not the input or the last not the result")
	}
	// The exact model denoises towards its mean: the result is nearer mu than the noisy input.
	var dn, dr float64
	for j, v := range noisy {
		m := float64(mu[j%len(mu)])
		dn += math.Abs(float64(v) - m)
		dr += math.Abs(float64(res.Images[j]) - m)
	}
	if dr >= dn/2 {
		t.Errorf("denoised distance to the mean %.3f, noisy %.3f", dr, dn)
	}
}

func TestOneStepIsTheExactPosteriorMean(t *testing.T) {
	mu := randomImage(11)
	s := testSetup(t, gauss{means: [][]float32{mu}, uncond: mu, s: 0.4})
	x := append(randomImage(12), randomImage(13)...)
	times := []float64{30, 150}
	x0, err := OneStep(s.Model, s.Process, x, times, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range times {
		sc, _ := s.Process.Scales(tt)
		v := sc.Alpha*sc.Alpha*0.16 + sc.Sigma*sc.Sigma
		for j := range mu {
			y := float64(x[i*len(mu)+j]) - sc.Alpha*float64(mu[j])
			want := float64(mu[j]) + sc.Alpha*0.16*y/v
			if d := math.Abs(float64(x0[i*len(mu)+j]) - want); d > 1e-4 {
				t.Fatalf("t %g pixel %d: x0 %g, want %g", tt, j, x0[i*len(mu)+j], want)
			}
		}
	}
}

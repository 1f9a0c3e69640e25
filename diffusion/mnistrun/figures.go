package mnistrun

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/imagediff"
	"github.com/godiffusion/notebooks/diffusion/plot"
	"github.com/godiffusion/notebooks/diffusion/schedule"
)

const pixels = mnist.Rows * mnist.Cols

// grid draws images in [0, 1] (flat, 28x28 each).
func grid(images []float32, opts plot.GridOptions) ([]byte, error) {
	split, err := plot.SplitImages(images, mnist.Rows, mnist.Cols)
	if err != nil {
		return nil, err
	}
	opts.Height, opts.Width = mnist.Rows, mnist.Cols
	return plot.ImageGrid(split, opts)
}

// images returns the [0, 1] pixels of the images at idx of set.
func images(set *mnist.Set, idx []int) ([]float32, error) {
	x, _, err := set.Batch(idx, 0, 1)
	return x, err
}

// noisy returns x + sigma * n with n drawn from seed.
func noisy(x []float32, sigma float64, seed int64) []float32 {
	rng := rand.New(rand.NewPCG(uint64(seed), 17))
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = v + float32(sigma*rng.NormFloat64())
	}
	return out
}

func sigmaTitles(sigmas []float64) []string {
	out := make([]string, len(sigmas))
	for i, s := range sigmas {
		out[i] = fmt.Sprintf("σ=%.1f", s)
	}
	return out
}

// NoisingFigure shows the test images at idx (rows) noised with each sigma (columns):
// x + sigma * n (CS180 5B part 1.2).
func NoisingFigure(set *mnist.Set, idx []int, sigmas []float64, seed int64) ([]byte, error) {
	var all []float32
	for r, i := range idx {
		x, err := images(set, []int{i})
		if err != nil {
			return nil, err
		}
		for _, s := range sigmas {
			all = append(all, noisy(x, s, seed+int64(r))...)
		}
	}
	return grid(all, plot.GridOptions{Rows: len(idx), Cols: len(sigmas), ColTitles: sigmaTitles(sigmas), Title: "Noising process x + σ·ε"})
}

// DenoiseFigure shows rows of clean test images, the same noised with the model's sigma, and
// the model's denoised outputs.
func DenoiseFigure(m *imagediff.Model, set *mnist.Set, idx []int, seed int64, title string) ([]byte, error) {
	clean, err := images(set, idx)
	if err != nil {
		return nil, err
	}
	in := noisy(clean, m.Sigma, seed)
	if m.PureNoise {
		in = noisy(make([]float32, len(clean)), m.Sigma, seed)
	}
	out, err := m.Denoise(in, len(idx), 0)
	if err != nil {
		return nil, err
	}
	all := append(append(append([]float32{}, clean...), in...), out...)
	return grid(all, plot.GridOptions{Rows: 3, Cols: len(idx), RowLabels: []string{"clean", "input", "denoised"}, Title: title})
}

// OODFigure denoises the test images at idx noised with every sigma (columns), including
// levels the model was not trained on: rows alternate noisy input and output per image.
func OODFigure(m *imagediff.Model, set *mnist.Set, idx []int, sigmas []float64, seed int64) ([]byte, error) {
	var all []float32
	var labels []string
	for r, i := range idx {
		x, err := images(set, []int{i})
		if err != nil {
			return nil, err
		}
		var in []float32
		for _, s := range sigmas {
			in = append(in, noisy(x, s, seed+int64(r))...)
		}
		out, err := m.Denoise(in, len(sigmas), 0)
		if err != nil {
			return nil, err
		}
		all = append(append(all, in...), out...)
		labels = append(labels, "noisy", "denoised")
	}
	return grid(all, plot.GridOptions{Rows: 2 * len(idx), Cols: len(sigmas), RowLabels: labels, ColTitles: sigmaTitles(sigmas),
		Title: fmt.Sprintf("Out-of-distribution noise levels (trained at σ=%.1f)", m.Sigma)})
}

// MeanImage returns the pixel-wise mean of a set (in [0, 1]).
func MeanImage(set *mnist.Set) []float32 {
	out := make([]float32, pixels)
	for i := range set.N {
		for j, v := range set.Image(i) {
			out[j] += v
		}
	}
	for j := range out {
		out[j] /= float32(set.N)
	}
	return out
}

// PureNoiseFigure shows the pure-noise denoiser's outputs for n noise inputs next to the mean
// training image, and returns the mean squared distance of the outputs to that mean image.
func PureNoiseFigure(m *imagediff.Model, train *mnist.Set, n int, seed int64) ([]byte, float64, error) {
	if !m.PureNoise {
		return nil, 0, fmt.Errorf("mnistrun: PureNoiseFigure needs a pure-noise denoiser")
	}
	in := noisy(make([]float32, n*pixels), m.Sigma, seed)
	out, err := m.Denoise(in, n, 0)
	if err != nil {
		return nil, 0, err
	}
	mean := MeanImage(train)
	dist := 0.0
	for i, v := range out {
		d := float64(v - mean[i%pixels])
		dist += d * d
	}
	dist /= float64(len(out))
	all := append(append([]float32{}, mean...), ToUnit(out, 0, 1)...)
	titles := make([]string, n+1)
	titles[0] = "mean image"
	png, err := grid(all, plot.GridOptions{Cols: n + 1, ColTitles: titles, Title: "Denoising pure noise: outputs vs the mean training image"})
	return png, dist, err
}

// SampleGrid draws samples digit-major (as ClassLabels orders them) with one column per digit,
// or, for unconditional samples (perClass 0), in rows of 10. images are in [lo, hi].
func SampleGrid(s *imagediff.Samples, lo, hi float32, perClass int, title string) ([]byte, error) {
	x := ToUnit(s.Images, lo, hi)
	if perClass > 0 {
		titles := make([]string, 10)
		for k := range titles {
			titles[k] = fmt.Sprint(k)
		}
		return grid(x, plot.GridOptions{Rows: perClass, Cols: 10, ColumnMajor: true, ColTitles: titles, Title: title})
	}
	return grid(x, plot.GridOptions{Cols: 10, Title: title})
}

// FramesFigure shows the recorded frames of the first n samples: one row per sample, one
// column per recorded step, titled with the label function of the step.
func FramesFigure(s *imagediff.Samples, lo, hi float32, n int, label func(step int) string, title string) ([]byte, error) {
	n = min(n, s.N)
	var all []float32
	for i := range n {
		for _, f := range s.Frames {
			all = append(all, ToUnit(f[i*pixels:(i+1)*pixels], lo, hi)...)
		}
	}
	titles := make([]string, len(s.FrameSteps))
	for i, st := range s.FrameSteps {
		titles[i] = label(st)
	}
	return grid(all, plot.GridOptions{Rows: n, Cols: len(s.Frames), ColTitles: titles, Title: title})
}

// NoiseProgressionFigure shows q(x_t | x_0) for the test images at idx (rows) at the given
// fractions of the schedule's T (columns), in the pixel range [lo, hi] mapped back to [0, 1].
func NoiseProgressionFigure(sched *schedule.Schedule, set *mnist.Set, idx []int, fractions []float64, lo, hi float32, seed int64) ([]byte, error) {
	T := sched.T()
	var all []float32
	titles := make([]string, len(fractions))
	for c, f := range fractions {
		titles[c] = fmt.Sprintf("%.0f%%", 100*f)
	}
	for r, i := range idx {
		x, _, err := set.Batch([]int{i}, lo, hi)
		if err != nil {
			return nil, err
		}
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(r)))
		eps := make([]float64, len(x))
		for j := range eps {
			eps[j] = rng.NormFloat64()
		}
		for _, f := range fractions {
			xt := make([]float32, len(x))
			abar := 1.0
			if t := int(math.Round(f*float64(T))) - 1; t >= 0 {
				abar = sched.AlphaBars[min(t, T-1)]
			}
			for j, v := range x {
				xt[j] = float32(math.Sqrt(abar)*float64(v) + math.Sqrt(1-abar)*eps[j])
			}
			all = append(all, ToUnit(xt, lo, hi)...)
		}
	}
	return grid(all, plot.GridOptions{Rows: len(idx), Cols: len(fractions), ColTitles: titles, Title: fmt.Sprintf("Forward process over T = %d steps (%s schedule)", T, sched.Config.Kind)})
}

// LossFigure plots training losses (moving averages over 2% of the steps) of one or more runs.
func LossFigure(title string, names []string, hists ...*History) ([]byte, error) {
	var curves []plot.Curve
	for i, h := range hists {
		if h == nil || len(h.Loss) == 0 {
			return nil, fmt.Errorf("mnistrun: run %d has no training history", i)
		}
		x, y := movingAverage(h.Loss, max(1, len(h.Loss)/50))
		name := h.Task
		if i < len(names) {
			name = names[i]
		}
		curves = append(curves, plot.Curve{Name: name, X: x, Y: y})
	}
	return plot.Lines(plot.Options{Title: title, XLabel: "step", YLabel: "MSE loss", LogY: true}, curves...)
}

// movingAverage returns the trailing means of v over w steps (1-based x).
func movingAverage(v []float64, w int) (x, y []float64) {
	sum := 0.0
	for i, a := range v {
		sum += a
		if i >= w {
			sum -= v[i-w]
		}
		if i >= w-1 {
			x = append(x, float64(i+1))
			y = append(y, sum/float64(w))
		}
	}
	return x, y
}

// SnapshotFor returns the snapshot figure of a task during training: denoised test images for
// the denoiser, 4 samples per digit (or 40 unconditional ones) for the generative models.
func SnapshotFor(cfg Config, task Task, test *mnist.Set) SnapshotFunc {
	return func(m *imagediff.Model, step int, epoch float64) ([]byte, error) {
		title := fmt.Sprintf("%s after %.2g epochs (step %d)", task.Name, epoch, step)
		switch m.Objective {
		case imagediff.Denoise:
			return DenoiseFigure(m, test, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, cfg.Seed, title)
		default:
			s, err := GenerateGrid(cfg, m, 4)
			if err != nil {
				return nil, err
			}
			per := 4
			if m.Net.NumClasses == 0 {
				per = 0
			}
			return SampleGrid(s, m.PixelLo, m.PixelHi, per, title)
		}
	}
}

// GenerateGrid draws perClass samples of each digit (digit-major; 10*perClass unconditional
// samples for a model without classes) with the configuration's sampler settings.
func GenerateGrid(cfg Config, m *imagediff.Model, perClass int) (*imagediff.Samples, error) {
	sc := SamplerFor(cfg, m)
	if m.Net.NumClasses == 0 {
		return m.Sample(10*perClass, nil, sc)
	}
	return m.Sample(10*perClass, ClassLabels(perClass), sc)
}

// SamplerFor returns the configuration's sampler settings for a model: Euler steps and guidance
// for flow models, strided ancestral DDPM steps and guidance for DDPM models.
func SamplerFor(cfg Config, m *imagediff.Model) imagediff.SampleConfig {
	if m.Objective == imagediff.DDPM {
		return imagediff.SampleConfig{Steps: min(cfg.DDPMSteps, m.Schedule().T()), Guidance: cfg.DDPMGuidance, Seed: cfg.Seed}
	}
	return imagediff.SampleConfig{Steps: cfg.FlowSteps, Guidance: cfg.Guidance, Seed: cfg.Seed}
}

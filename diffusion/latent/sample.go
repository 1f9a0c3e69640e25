package latent

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/metrics"
	"github.com/godiffusion/notebooks/diffusion/mnisteval"
	"github.com/godiffusion/notebooks/diffusion/sampling"
	"github.com/godiffusion/notebooks/diffusion/seeded"
	"github.com/godiffusion/notebooks/diffusion/spiral"
)

// Samples are generated latents and their decoded digits.
type Samples struct {
	Latents []float32 // N*d_z values, in the VAE's latent space (not standardized)
	Images  []float32 // N*784 pixel probabilities in [0, 1]
	Labels  []int     // the requested digit of every sample (nil: unconditional)
	N       int
	// Decoded marks digits that are decoder outputs (Bernoulli means), which Score also
	// scores as ModeImages.
	Decoded bool
	// Duration is the time of the sampling and decoding.
	Duration time.Duration
}

// Sample draws n latents from the score network m by the reverse SDE (K Euler-Maruyama steps
// of the sampling core) and decodes them. With labels (one digit per sample) the network must
// be conditional and is guided by classifier-free guidance of scale w
// (sampling.ClassifierFree: s_u + w (s_c - s_u); w = 0 is the unconditional score, 1 the
// conditional one); without, w is ignored and an unconditional network (or the null class of
// a conditional one) is sampled.
func (s *Study) Sample(m *spiral.Net, n int, labels []int, w float64, seed int64) (*Samples, error) {
	if m == nil {
		return nil, fmt.Errorf("latent.Sample: nil network")
	}
	if m.Dimension() != s.Latent() {
		return nil, fmt.Errorf("latent.Sample: the network models latents of dimension %d, the VAE has d_z = %d", m.Dimension(), s.Latent())
	}
	if labels != nil && len(labels) != n {
		return nil, fmt.Errorf("latent.Sample: %d labels for %d samples", len(labels), n)
	}
	var model sampling.Model = m
	if labels != nil {
		if !m.Conditional() {
			return nil, fmt.Errorf("latent.Sample: class labels need the class-conditional network")
		}
		g, err := sampling.ClassifierFree(m, w, nil)
		if err != nil {
			return nil, err
		}
		model = g
	}
	start := time.Now()
	run, err := spiral.Sample(model, s.Config.Process, spiral.SampleOptions{N: n, K: s.Config.K, Seed: seed, Dim: s.Latent(), Cond: labels})
	if err != nil {
		return nil, err
	}
	z, err := s.Norm.Denormalize(run.Points)
	if err != nil {
		return nil, err
	}
	return s.decode(z, labels, start)
}

// decode decodes latents into Samples.
func (s *Study) decode(z []float32, labels []int, start time.Time) (*Samples, error) {
	for i, v := range z {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("latent: sample %d has a non-finite latent coordinate %v (the sampler diverged)", i/s.Latent(), v)
		}
	}
	x, err := s.VAE.Decode(z)
	if err != nil {
		return nil, err
	}
	return &Samples{Latents: z, Images: x, Labels: labels, N: len(z) / s.Latent(), Decoded: true, Duration: time.Since(start)}, nil
}

// WithModeImages returns a copy of s whose images are ModeImages(s.Images).
func (s *Samples) WithModeImages() *Samples {
	m := *s
	m.Images = ModeImages(s.Images)
	return &m
}

// ModeImages returns the Bernoulli mode of decoded pixel probabilities: 1 where p >= 0.5,
// else 0 — the most probable image under the decoder's likelihood, as near-binary as MNIST
// itself. The decoder's means are grey where it is unsure, and the evaluator (trained on
// MNIST) reads grey, blurred strokes differently from the digit a person sees (3 and 5 as
// 8 with d_z = 2), so decoded sets are scored both ways.
func ModeImages(images []float32) []float32 {
	out := make([]float32, len(images))
	for i, v := range images {
		if v >= 0.5 {
			out[i] = 1
		}
	}
	return out
}

// PriorSamples decodes n latents of the VAE's prior N(0, I) (the baseline of latent
// diffusion).
func (s *Study) PriorSamples(n int, seed int64) (*Samples, error) {
	if n < 1 {
		return nil, fmt.Errorf("latent: need n >= 1 prior samples, got %d", n)
	}
	start := time.Now()
	return s.decode(seeded.Normals(seeded.New(seed), n*s.Latent()), nil, start)
}

// DecodedTest decodes the encoder means of the first n test digits: the decoder's best, the
// floor of every decoded set.
func (s *Study) DecodedTest(n int) (*Samples, error) {
	n = min(n, s.Test.N)
	start := time.Now()
	z, err := s.VAE.Encode(s.Test.Images[:n*mnist.Rows*mnist.Cols])
	if err != nil {
		return nil, err
	}
	out, err := s.decode(z, s.Test.Labels[:n], start)
	return out, err
}

// BalancedLabels returns n labels cycling through the digits 0..9.
func BalancedLabels(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i % mnist.NumClasses
	}
	return out
}

// Row is one scored set of digits.
type Row struct {
	Name string
	N    int
	// FID is the Fréchet distance of the evaluator's features to the MNIST test set's.
	FID float64
	// MaxConfidence is the mean over the digits of the evaluator's largest class probability.
	MaxConfidence float64
	// Guidance is the guidance scale of conditional samples (NaN otherwise).
	Guidance float64
	// Classes is the accuracy report against the requested digits (nil for unconditional
	// sets).
	Classes  *metrics.ClassReport
	Duration time.Duration
	// Mode is the same set of decoded digits scored on its ModeImages (nil for digits that
	// were not decoded).
	Mode *Row
}

// Accuracy returns the accuracy against the requested digits (NaN for unconditional sets).
func (r Row) Accuracy() float64 {
	if r.Classes == nil {
		return math.NaN()
	}
	return r.Classes.Accuracy
}

// Score has the evaluator score a set of digits: FID and mean max-confidence, and for sets
// with labels the accuracy per requested digit.
func Score(ev *mnisteval.Evaluator, name string, s *Samples) (Row, error) {
	if ev == nil || s == nil || s.N < 2 {
		return Row{}, fmt.Errorf("latent.Score: needs an evaluator and >= 2 samples")
	}
	probs, features, err := ev.Outputs(s.Images, s.N)
	if err != nil {
		return Row{}, err
	}
	ref, _, err := ev.Reference()
	if err != nil {
		return Row{}, err
	}
	r, err := scoreOutputs(name, probs, features, ev.Config.Features, ref, s)
	if err != nil || !s.Decoded {
		return r, err
	}
	if probs, features, err = ev.Outputs(ModeImages(s.Images), s.N); err != nil {
		return Row{}, err
	}
	mode, err := scoreOutputs(name+" (mode images)", probs, features, ev.Config.Features, ref, s)
	if err != nil {
		return Row{}, err
	}
	r.Mode = &mode
	return r, nil
}

// scoreOutputs is Score from the evaluator's outputs.
func scoreOutputs(name string, probs, features []float32, dim int, ref *metrics.Gaussian, s *Samples) (Row, error) {
	r := Row{Name: name, N: s.N, Guidance: math.NaN(), Duration: s.Duration}
	var err error
	if r.MaxConfidence, err = MeanMaxConfidence(probs, mnist.NumClasses); err != nil {
		return Row{}, err
	}
	g, err := metrics.FitGaussianFlat(features, dim)
	if err != nil {
		return Row{}, err
	}
	if r.FID, err = metrics.FrechetDistance(g, ref); err != nil {
		return Row{}, err
	}
	if s.Labels != nil {
		cr, err := metrics.EvaluateClasses(probs, mnist.NumClasses, s.Labels)
		if err != nil {
			return Row{}, err
		}
		r.Classes = &cr
	}
	return r, nil
}

// MeanMaxConfidence returns the mean over the rows of probs (classes values each) of the
// largest probability: how sure the evaluator is that a digit is some digit (argmax accuracy
// means nothing for unconditional samples).
func MeanMaxConfidence(probs []float32, classes int) (float64, error) {
	if classes < 1 || len(probs) == 0 || len(probs)%classes != 0 {
		return 0, fmt.Errorf("latent: %d probabilities are not rows of %d classes", len(probs), classes)
	}
	sum := 0.0
	for i := 0; i < len(probs); i += classes {
		best := probs[i]
		for _, p := range probs[i : i+classes] {
			best = max(best, p)
		}
		sum += float64(best)
	}
	return sum / float64(len(probs)/classes), nil
}

// Table formats scored sets, with the FID of each relative to the first row's (the
// baseline: the VAE prior), and for decoded sets the same scores on their mode images.
func Table(rows []Row) string {
	var b strings.Builder
	b.WriteString("| digits | n | FID (evaluator features) | vs first row | mean max-confidence | accuracy | FID, mode images | accuracy, mode images | time |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		rel := "-"
		if len(rows) > 0 && rows[0].FID > 0 {
			rel = fmt.Sprintf("%.2fx", r.FID/rows[0].FID)
		}
		modeFID, modeAcc := "-", "-"
		if r.Mode != nil {
			modeFID, modeAcc = fmt.Sprintf("%.2f", r.Mode.FID), accuracyText(*r.Mode)
		}
		dur := "-"
		if r.Duration > 0 {
			dur = r.Duration.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "| %s | %d | %.2f | %s | %.3f | %s | %s | %s | %s |\n", r.Name, r.N, r.FID, rel, r.MaxConfidence, accuracyText(r), modeFID, modeAcc, dur)
	}
	return b.String()
}

// accuracyText is the row's accuracy with 3 decimals, or "-" for an unconditional set.
func accuracyText(r Row) string {
	if r.Classes == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f", r.Classes.Accuracy)
}

// PriorComparison is the verdict on latent diffusion against the VAE's prior.
func PriorComparison(prior, diffusion Row) string {
	verdict := "**beats** the prior"
	if !(diffusion.FID < prior.FID) {
		verdict = "**does not beat** the prior"
	}
	line := fmt.Sprintf("Latent diffusion %s on FID: %.2f vs %.2f (%.1f%% lower, %.2fx); mean max-confidence %.3f vs %.3f.",
		verdict, diffusion.FID, prior.FID, 100*(1-diffusion.FID/prior.FID), prior.FID/diffusion.FID, diffusion.MaxConfidence, prior.MaxConfidence)
	if pm, dm := prior.Mode, diffusion.Mode; pm != nil && dm != nil {
		line += fmt.Sprintf(" On the mode images: %.2f vs %.2f (%.1f%% lower).", dm.FID, pm.FID, 100*(1-dm.FID/pm.FID))
	}
	return line
}

// AccuracyTarget is the target for the mean evaluator accuracy of the guided samples
// (w = 7.5, d_z = 2) at the cpu preset.
const AccuracyTarget = 0.85

// Sweep samples and scores s.Config.Samples balanced digits at every guidance scale of the
// configuration's sweep (each with the same seed, so the runs differ only by w).
func (s *Study) Sweep(ev *mnisteval.Evaluator, m *spiral.Net, progress func(w float64)) ([]Row, error) {
	var rows []Row
	labels := BalancedLabels(s.Config.Samples)
	for _, w := range s.Config.Sweep {
		if progress != nil {
			progress(w)
		}
		smp, err := s.Sample(m, len(labels), labels, w, s.Config.Seed+200)
		if err != nil {
			return nil, fmt.Errorf("latent: guidance %g: %w", w, err)
		}
		r, err := Score(ev, fmt.Sprintf("CFG w = %g", w), smp)
		if err != nil {
			return nil, err
		}
		r.Guidance = w
		rows = append(rows, r)
	}
	return rows, nil
}

// SweepTable formats a guidance sweep: accuracy, FID and confidence per scale, and the
// accuracy of every digit.
func SweepTable(rows []Row) string {
	var b strings.Builder
	b.WriteString("| w | n | accuracy | FID | accuracy, mode images | FID, mode images | mean max-confidence | worst digit (acc.) |")
	for d := range mnist.NumClasses {
		fmt.Fprintf(&b, " %d |", d)
	}
	b.WriteString("\n|---:|---:|---:|---:|---:|---:|---:|---|")
	for range mnist.NumClasses {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		if r.Classes == nil {
			continue
		}
		worst, wa := -1, 2.0
		for _, c := range r.Classes.Classes {
			if c.Samples > 0 && c.Accuracy < wa {
				worst, wa = c.Class, c.Accuracy
			}
		}
		modeAcc, modeFID := "-", "-"
		if r.Mode != nil {
			modeAcc, modeFID = accuracyText(*r.Mode), fmt.Sprintf("%.2f", r.Mode.FID)
		}
		fmt.Fprintf(&b, "| %g | %d | %.3f | %.2f | %s | %s | %.3f | %d (%.2f) |", r.Guidance, r.N, r.Classes.Accuracy, r.FID, modeAcc, modeFID, r.MaxConfidence, worst, wa)
		for _, c := range r.Classes.Classes {
			fmt.Fprintf(&b, " %.2f |", c.Accuracy)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TargetLine states the accuracy of the row at the configuration's guidance scale against
// AccuracyTarget (the target is for d_z = 2 at cpu).
func (s *Study) TargetLine(rows []Row) string {
	verdict := func(acc float64) string {
		met := acc >= AccuracyTarget
		switch {
		case s.Latent() != 2 && met:
			return "above it"
		case s.Latent() != 2:
			return "below it"
		case met:
			return "met"
		}
		return "**not met**"
	}
	for _, r := range rows {
		if r.Guidance != s.Config.Guidance || r.Classes == nil {
			continue
		}
		line := fmt.Sprintf("Mean evaluator accuracy at w = %g, d_z = %d: **%.3f** on the decoder's mean images (FID %.2f)",
			r.Guidance, s.Latent(), r.Classes.Accuracy, r.FID)
		target := fmt.Sprintf("target >= %.2f at `cpu` with d_z = 2", AccuracyTarget)
		if s.Latent() != 2 {
			target += " (this d_z is a comparison, not the target's)"
		}
		if m := r.Mode; m != nil && m.Classes != nil {
			return fmt.Sprintf("%s, **%.3f** on its mode images (FID %.2f); %s: %s on the mean images, %s on the mode images.",
				line, m.Classes.Accuracy, m.FID, target, verdict(r.Classes.Accuracy), verdict(m.Classes.Accuracy))
		}
		return fmt.Sprintf("%s; %s: %s.", line, target, verdict(r.Classes.Accuracy))
	}
	return "no sample set at the configured guidance scale"
}

// LossSummary describes a latent training run in one line.
func LossSummary(h *spiral.History) string {
	if h == nil || len(h.ValDSM) == 0 {
		return "no history"
	}
	last := len(h.ValDSM) - 1
	return fmt.Sprintf("%d steps (%s, %.0f steps/s): validation DSM loss %.4f (first %.4f)",
		len(h.TrainLoss), h.Duration.Round(time.Second), float64(len(h.TrainLoss))/h.Duration.Seconds(), h.ValDSM[last], h.ValDSM[0])
}

// Comparison is latent diffusion against the VAE's prior, scored by the evaluator on sets of
// the same size: the prior's samples (the baseline), the latent score network's, and two
// floors: the decoded encoder means of test digits (the decoder's best) and the test digits
// themselves (the finite-sample floor of the FID).
type Comparison struct {
	Prior, Diffusion, Decoded, Test Row
	PriorSamples, DiffusionSamples  *Samples
}

// Rows returns the comparison's rows, the prior first.
func (c *Comparison) Rows() []Row { return []Row{c.Prior, c.Diffusion, c.Decoded, c.Test} }

// ComparePrior samples s.Config.Samples digits from the VAE's prior and from the
// unconditional latent score network m and scores them with the floors.
func (s *Study) ComparePrior(ev *mnisteval.Evaluator, m *spiral.Net) (*Comparison, error) {
	n := s.Config.Samples
	c := &Comparison{}
	var err error
	if c.PriorSamples, err = s.PriorSamples(n, s.Config.Seed+300); err != nil {
		return nil, err
	}
	if c.DiffusionSamples, err = s.Sample(m, n, nil, 0, s.Config.Seed+100); err != nil {
		return nil, err
	}
	dec, err := s.DecodedTest(n)
	if err != nil {
		return nil, err
	}
	n = min(n, s.Test.N)
	px := mnist.Rows * mnist.Cols
	test := &Samples{Images: s.Test.Images[:n*px], Labels: s.Test.Labels[:n], N: n}
	for _, j := range []struct {
		row  *Row
		name string
		smp  *Samples
	}{{&c.Prior, "VAE prior: decode(z), z ~ N(0, I)", c.PriorSamples}, {&c.Diffusion, "latent diffusion: decode(z), z by the reverse SDE", c.DiffusionSamples},
		{&c.Decoded, "floor: decode(encoder mean) of test digits", dec}, {&c.Test, "floor: test digits", test}} {
		// The floors keep their true digits: their accuracy is how well the evaluator reads
		// decoded (or real) digits, the ceiling of any decoded set's accuracy.
		if *j.row, err = Score(ev, j.name, j.smp); err != nil {
			return nil, err
		}
	}
	return c, nil
}

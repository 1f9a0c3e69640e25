// Package latent is latent diffusion on the VAE's latents (final exam, Exercise 3, part 4):
// MNIST is mapped to latents z = encoder mean of the VAE (diffusion/vae), standardized per
// coordinate, and a score network of the spiral part (diffusion/spiral's Net on [z, t], of
// dimension d_z, optionally with a learned class embedding) is trained on them by denoising
// score matching (spiral.Net.TrainOn). Latents are sampled by the reverse-time SDE through
// the sampling core (diffusion/sampling, with sampling.ClassifierFree for guidance) and
// decoded by the VAE's decoder. The MNIST evaluator (diffusion/mnisteval) scores the decoded
// digits against the VAE's prior samples: FID in its features, mean max-confidence and, for
// class-conditional samples, accuracy per digit.
//
// Library functions return errors; GoMLX panics are recovered and returned as errors.
package latent

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/history"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/spiral"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
	"github.com/godiffusion/notebooks/diffusion/vae"
)

// Kind is the checkpoint kind of the latent score networks (savedmodel.MetaFile).
const Kind = "latent-score"

// Config is everything the latent part of notebook 07 and `vae latent` run with.
type Config struct {
	Preset  preset.Preset  `json:"preset"`
	Seed    int64          `json:"seed"`
	Process spiral.Process `json:"process"`
	K       int            `json:"k"` // reverse SDE steps (t = k/K)
	// Net is the score network (DataDim and Classes are set per model: the VAE's d_z, and
	// 0 or 10).
	Net spiral.NetConfig `json:"net"`
	// ClassEmbed is the class embedding of the conditional network (the exam: 256).
	ClassEmbed int `json:"class_embed"`
	// Train is the denoising score matching of both networks; PUncond is the conditional
	// network's label dropout (the exam: 0.2).
	Train   spiral.TrainConfig `json:"train"`
	PUncond float64            `json:"p_uncond"`
	// Guidance is the classifier-free guidance scale w of the conditional samples (the exam:
	// 7.5); Sweep the scales of the guidance sweep.
	Guidance float64   `json:"guidance"`
	Sweep    []float64 `json:"sweep"`
	// Samples is the number of digits of every scored set (FID, confidence, accuracy).
	Samples int `json:"samples"`
	// PlaneGrid is the grid size (PlaneGrid x PlaneGrid points) at which the notebook and the
	// command read the decoded latent plane with the evaluator (ReadPlane; d_z = 2 only).
	// Not part of the configuration a checkpoint is compared by.
	PlaneGrid int `json:"-"`
	// CheckpointEvery, if > 0, saves the resumable training state (trainstate) after every
	// CheckpointEvery steps; CheckpointInterval saves it when that much training time passed
	// (0: trainstate.DefaultInterval). Neither is part of the configuration a checkpoint is
	// compared with.
	CheckpointEvery    int           `json:"-"`
	CheckpointInterval time.Duration `json:"-"`
}

// Overrides are the flags of the notebook and of the command; a zero value keeps the
// preset's.
type Overrides struct {
	Preset        string
	Seed          int64
	Steps, Batch  int
	LR            float64
	Width, Layers int
	K             int
	BetaMax       float64
	ClassEmbed    int
	PUncond       float64 // < 0: 0 (no label dropout)
	Guidance      float64
	Samples       int
	Workers       int // data-parallel shards of each training batch (spiral.TrainConfig.Workers)
}

// Config returns the preset's configuration with the overrides applied, validated.
func (o Overrides) Config() (Config, error) {
	p, err := preset.Parse(o.Preset)
	if err != nil {
		return Config{}, err
	}
	c := Config{Preset: p, Seed: 1, Process: spiral.DefaultProcess(), K: 200, ClassEmbed: 256, PUncond: 0.2,
		Guidance: 7.5, Sweep: []float64{0, 1, 3, 7.5, 15}}
	c.Net = spiral.NetConfig{Width: preset.Pick(p, 64, 256, 256), Layers: 3, Activation: nets.SiLU, ScaleBySigma: true, TimeInput: spiral.TimeLogSigma}
	c.Train = spiral.TrainConfig{Objective: spiral.DSM, Weighting: spiral.Sigma2, BatchSize: 256, LR: 2e-3,
		LRSchedule: lrschedule.Cosine, FinalLRFraction: 0.05, TimeSkew: 2, EMADecay: 0.999, Workers: 2}
	c.Train.Steps = preset.Pick(p, 100, 4000, 20000)
	c.Train.ValEvery = preset.Pick(p, 50, 500, 1000)
	c.Train.ValSize = preset.Pick(p, 512, 4096, 4096)
	c.Samples = preset.Pick(p, 100, 1000, 2000)
	c.K = preset.Pick(p, 50, 200, 200)
	c.PlaneGrid = preset.Pick(p, 40, 120, 120)
	if p == preset.Smoke {
		c.Train.EMADecay = 0.9
	}
	if o.Seed != 0 {
		c.Seed = o.Seed
	}
	preset.Override(&c.Train.Steps, o.Steps)
	preset.Override(&c.Train.BatchSize, o.Batch)
	preset.Override(&c.Train.LR, o.LR)
	preset.Override(&c.Net.Width, o.Width)
	preset.Override(&c.Net.Layers, o.Layers)
	preset.Override(&c.K, o.K)
	preset.Override(&c.Process.BetaMax, o.BetaMax)
	preset.Override(&c.ClassEmbed, o.ClassEmbed)
	preset.Override(&c.PUncond, o.PUncond)
	if c.PUncond < 0 {
		c.PUncond = 0
	}
	preset.Override(&c.Guidance, o.Guidance)
	preset.Override(&c.Samples, o.Samples)
	preset.Override(&c.Train.Workers, o.Workers)
	if !slices.Contains(c.Sweep, c.Guidance) {
		c.Sweep = append(c.Sweep, c.Guidance)
		slices.Sort(c.Sweep)
	}
	c.Train.TMin = 1 / float64(c.K)
	c.Train.Seed = c.Seed
	return c, c.Validate()
}

// Validate reports a configuration that cannot run, naming the problem.
func (c Config) Validate() error {
	if err := c.Process.Validate(); err != nil {
		return fmt.Errorf("latent: %w", err)
	}
	if c.K < 1 {
		return fmt.Errorf("latent: the number of reverse steps K must be >= 1, got %d", c.K)
	}
	if c.ClassEmbed < 1 {
		return fmt.Errorf("latent: the class embedding needs >= 1 values, got %d", c.ClassEmbed)
	}
	for _, cond := range []bool{false, true} {
		if err := c.NetFor(2, cond).Validate(); err != nil {
			return fmt.Errorf("latent: %w", err)
		}
		if err := c.TrainFor(cond).Validate(); err != nil {
			return fmt.Errorf("latent: %w", err)
		}
	}
	if !(c.Guidance >= 0) || math.IsInf(c.Guidance, 0) {
		return fmt.Errorf("latent: the guidance scale must be a finite number >= 0, got %g", c.Guidance)
	}
	for _, w := range c.Sweep {
		if !(w >= 0) || math.IsInf(w, 0) {
			return fmt.Errorf("latent: the guidance sweep holds %g (want finite scales >= 0)", w)
		}
	}
	if c.Samples < 10 {
		return fmt.Errorf("latent: need >= 10 samples per scored set (one per digit at least), got %d", c.Samples)
	}
	if c.PlaneGrid < 2 || c.PlaneGrid > 1000 {
		return fmt.Errorf("latent: the plane reading's grid must be 2 to 1000 points a side, got %d", c.PlaneGrid)
	}
	return nil
}

// NetFor returns the score network of latent dimension dz, class-conditional (10 digits,
// ClassEmbed) or not.
func (c Config) NetFor(dz int, conditional bool) spiral.NetConfig {
	n := c.Net
	n.DataDim = dz
	if conditional {
		n.Classes, n.ClassEmbed = mnist.NumClasses, c.ClassEmbed
	}
	return n
}

// TrainFor returns the training of the conditional or unconditional network (label dropout
// only for the conditional one).
func (c Config) TrainFor(conditional bool) spiral.TrainConfig {
	tc := c.Train
	tc.PUncond = 0
	if conditional {
		tc.PUncond = c.PUncond
	}
	return tc
}

// Summary describes the configuration in a line of Markdown.
func (c Config) Summary(dz int) string {
	return fmt.Sprintf("preset `%s`, seed %d. **Latents**: encoder means of the VAE (d_z = %d), standardized per coordinate. "+
		"**Process**: VP, beta(t) = %g + t (%g - %g), reverse SDE by Euler-Maruyama in K = %d steps. "+
		"**Score net**: %d x %d %s on [z, log sigma(t)], output / sigma(t); conditional: + a class embedding of %d (one-hot x dense, 11 rows with the null class), p_uncond %g. "+
		"**Training**: denoising score matching (sigma^2 weighting), %d steps, batch %d, Adam %g (%s), EMA %g. "+
		"**Scoring**: %d digits per set; guidance w = %g, sweep %v.",
		c.Preset, c.Seed, dz, c.Process.BetaMin, c.Process.BetaMax, c.Process.BetaMin, c.K,
		c.Net.Layers, c.Net.Width, c.Net.Activation, c.ClassEmbed, c.PUncond,
		c.Train.Steps, c.Train.BatchSize, c.Train.LR, c.Train.LRSchedule, c.Train.EMADecay, c.Samples, c.Guidance, c.Sweep)
}

// Normalization standardizes latents per coordinate: (z - Mean) / Std, with the statistics
// of the encoded training set (the VP process expects data of about unit variance).
type Normalization struct {
	Mean []float64 `json:"mean"`
	Std  []float64 `json:"std"`
}

// FitNormalization returns the per-coordinate mean and standard deviation of latents (n*dz
// values).
func FitNormalization(z []float32, dz int) (Normalization, error) {
	if dz < 1 || len(z) < 2*dz || len(z)%dz != 0 {
		return Normalization{}, fmt.Errorf("latent: %d values are not >= 2 latents of dimension %d", len(z), dz)
	}
	n := len(z) / dz
	nz := Normalization{Mean: make([]float64, dz), Std: make([]float64, dz)}
	for i := range n {
		for j := range dz {
			nz.Mean[j] += float64(z[i*dz+j]) / float64(n)
		}
	}
	for i := range n {
		for j := range dz {
			d := float64(z[i*dz+j]) - nz.Mean[j]
			nz.Std[j] += d * d / float64(n-1)
		}
	}
	for j := range nz.Std {
		nz.Std[j] = math.Sqrt(nz.Std[j])
		if !(nz.Std[j] > 0) || math.IsInf(nz.Std[j], 0) {
			return Normalization{}, fmt.Errorf("latent: latent coordinate %d has standard deviation %g (a collapsed or diverged encoder)", j, nz.Std[j])
		}
	}
	return nz, nil
}

// apply returns (z - Mean) / Std (forward) or z Std + Mean (inverse), as a new slice.
func (nz Normalization) apply(z []float32, inverse bool) ([]float32, error) {
	dz := len(nz.Mean)
	if dz == 0 || len(z)%dz != 0 {
		return nil, fmt.Errorf("latent: %d values are not latents of dimension %d", len(z), dz)
	}
	out := make([]float32, len(z))
	for i, v := range z {
		j := i % dz
		if inverse {
			out[i] = float32(float64(v)*nz.Std[j] + nz.Mean[j])
		} else {
			out[i] = float32((float64(v) - nz.Mean[j]) / nz.Std[j])
		}
	}
	return out, nil
}

// Normalize returns the standardized latents.
func (nz Normalization) Normalize(z []float32) ([]float32, error) { return nz.apply(z, false) }

// Denormalize undoes Normalize: the latents the decoder takes.
func (nz Normalization) Denormalize(z []float32) ([]float32, error) { return nz.apply(z, true) }

// Study is a configured run on one trained VAE: its latents of the MNIST training set, their
// normalization, and the test set for the figures.
type Study struct {
	Config Config
	VAE    *vae.Model
	// VAETrained identifies the VAE's training: a latent checkpoint is reused only for the
	// same VAE.
	VAETrained  vae.Trained
	Train, Test *mnist.Set
	// Latents are the standardized encoder means of Train (Train.N * d_z values), Norm their
	// normalization.
	Latents []float32
	Norm    Normalization
}

// NewStudy encodes the VAE study's training set with the trained VAE m and standardizes the
// latents.
func NewStudy(cfg Config, vs *vae.Study, m *vae.Model) (*Study, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if vs == nil || m == nil || vs.Train == nil || vs.Test == nil {
		return nil, fmt.Errorf("latent.NewStudy: needs the VAE study (its MNIST sets) and the trained VAE")
	}
	if m.Config.Latent != vs.Config.Net.Latent {
		return nil, fmt.Errorf("latent.NewStudy: the VAE has latent dimension %d, its study asks for %d", m.Config.Latent, vs.Config.Net.Latent)
	}
	z, err := m.Encode(vs.Train.Images)
	if err != nil {
		return nil, err
	}
	nz, err := FitNormalization(z, m.Config.Latent)
	if err != nil {
		return nil, err
	}
	if z, err = nz.Normalize(z); err != nil {
		return nil, err
	}
	vc := vs.Config
	return &Study{Config: cfg, VAE: m, VAETrained: vae.Trained{Net: vc.Net, Train: vc.Train, TrainSize: vc.TrainSize, TestSize: vc.TestSize},
		Train: vs.Train, Test: vs.Test, Latents: z, Norm: nz}, nil
}

// Latent returns the latent dimension d_z.
func (s *Study) Latent() int { return s.VAE.Config.Latent }

// Data returns the study's latents as training data of a score network: uniformly drawn
// rows (with replacement) and, when labelled, their digits.
func (s *Study) Data(labelled bool) spiral.Data {
	d := &Encoded{Latents: s.Latents, Dim: s.Latent()}
	if labelled {
		d.Labels = s.Train.Labels
	}
	return d
}

// Encoded is a set of latents (and optional labels) as spiral.Data.
type Encoded struct {
	Latents []float32 // N*Dim values
	Dim     int
	Labels  []int // nil, or N labels
}

// Fingerprint identifies the latents and labels for resuming a training on them
// (spiral.Fingerprinter).
func (e *Encoded) Fingerprint() trainstate.Data { return trainstate.Fingerprint(e.Latents, e.Labels) }

// Draw returns n rows drawn uniformly with replacement (and their labels).
func (e *Encoded) Draw(n int, rng *rand.Rand) ([]float32, []int, error) {
	if e.Dim < 1 || len(e.Latents) < e.Dim || len(e.Latents)%e.Dim != 0 {
		return nil, nil, fmt.Errorf("latent: %d values are not latents of dimension %d", len(e.Latents), e.Dim)
	}
	size := len(e.Latents) / e.Dim
	if e.Labels != nil && len(e.Labels) != size {
		return nil, nil, fmt.Errorf("latent: %d latents with %d labels", size, len(e.Labels))
	}
	x := make([]float32, 0, n*e.Dim)
	var labels []int
	if e.Labels != nil {
		labels = make([]int, 0, n)
	}
	for range n {
		i := rng.IntN(size)
		x = append(x, e.Latents[i*e.Dim:(i+1)*e.Dim]...)
		if labels != nil {
			labels = append(labels, e.Labels[i])
		}
	}
	return x, labels, nil
}

// CheckpointName is the checkpoint name (under outputs/checkpoints) of the latent score
// network on the latents of the VAE of dimension dz: one per d_z and per kind (conditional
// or not), as the VAE's own.
func CheckpointName(dz int, conditional bool) string {
	if conditional {
		return fmt.Sprintf("latent_cfg_dz%d", dz)
	}
	return fmt.Sprintf("latent_score_dz%d", dz)
}

// Trained is what a latent checkpoint's history records about its training, compared by
// TrainOrLoad to decide whether the checkpoint can be reused.
type Trained struct {
	VAE     vae.Trained        `json:"vae"`
	Process spiral.Process     `json:"process"`
	Net     spiral.NetConfig   `json:"net"`
	Train   spiral.TrainConfig `json:"train"`
	Norm    Normalization      `json:"normalization"`
}

// record is the history file of a latent checkpoint.
type record struct {
	Trained Trained         `json:"trained"`
	History *spiral.History `json:"history"`
}

// CheckCheckpoint reports a checkpoint in dir that cannot hold a latent score network for the
// study's VAE: another kind of model, or another latent dimension. A directory without a
// checkpoint is fine.
func (s *Study) CheckCheckpoint(dir string) error {
	if dir == "" || !savedmodel.Exists(dir) {
		return nil
	}
	var meta spiral.Meta
	if err := savedmodel.ReadMeta(dir, &meta); err != nil {
		return fmt.Errorf("latent: %w", err)
	}
	if meta.Kind != Kind {
		return fmt.Errorf("latent: checkpoint %q holds a %q model, not a %q: choose another checkpoint directory", dir, meta.Kind, Kind)
	}
	if got := meta.Net.Dimension(); got != s.Latent() {
		return fmt.Errorf("latent: checkpoint %q is a score network on latents of dimension %d, the VAE has d_z = %d: use --latent=%d, or the checkpoint %s",
			dir, got, s.Latent(), got, CheckpointName(s.Latent(), meta.Net.Classes > 0))
	}
	return nil
}

// TrainOrLoad returns the latent score network, class-conditional or not: loaded from dir
// when it holds a checkpoint trained with the same configuration on the same VAE, otherwise
// trained (progress called after every step) and saved to dir with its history. dir "" trains
// without saving. A checkpoint of another model or of another latent dimension in dir is an
// error (it is not overwritten). The training into dir is resumable as spiral's TrainOrLoad
// (workspace dir + ".training", Config.CheckpointEvery and CheckpointInterval, interrupts).
func (s *Study) TrainOrLoad(conditional bool, dir string, progress func(step int, loss float64)) (n *spiral.Net, hist *spiral.History, loaded bool, err error) {
	defer savedmodel.RecoverError(&err, "latent.TrainOrLoad")
	if err := s.CheckCheckpoint(dir); err != nil {
		return nil, nil, false, err
	}
	c := s.Config
	netCfg, tc := c.NetFor(s.Latent(), conditional), c.TrainFor(conditional)
	want := Trained{VAE: s.VAETrained, Process: c.Process, Net: netCfg, Train: tc, Norm: s.Norm}
	if dir != "" && savedmodel.Exists(dir) {
		var rec record
		found, err := history.Load(dir, &rec)
		if err == nil && found && history.Same(rec.Trained, want) && rec.History != nil {
			n, err := spiral.LoadAs(s.VAE.Backend(), dir, Kind, &spiral.Meta{Net: netCfg, Process: c.Process})
			if err != nil {
				return nil, nil, false, err
			}
			return n, rec.History, true, nil
		}
	}
	n, err = spiral.NewNet(s.VAE.Backend(), netCfg, c.Process, c.Seed)
	if err != nil {
		return nil, nil, false, err
	}
	tc.Progress = progress
	ws, stop, err := spiral.Resumable(&tc, dir, c.CheckpointEvery, c.CheckpointInterval, "latent: ")
	if err != nil {
		return nil, nil, false, fmt.Errorf("latent: %w", err)
	}
	defer stop()
	hist, err = n.TrainOn(s.Data(conditional), tc)
	if err != nil {
		return nil, hist, false, err
	}
	hist.Config.Progress, hist.Config.Resume = nil, trainstate.Options{}
	if dir != "" {
		if err := n.SaveAs(dir, Kind); err != nil {
			return nil, nil, false, err
		}
		if err := history.Save(dir, record{want, hist}); err != nil {
			return nil, nil, false, err
		}
		if err := ws.Finish(); err != nil {
			return nil, nil, false, err
		}
	}
	return n, hist, false, nil
}

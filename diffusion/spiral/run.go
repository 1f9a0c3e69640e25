package spiral

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/gomlx/compute"

	"github.com/godiffusion/notebooks/diffusion/history"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/metrics"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/sampling"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// Config is everything notebook 06 and cmd/spiral run with.
type Config struct {
	Preset  preset.Preset `json:"preset"`
	Seed    int64         `json:"seed"`
	Mixture MixtureConfig `json:"mixture"`
	Process Process       `json:"process"`
	K       int           `json:"k"` // reverse steps (the exam: 200)
	Net     NetConfig     `json:"net"`
	// Train is the training of the learned scores; Objective is set per model, and the
	// Hyvarinen score uses HyvarinenWeighting, HyvarinenTimeSkew and HyvarinenBatch (if > 0)
	// instead of Train's. Its gradient is much noisier than DSM's (the trace term grows like
	// 1/sigma^2 at small t), so at cpu it takes the exam's loss with importance-sampled times
	// and batches of 512: measured (docs/STATUS.md session 13), the SDE samples' mean log p0
	// came within 0.24-0.42 nats of the floor's instead of 1.5-3.4 with batch 128 and uniform t.
	Train              TrainConfig `json:"train"`
	HyvarinenWeighting Weighting   `json:"hyvarinen_weighting"`
	HyvarinenTimeSkew  float64     `json:"hyvarinen_time_skew"`
	HyvarinenBatch     int         `json:"hyvarinen_batch,omitempty"`
	// FourierDamping says which learned scores damp their Fourier features with the noise
	// level (NetConfig.FourierDamped): DampHyvarinen (cpu, smoke), DampAll or DampNone. Measured
	// (docs/STATUS.md session 15, cpu, seeds 1-3): the Hyvarinen SDE samples' mean log p0 came
	// within 0.07-0.16 nats of the floor's, where the undamped features let the score push a
	// few points far out at large t (0.24-0.75 nats at scale 6); DSM's came out worse damped
	// (0.22 instead of 0.09-0.10 nats), so it keeps plain features.
	FourierDamping string `json:"fourier_damping,omitempty"`
	// Samples is the size of every sample set of the table (the floor uses two p0 sets of
	// this size).
	Samples int `json:"samples"`
	// Projections of the sliced Wasserstein distance.
	Projections int `json:"projections"`
	// LikelihoodPoints and LikelihoodSteps size the PF-ODE log-likelihood check.
	LikelihoodPoints int `json:"likelihood_points"`
	LikelihoodSteps  int `json:"likelihood_steps"`
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
	Preset               string
	Seed                 int64
	Components           int
	Sigma, Turns, Radius float64
	BetaMin, BetaMax     float64
	K                    int
	Steps, Batch         int
	LR                   float64
	Width, Layers        int
	Weighting            string
	LRSchedule           string
	Samples              int
	TimeSkew             float64
	Fourier              int     // Fourier feature pairs; < 0 disables them
	PlainNet             bool    // the exam's plain MLP: inputs [x1, x2, t], no Fourier features, no 1/sigma(t) output scaling
	FourierScale         float64 // standard deviation of the Fourier frequencies (0: the preset's)
	FourierDamping       string  // which scores damp their Fourier features with the noise level: "hyvarinen", "all" or "none" ("": the preset's)
	LikelihoodPoints     int
	Workers              int // data-parallel shards of each training batch (TrainConfig.Workers)
}

// Config returns the preset's configuration with the overrides applied, validated.
func (o Overrides) Config() (Config, error) {
	p, err := preset.Parse(o.Preset)
	if err != nil {
		return Config{}, err
	}
	c := Config{Preset: p, Seed: 1, Mixture: DefaultMixture(), Process: DefaultProcess(), K: 200, Net: DefaultNet(),
		Projections: 64, LikelihoodSteps: 100}
	c.Train = TrainConfig{Weighting: Sigma2, BatchSize: 128, LR: 5e-3, LRSchedule: lrschedule.Cosine, FinalLRFraction: 0.02, TMin: 1.0 / 200, TimeSkew: 3, Workers: 2}
	// The Hyvarinen score's own choices (paper: the exam's, as Train's below).
	c.HyvarinenWeighting, c.HyvarinenTimeSkew = preset.Pick(p, Uniform, Importance, Uniform), 1
	c.HyvarinenBatch = preset.Pick(p, 0, 512, 0)
	c.FourierDamping = preset.Pick(p, DampHyvarinen, DampHyvarinen, DampNone)
	c.Train.Steps = preset.Pick(p, 150, 6000, 8000)
	c.Train.ValEvery = preset.Pick(p, 50, 250, 250)
	c.Samples = preset.Pick(p, 500, 2000, 5000)
	c.LikelihoodPoints = preset.Pick(p, 50, 300, 1000)
	if p == preset.Paper { // the exam's training
		c.Train.Weighting, c.Train.LRSchedule, c.Train.TimeSkew = Uniform, lrschedule.Constant, 1
		c.Net = NetConfig{Width: 128, Layers: 3, Activation: c.Net.Activation, TimeInput: TimeT}
	}
	if o.Seed != 0 {
		c.Seed = o.Seed
	}
	preset.Override(&c.Mixture.Components, o.Components)
	preset.Override(&c.Mixture.Sigma, o.Sigma)
	preset.Override(&c.Mixture.Turns, o.Turns)
	preset.Override(&c.Mixture.Radius, o.Radius)
	preset.Override(&c.Process.BetaMin, o.BetaMin)
	preset.Override(&c.Process.BetaMax, o.BetaMax)
	preset.Override(&c.K, o.K)
	preset.Override(&c.Train.Steps, o.Steps)
	if o.Batch != 0 { // both scores
		c.Train.BatchSize, c.HyvarinenBatch = o.Batch, 0
	}
	preset.Override(&c.Train.LR, o.LR)
	preset.Override(&c.Net.Width, o.Width)
	preset.Override(&c.Net.Layers, o.Layers)
	preset.Override(&c.Samples, o.Samples)
	preset.Override(&c.LikelihoodPoints, o.LikelihoodPoints)
	preset.Override(&c.Train.Workers, o.Workers)
	if o.Weighting != "" {
		c.Train.Weighting, c.HyvarinenWeighting = Weighting(o.Weighting), Weighting(o.Weighting)
		if c.Train.Weighting == Importance { // it draws its own times
			c.Train.TimeSkew, c.HyvarinenTimeSkew = 1, 1
		}
	}
	if o.LRSchedule != "" {
		c.Train.LRSchedule = lrschedule.Kind(o.LRSchedule)
	}
	preset.Override(&c.Train.TimeSkew, o.TimeSkew)
	preset.Override(&c.HyvarinenTimeSkew, o.TimeSkew)
	if o.Fourier > 0 {
		c.Net.Fourier = o.Fourier
		if c.Net.FourierScale == 0 {
			c.Net.FourierScale = DefaultNet().FourierScale
		}
	} else if o.Fourier < 0 {
		c.Net.Fourier, c.Net.FourierScale = 0, 0
	}
	if o.FourierScale != 0 && c.Net.Fourier > 0 {
		c.Net.FourierScale = o.FourierScale
	}
	if o.FourierDamping != "" {
		c.FourierDamping = o.FourierDamping
	}
	if o.PlainNet {
		c.Net = NetConfig{Width: c.Net.Width, Layers: c.Net.Layers, Activation: c.Net.Activation, TimeInput: TimeT}
	}
	c.Train.TMin = 1 / float64(c.K)
	c.Train.Seed = c.Seed
	return c, c.Validate()
}

// Validate reports a configuration that cannot run, naming the problem.
func (c Config) Validate() error {
	if err := c.Mixture.Validate(); err != nil {
		return err
	}
	if err := c.Process.Validate(); err != nil {
		return err
	}
	if c.K < 1 {
		return fmt.Errorf("spiral: the number of steps K must be >= 1, got %d", c.K)
	}
	if err := c.Net.Validate(); err != nil {
		return err
	}
	switch c.FourierDamping {
	case DampHyvarinen, DampAll, DampNone:
	default:
		return fmt.Errorf("spiral: unknown Fourier damping %q (want %q, %q or %q)", c.FourierDamping, DampHyvarinen, DampAll, DampNone)
	}
	if c.HyvarinenBatch < 0 {
		return fmt.Errorf("spiral: the Hyvarinen batch size must be >= 1 (0: Train's), got %d", c.HyvarinenBatch)
	}
	for _, obj := range []Objective{Hyvarinen, DSM} {
		tc := c.TrainFor(obj)
		if err := tc.check(); err != nil {
			return err
		}
	}
	if c.Samples < 2 || c.Projections < 1 || c.LikelihoodPoints < 1 || c.LikelihoodSteps < 1 {
		return fmt.Errorf("spiral: need samples >= 2, projections, likelihood points and steps >= 1; got %d, %d, %d, %d",
			c.Samples, c.Projections, c.LikelihoodPoints, c.LikelihoodSteps)
	}
	return nil
}

// Values of Config.FourierDamping.
const (
	DampHyvarinen = "hyvarinen" // the Hyvarinen score only
	DampAll       = "all"       // every learned score
	DampNone      = "none"      // none (the features as Tancik et al.)
)

// NetFor returns the network configuration of the score of objective obj: Net, with
// FourierDamped set as FourierDamping says (only where the network has Fourier features).
func (c Config) NetFor(obj Objective) NetConfig {
	n := c.Net
	n.FourierDamped = n.Fourier > 0 && (c.FourierDamping == DampAll || (c.FourierDamping == DampHyvarinen && obj == Hyvarinen))
	return n
}

// TrainFor returns the training configuration of the score of objective obj.
func (c Config) TrainFor(obj Objective) TrainConfig {
	tc := c.Train
	tc.Objective = obj
	if obj == Hyvarinen {
		tc.Weighting, tc.TimeSkew = c.HyvarinenWeighting, c.HyvarinenTimeSkew
		if c.HyvarinenBatch > 0 {
			tc.BatchSize = c.HyvarinenBatch
		}
	}
	return tc
}

// Study is a configured run: the mixture, its exact score and the backend of the networks.
type Study struct {
	Config  Config
	Mixture *Mixture
	Exact   Exact
	Backend compute.Backend
}

// NewStudy builds the mixture and the exact score of cfg (backend may be nil when no network
// is trained or loaded).
func NewStudy(cfg Config, b compute.Backend) (*Study, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mix, err := NewMixture(cfg.Mixture)
	if err != nil {
		return nil, err
	}
	return &Study{Config: cfg, Mixture: mix, Exact: Exact{Mixture: mix, Process: cfg.Process}, Backend: b}, nil
}

// P0 returns n fresh samples of p0 drawn with the stream number stream of the study's seed.
func (s *Study) P0(n int, stream uint64) []float32 {
	return s.Mixture.Sample(n, rand.New(rand.NewPCG(uint64(s.Config.Seed), 0x90+stream)))
}

// Sample runs a sampler ("sde", "ode", "heun") of the model with the study's K and seed.
func (s *Study) Sample(m sampling.Model, sampler string, n int, seed int64, snapshots ...int) (*SampleRun, error) {
	return Sample(m, s.Config.Process, SampleOptions{N: n, K: s.Config.K, Sampler: sampler, Seed: seed, Snapshots: snapshots})
}

// Trained is what a checkpoint's history records about its training, compared by
// TrainOrLoad to decide whether the checkpoint can be reused.
type Trained struct {
	Mixture MixtureConfig `json:"mixture"`
	Process Process       `json:"process"`
	Net     NetConfig     `json:"net"`
	Train   TrainConfig   `json:"train"`
}

// TrainOrLoad returns the learned score of objective obj: loaded from dir when it holds a
// checkpoint trained with the same configuration (mixture, process, network, training),
// otherwise trained (progress called after every step), then saved to dir with its history.
// dir "" trains without saving. loaded reports which happened.
//
// The training into dir is resumable (trainstate): until it finishes, its state is kept in
// the workspace dir + ".training" (locked: a second process training into dir gets a
// *trainstate.LockedError), saved every Config.CheckpointEvery steps or
// Config.CheckpointInterval and at an interrupt (SIGINT, SIGTERM), which returns a
// *trainstate.InterruptedError; calling TrainOrLoad again resumes it.
func (s *Study) TrainOrLoad(obj Objective, dir string, progress func(step int, loss float64)) (n *Net, hist *History, loaded bool, err error) {
	defer savedmodel.RecoverError(&err, "spiral.TrainOrLoad")
	if s.Backend == nil {
		return nil, nil, false, fmt.Errorf("spiral.TrainOrLoad: the study has no backend")
	}
	tc := s.Config.TrainFor(obj)
	if err := tc.check(); err != nil {
		return nil, nil, false, err
	}
	net := s.Config.NetFor(obj)
	want := Trained{Mixture: s.Config.Mixture, Process: s.Config.Process, Net: net, Train: tc}
	if dir != "" && savedmodel.Exists(dir) {
		var rec struct {
			Trained Trained  `json:"trained"`
			History *History `json:"history"`
		}
		found, err := history.Load(dir, &rec)
		if err == nil && found && history.Same(rec.Trained, want) && rec.History != nil {
			n, err := Load(s.Backend, dir, &Meta{Net: net, Process: s.Config.Process})
			if err == nil {
				return n, rec.History, true, nil
			}
		}
	}
	n, err = NewNet(s.Backend, net, s.Config.Process, s.Config.Seed)
	if err != nil {
		return nil, nil, false, err
	}
	tc.Progress = progress
	ws, stop, err := Resumable(&tc, dir, s.Config.CheckpointEvery, s.Config.CheckpointInterval, "spiral: "+string(obj)+": ")
	if err != nil {
		return nil, nil, false, err
	}
	defer stop()
	hist, err = n.Train(s.Mixture, tc)
	if err != nil {
		return nil, hist, false, err
	}
	hist.Config.Progress, hist.Config.Resume = nil, trainstate.Options{}
	if dir != "" {
		if err := n.Save(dir); err != nil {
			return nil, nil, false, err
		}
		if err := history.Save(dir, struct {
			Trained Trained  `json:"trained"`
			History *History `json:"history"`
		}{want, hist}); err != nil {
			return nil, nil, false, err
		}
		if err := ws.Finish(); err != nil {
			return nil, nil, false, err
		}
	}
	return n, hist, false, nil
}

// Resumable makes the training of tc into the checkpoint directory dir resumable: it locks
// the workspace dir + ".training" (trainstate.Open), sets tc.Resume to save the state there
// (every steps, if > 0, or interval) and to stop at an interrupt (SIGINT, SIGTERM), with the
// notes on standard error prefixed by prefix. The caller calls stop when training ends
// (it releases the lock, keeping the workspace) and ws.Finish once the finished model is
// saved into dir. With dir "" it does nothing (ws nil).
func Resumable(tc *TrainConfig, dir string, every int, interval time.Duration, prefix string) (ws *trainstate.Workspace, stop func(), err error) {
	if dir == "" {
		return nil, func() {}, nil
	}
	if ws, err = trainstate.Open(dir); err != nil {
		return nil, nil, err
	}
	ctx, cancel := trainstate.WithInterrupt(context.Background())
	tc.Resume = trainstate.Options{Dir: ws.StateDir(), Every: every, Interval: interval, Context: ctx,
		Logf: func(format string, args ...any) { fmt.Fprintf(os.Stderr, prefix+format+"\n", args...) }}
	return ws, func() { cancel(); _ = ws.Close() }, nil
}

// Row is one line of the evaluation table: a sample set against a fresh p0 reference set.
type Row struct {
	Name       string
	N          int
	SW         float64 // sliced Wasserstein distance to the reference set
	Energy     float64 // energy distance to the reference set
	MeanLogP0  float64 // mean log p0 of the samples (exact, from the mixture)
	Duration   time.Duration
	IsFloor    bool
	Target     string // the target for this row ("" for none)
	TargetMet  bool
	RatioFloor float64 // SW / floor SW
	DeltaLogP0 float64 // MeanLogP0 - floor's
}

// Table is the notebook's evaluation table.
type Table struct {
	Rows []Row
}

// Evaluate scores sample sets (name -> points) against a reference p0 set, with the floor
// (a second, independent p0 set of the same size) first. Targets: "exact" rows within 1.5x
// the floor's distance and 0.05 nats of its mean log p0; "learned" rows within 3x and 0.2.
func (s *Study) Evaluate(sets []NamedSet) (*Table, error) {
	n := s.Config.Samples
	ref := s.P0(n, 1)
	floorSet := s.P0(n, 2)
	score := func(name string, pts []float32, d time.Duration) (Row, error) {
		sw, err := metrics.SlicedWasserstein(ref, pts, Dim, s.Config.Projections, uint64(s.Config.Seed))
		if err != nil {
			return Row{}, fmt.Errorf("spiral: %s: %w", name, err)
		}
		ed, err := metrics.EnergyDistance(ref, pts, Dim)
		if err != nil {
			return Row{}, fmt.Errorf("spiral: %s: %w", name, err)
		}
		lp, err := s.Mixture.MeanLogP0(pts)
		if err != nil {
			return Row{}, fmt.Errorf("spiral: %s: %w", name, err)
		}
		return Row{Name: name, N: len(pts) / Dim, SW: sw, Energy: ed, MeanLogP0: lp, Duration: d}, nil
	}
	floor, err := score("fresh p0 (floor)", floorSet, 0)
	if err != nil {
		return nil, err
	}
	floor.IsFloor, floor.RatioFloor = true, 1
	t := &Table{Rows: []Row{floor}}
	for _, set := range sets {
		r, err := score(set.Name, set.Points, set.Duration)
		if err != nil {
			return nil, err
		}
		r.RatioFloor, r.DeltaLogP0 = r.SW/floor.SW, r.MeanLogP0-floor.MeanLogP0
		switch set.Target {
		case ExactTarget:
			r.Target, r.TargetMet = "<= 1.5x, 0.05 nats", r.RatioFloor <= 1.5 && math.Abs(r.DeltaLogP0) <= 0.05
		case LearnedTarget:
			r.Target, r.TargetMet = "<= 3x, 0.2 nats", r.RatioFloor <= 3 && math.Abs(r.DeltaLogP0) <= 0.2
		}
		t.Rows = append(t.Rows, r)
	}
	return t, nil
}

// Targets of NamedSet.
const (
	ExactTarget   = "exact"
	LearnedTarget = "learned"
)

// NamedSet is a sample set to evaluate.
type NamedSet struct {
	Name     string
	Points   []float32
	Duration time.Duration
	Target   string // ExactTarget, LearnedTarget or ""
}

// Markdown formats the table.
func (t *Table) Markdown() string {
	var b strings.Builder
	b.WriteString("| samples | n | sliced W2 | / floor | energy dist. | mean log p0 | - floor (nats) | time | target | met |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, r := range t.Rows {
		met := ""
		if r.Target != "" {
			met = map[bool]string{true: "yes", false: "**no**"}[r.TargetMet]
		}
		dur := "-"
		if r.Duration > 0 {
			dur = r.Duration.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "| %s | %d | %.4f | %.2f | %.4f | %.3f | %+.3f | %s | %s | %s |\n",
			r.Name, r.N, r.SW, r.RatioFloor, r.Energy, r.MeanLogP0, r.DeltaLogP0, dur, r.Target, met)
	}
	return b.String()
}

// LikelihoodCheck compares the PF-ODE log-likelihood of a score model with the exact log p0.
type LikelihoodCheck struct {
	Name               string
	N                  int
	MeanODE, MeanExact float64 // mean log-likelihood by the PF-ODE, and the exact mean log p0
	MaxAbsDiff         float64
	MeanAbsDiff        float64
	Duration           time.Duration
}

// CheckLikelihood integrates the PF-ODE of m for LikelihoodPoints fresh p0 points.
func (s *Study) CheckLikelihood(name string, m ScoreModel) (LikelihoodCheck, error) {
	x := s.P0(s.Config.LikelihoodPoints, 3)
	start := time.Now()
	got, err := LogLikelihood(m, s.Config.Process, x, LikelihoodOptions{Steps: s.Config.LikelihoodSteps})
	if err != nil {
		return LikelihoodCheck{}, err
	}
	want, err := s.Mixture.At(1, 0).LogDensity(x)
	if err != nil {
		return LikelihoodCheck{}, err
	}
	c := LikelihoodCheck{Name: name, N: len(got), Duration: time.Since(start)}
	for i := range got {
		d := math.Abs(got[i] - want[i])
		c.MeanODE += got[i] / float64(len(got))
		c.MeanExact += want[i] / float64(len(got))
		c.MeanAbsDiff += d / float64(len(got))
		c.MaxAbsDiff = math.Max(c.MaxAbsDiff, d)
	}
	return c, nil
}

// LikelihoodMarkdown formats likelihood checks as a table.
func LikelihoodMarkdown(checks ...LikelihoodCheck) string {
	var b strings.Builder
	b.WriteString("| score | points | mean log-lik. (PF-ODE) | mean log p0 (exact) | mean abs. diff. | max abs. diff. | time |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range checks {
		fmt.Fprintf(&b, "| %s | %d | %.4f | %.4f | %.4f | %.4f | %s |\n", c.Name, c.N, c.MeanODE, c.MeanExact, c.MeanAbsDiff, c.MaxAbsDiff, c.Duration.Round(time.Millisecond))
	}
	return b.String()
}

// Models are the learned scores of the comparison (either may be nil).
type Models struct {
	Hyvarinen, DSM *Net
}

// StandardSets draws the sample sets of the notebook's table, Samples each with seeds from
// the study's: the exact score with the reverse SDE, the PF-ODE by Euler and by Heun, the
// SDE without the score, and every learned score with the SDE and the PF-ODE (Heun).
func (s *Study) StandardSets(m Models) ([]NamedSet, error) {
	n, seed := s.Config.Samples, s.Config.Seed+100
	type job struct {
		name    string
		model   sampling.Model
		sampler string
		target  string
	}
	jobs := []job{
		{"exact score, reverse SDE", s.Exact, SDE, ExactTarget},
		{"exact score, PF-ODE (Euler)", s.Exact, ODE, ExactTarget},
		{"exact score, PF-ODE (Heun)", s.Exact, Heun, ExactTarget},
		{"no score (noise only), SDE", NoScore{}, SDE, ""},
	}
	if m.Hyvarinen != nil {
		jobs = append(jobs, job{"Hyvarinen score, reverse SDE", m.Hyvarinen, SDE, LearnedTarget}, job{"Hyvarinen score, PF-ODE (Heun)", m.Hyvarinen, Heun, ""})
	}
	if m.DSM != nil {
		jobs = append(jobs, job{"DSM score, reverse SDE", m.DSM, SDE, LearnedTarget}, job{"DSM score, PF-ODE (Heun)", m.DSM, Heun, ""})
	}
	var out []NamedSet
	for _, j := range jobs {
		run, err := s.Sample(j.model, j.sampler, n, seed)
		if err != nil {
			return nil, fmt.Errorf("spiral: %s: %w", j.name, err)
		}
		out = append(out, NamedSet{Name: j.name, Points: run.Points, Duration: run.Duration, Target: j.target})
	}
	return out, nil
}

// Summary describes the configuration in a few lines of Markdown.
func (c Config) Summary() string {
	return fmt.Sprintf("preset `%s`, seed %d. **p0**: M = %d components of sigma = %g on %g turns of a spiral out to radius %g. "+
		"**Forward process**: VP, beta(t) = %g + t (%g - %g), K = %d steps (t_k = k/K). **Score net**: %d x %d %s on [x1, x2, %s] + %d Fourier pairs (damped by the noise level: %s), output / sigma(t): %v. "+
		"**Training**: %d steps, batch %d, Adam %g (%s schedule); DSM: weighting %s, time skew %g; Hyvarinen: weighting %s, time skew %g, batch %d. **Evaluation**: %d samples per set.",
		c.Preset, c.Seed, c.Mixture.Components, c.Mixture.Sigma, c.Mixture.Turns, c.Mixture.Radius,
		c.Process.BetaMin, c.Process.BetaMax, c.Process.BetaMin, c.K, c.Net.Layers, c.Net.Width, c.Net.Activation, c.Net.TimeInput, c.Net.Fourier, c.FourierDamping, c.Net.ScaleBySigma,
		c.Train.Steps, c.Train.BatchSize, c.Train.LR, orConstant(c.Train.LRSchedule), c.Train.Weighting, max(1, c.Train.TimeSkew), c.HyvarinenWeighting, max(1, c.HyvarinenTimeSkew), c.TrainFor(Hyvarinen).BatchSize, c.Samples)
}

func orConstant(k lrschedule.Kind) lrschedule.Kind {
	if k == "" {
		return lrschedule.Constant
	}
	return k
}

// LossSummary describes a training run in one line: its final validation Hyvarinen loss
// against the exact score's (the minimum), and its speed.
func LossSummary(h *History) string {
	if h == nil || len(h.ValHyvarinen) == 0 {
		return "no history"
	}
	last := len(h.ValHyvarinen) - 1
	return fmt.Sprintf("%s, %d steps (%s, %.0f steps/s): final validation Hyvarinen loss %.3f (exact score %.3f), DSM loss %.3f (exact %.3f)",
		h.Config.Objective, len(h.TrainLoss), h.Duration.Round(time.Second), float64(len(h.TrainLoss))/h.Duration.Seconds(),
		h.ValHyvarinen[last], h.ExactHyvarinen, h.ValDSM[last], h.ExactDSM)
}

// Command spiral runs the tasks of notebook 06 (final exam, Exercise 3, parts 1-2: score
// matching on a 2-D spiral mixture) without Jupyter, with the notebook's flags, printing its
// tables and writing its figures as PNG files:
//
//	go run ./diffusion/cmd/spiral -preset cpu all
//	go run ./diffusion/cmd/spiral -sigma 0.15 -components 32 exact
//	go run ./diffusion/cmd/spiral -steps 8000 -weighting none train
//
// Tasks: exact (forward diffusion, exact score fields, reverse SDE snapshots, two runs, the
// run without the score, PF-ODE likelihood check), train (Hyvarinen and DSM scores, loss
// curves; reuses checkpoints), compare (learned vs exact fields and samples, the table),
// all (the default). Figures go to -out (default outputs/spiral); checkpoints to
// outputs/checkpoints/spiral_{hyvarinen,dsm}.
//
// A bad command line (an unknown task, flag or preset, a negative count, ...) exits with
// status 2 and a one-line message naming the flag, before anything is written. Training is
// resumable: Ctrl-C saves its state and exits with status 130; the same command resumes it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/godebug"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/taskcli"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/spiral"
)

var tasks = []string{"exact", "train", "compare"}

func main() {
	if err := godebug.Ensure(); err != nil {
		fmt.Fprintln(os.Stderr, "spiral: warning:", err)
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "spiral:", err)
		os.Exit(cliusage.ExitCode(err)) // 2: bad command line; 130: interrupted, the state is saved
	}
}

// options are the notebook's flags.
type options struct {
	o          spiral.Overrides
	out, ckp   string
	checkEvery int
}

func parse(args []string) (*options, []string, error) {
	fs := flag.NewFlagSet("spiral", flag.ContinueOnError)
	o := &options{}
	fs.StringVar(&o.o.Preset, "preset", preset.Default(), "size of the run: smoke, cpu or paper")
	fs.Int64Var(&o.o.Seed, "seed", 0, "random seed (0: 1)")
	fs.IntVar(&o.o.Components, "components", 0, "mixture components M (0: 24)")
	fs.Float64Var(&o.o.Sigma, "sigma", 0, "standard deviation of each component (0: 0.1)")
	fs.Float64Var(&o.o.Turns, "turns", 0, "turns of the spiral (0: 1.75)")
	fs.Float64Var(&o.o.Radius, "radius", 0, "radius of the spiral's outer end (0: 2)")
	fs.Float64Var(&o.o.BetaMin, "beta_min", 0, "beta(0) of the VP schedule (0: 0.1)")
	fs.Float64Var(&o.o.BetaMax, "beta_max", 0, "beta(1) of the VP schedule (0: 20)")
	fs.IntVar(&o.o.K, "k", 0, "reverse steps K (0: 200)")
	fs.IntVar(&o.o.Steps, "steps", 0, "training steps (0: the preset's)")
	fs.IntVar(&o.o.Batch, "batch", 0, "batch size of both scores (0: 128, and 512 for the Hyvarinen score at cpu)")
	fs.Float64Var(&o.o.LR, "lr", 0, "Adam learning rate (0: 5e-3)")
	fs.StringVar(&o.o.LRSchedule, "lr_schedule", "", "constant, cosine or exponential (empty: the preset's)")
	fs.StringVar(&o.o.Weighting, "weighting", "", "loss weight of each t: none (the exam), sigma, sigma2, or importance (the exam's loss, t drawn log-uniformly and reweighted; time skew 1) (empty: the preset's)")
	fs.Float64Var(&o.o.TimeSkew, "time_skew", 0, "training times t = t_min + (1 - t_min) u^skew (1: uniform; 0: the preset's)")
	fs.IntVar(&o.o.Width, "width", 0, "hidden units per layer (0: 128)")
	fs.IntVar(&o.o.Layers, "layers", 0, "hidden layers (0: 3)")
	fs.IntVar(&o.o.Fourier, "fourier", 0, "Fourier feature pairs of x (0: the preset's, < 0: none)")
	fs.BoolVar(&o.o.PlainNet, "plain_net", false, "the exam's plain MLP on [x1, x2, t] (no Fourier features, no 1/sigma(t) output)")
	fs.Float64Var(&o.o.FourierScale, "fourier_scale", 0, "standard deviation of the Fourier feature frequencies (0: 4)")
	fs.StringVar(&o.o.FourierDamping, "fourier_damping", "", "which scores damp their Fourier features by the noise level: hyvarinen, all or none (empty: the preset's)")
	fs.IntVar(&o.o.Samples, "samples", 0, "samples per evaluated set (0: the preset's)")
	fs.IntVar(&o.o.LikelihoodPoints, "likelihood_points", 0, "points of the PF-ODE likelihood check (0: the preset's)")
	fs.IntVar(&o.o.Workers, "workers", 0, "data-parallel shards of each training batch (0: 2, both cores)")
	fs.StringVar(&o.out, "out", "", "directory for the figures (default: outputs/spiral)")
	fs.StringVar(&o.ckp, "checkpoints", "", "directory of the checkpoints (default: outputs/checkpoints)")
	fs.IntVar(&o.checkEvery, "checkpoint_every", 0, "also save the resumable training state every this many steps (0: every minute)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: spiral [flags] [task...]  tasks: %v or all (default)\n", tasks)
		fs.PrintDefaults()
	}
	if err := cliusage.Parse(fs, args); err != nil {
		return nil, nil, err
	}
	return o, fs.Args(), nil
}

// check reports the first bad flag value as a usage error naming the flag and the accepted
// values (0 keeps the preset's value of every count and number).
func (o *options) check() error {
	v := o.o
	if _, err := preset.Parse(v.Preset); err != nil {
		return cliusage.Errorf("-preset: %v", err)
	}
	if err := cliusage.PresetCounts(cliusage.Int{Name: "components", V: v.Components}, cliusage.Int{Name: "k", V: v.K}, cliusage.Int{Name: "steps", V: v.Steps},
		cliusage.Int{Name: "batch", V: v.Batch}, cliusage.Int{Name: "width", V: v.Width}, cliusage.Int{Name: "layers", V: v.Layers}, cliusage.Int{Name: "samples", V: v.Samples},
		cliusage.Int{Name: "likelihood_points", V: v.LikelihoodPoints}, cliusage.Int{Name: "checkpoint_every", V: o.checkEvery}, cliusage.Int{Name: "workers", V: v.Workers}); err != nil {
		return err
	}
	if err := cliusage.PresetNumbers(cliusage.Float{Name: "sigma", V: v.Sigma}, cliusage.Float{Name: "turns", V: v.Turns}, cliusage.Float{Name: "radius", V: v.Radius},
		cliusage.Float{Name: "beta_min", V: v.BetaMin}, cliusage.Float{Name: "beta_max", V: v.BetaMax}, cliusage.Float{Name: "lr", V: v.LR}, cliusage.Float{Name: "time_skew", V: v.TimeSkew}); err != nil {
		return err
	}
	if v.TimeSkew != 0 && v.TimeSkew < 1 {
		return cliusage.Errorf("-time_skew must be >= 1 (1: uniform; 0: the preset's), got %g", v.TimeSkew)
	}
	switch spiral.Weighting(v.Weighting) {
	case "", spiral.Uniform, spiral.Sigma, spiral.Sigma2, spiral.Importance:
	default:
		return cliusage.Errorf("-weighting %q: want %s, %s, %s or %s", v.Weighting, spiral.Uniform, spiral.Sigma, spiral.Sigma2, spiral.Importance)
	}
	if err := lrschedule.Kind(v.LRSchedule).Valid(); err != nil {
		return cliusage.Errorf("-lr_schedule %q: %v", v.LRSchedule, err)
	}
	return nil
}

func run(args []string, w io.Writer) error {
	o, todo, err := parse(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	cfg, err := o.o.Config()
	if err != nil {
		return cliusage.Wrap(err) // every value comes from a flag
	}
	cfg.CheckpointEvery = o.checkEvery
	if todo, err = taskcli.Select(todo, tasks); err != nil {
		return cliusage.Wrap(err)
	}
	out, err := taskcli.OutDir(o.out, "spiral")
	if err != nil {
		return err
	}
	checkpoint := func(name string) (string, error) { return taskcli.CheckpointDir(o.ckp, name) }
	b, err := backend.New()
	if err != nil {
		return err
	}
	study, err := spiral.NewStudy(cfg, b)
	if err != nil {
		return err
	}
	save := taskcli.Figures{Dir: out, W: w}.Named
	fmt.Fprintln(w, cfg.Summary())
	for _, t := range todo {
		fmt.Fprintf(w, "\n## %s\n\n", t)
		var err error
		switch t {
		case "exact":
			err = exact(study, w, save)
		case "train", "compare":
			err = learned(study, w, save, checkpoint, t == "compare")
		}
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	}
	return nil
}

type saver func(name string) func([]byte, error) error

func exact(s *spiral.Study, w io.Writer, save saver) error {
	K := s.Config.K
	ks := spiral.SnapshotSteps(K)
	if err := save("forward")(s.ForwardFigure(ks, 1000)); err != nil {
		return err
	}
	if err := save("exact_score")(spiral.QuiverFigure("Exact score fields", []spiral.Field{{Name: "exact", Model: s.Exact}}, spiral.FieldTimes, 21)); err != nil {
		return err
	}
	r1, err := s.Sample(s.Exact, spiral.SDE, 1000, s.Config.Seed, ks...)
	if err != nil {
		return err
	}
	r2, err := s.Sample(s.Exact, spiral.SDE, 1000, s.Config.Seed+1, ks...)
	if err != nil {
		return err
	}
	if err := save("sde_snapshots")(spiral.SnapshotsFigure("Reverse SDE with the exact score", r1, ks)); err != nil {
		return err
	}
	if err := save("two_runs")(spiral.SetsFigure("Two runs of the reverse SDE (different seeds)", []string{"run 1", "run 2"}, [][]float32{r1.Points, r2.Points})); err != nil {
		return err
	}
	r0, err := s.Sample(spiral.NoScore{}, spiral.SDE, 1000, s.Config.Seed, ks...)
	if err != nil {
		return err
	}
	if err := save("no_score")(spiral.SnapshotsFigure("Reverse SDE without the score term", r0, ks)); err != nil {
		return err
	}
	c, err := s.CheckLikelihood("exact", s.Exact)
	if err != nil {
		return err
	}
	fmt.Fprint(w, spiral.LikelihoodMarkdown(c))
	return nil
}

func learned(s *spiral.Study, w io.Writer, save saver, checkpoint func(string) (string, error), compare bool) error {
	var models spiral.Models
	var names []string
	var hists []*spiral.History
	for _, obj := range []spiral.Objective{spiral.Hyvarinen, spiral.DSM} {
		dir, err := checkpoint("spiral_" + string(obj))
		if err != nil {
			return err
		}
		n, h, loaded, err := s.TrainOrLoad(obj, dir, nil)
		if err != nil {
			return fmt.Errorf("%s score: %w", obj, err)
		}
		fmt.Fprintf(w, "%s: %s; %s\n", obj, map[bool]string{true: "loaded " + dir, false: "trained, saved to " + dir}[loaded], spiral.LossSummary(h))
		names, hists = append(names, string(obj)), append(hists, h)
		if obj == spiral.Hyvarinen {
			models.Hyvarinen = n
		} else {
			models.DSM = n
		}
	}
	if !compare {
		if err := save("val_loss")(spiral.LossFigure(names, hists)); err != nil {
			return err
		}
		return save("train_loss")(spiral.TrainLossFigure(names, hists, 100))
	}
	fields := []spiral.Field{{Name: "exact", Model: s.Exact}, {Name: "Hyvarinen", Model: models.Hyvarinen}, {Name: "DSM", Model: models.DSM}}
	if err := save("fields")(spiral.QuiverFigure("Learned vs exact score fields", fields, spiral.FieldTimes, 21)); err != nil {
		return err
	}
	sets, err := s.StandardSets(models)
	if err != nil {
		return err
	}
	table, err := s.Evaluate(sets)
	if err != nil {
		return err
	}
	fmt.Fprint(w, table.Markdown())
	if err := save("samples")(spiral.SamplesFigure(sets)); err != nil {
		return err
	}
	var checks []spiral.LikelihoodCheck
	for _, f := range []struct {
		name string
		m    spiral.ScoreModel
	}{{"exact", s.Exact}, {"Hyvarinen", models.Hyvarinen}, {"DSM", models.DSM}} {
		c, err := s.CheckLikelihood(f.name, f.m)
		if err != nil {
			return err
		}
		checks = append(checks, c)
	}
	fmt.Fprint(w, "\n", spiral.LikelihoodMarkdown(checks...))
	return nil
}

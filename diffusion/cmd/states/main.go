// Command states runs the STATES assignment without Jupyter, with the same flags as the
// notebooks 01 and 02:
//
//	go run ./diffusion/cmd/states train     # denoiser -> outputs/checkpoints/denoiser
//	go run ./diffusion/cmd/states classify  # classifier -> outputs/checkpoints/classifier
//	go run ./diffusion/cmd/states sample    # 5000 DDPM samples -> outputs/uncond_gen_samples.{npy,pt}
//	go run ./diffusion/cmd/states guide     # 5 x 5000 guided -> outputs/cond_gen_samples_{0..4}.{npy,pt}
//	go run ./diffusion/cmd/states score     # NLL and the other scores of the saved samples
//	go run ./diffusion/cmd/states all       # all of the above, timed
//
// Figures (loss curves, samples) are written next to the samples as PNG.
//
// The deliverable samples come from the preset's samplers (statesrun.Config.Sampler and
// Guided; at cpu the unconditional ones are autoguided by the training's step-3000 checkpoint,
// w 2); -plain-sampler draws them with the assignment's samplers, and -sampler,
// -autoguide-weak, -autoguide-w and -autoguide-interval choose others:
//
//	go run ./diffusion/cmd/states sample -plain-sampler                  # ancestral, beta, 500 steps
//	go run ./diffusion/cmd/states sample -autoguide-w 1.5 -autoguide-interval 0,199
//	go run ./diffusion/cmd/states guide -autoguide-weak 3000 -autoguide-w 2 -ddim 250
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/godiffusion/notebooks/diffusion/atomicfile"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/godebug"
	"github.com/godiffusion/notebooks/diffusion/sampling"

	"github.com/gomlx/compute"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/ddpm"
	"github.com/godiffusion/notebooks/diffusion/metrics"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/progress"
	"github.com/godiffusion/notebooks/diffusion/statesrun"
	"github.com/godiffusion/notebooks/diffusion/tensorfile"
	"github.com/godiffusion/notebooks/diffusion/workdir"
)

type options struct {
	preset, data, out string
	seed              int64
	steps, batch      int
	lr                float64
	timeSkew          float64
	csteps, cbatch    int
	clr               float64
	samples, ddim     int
	workers           int
	scale             float64
	sampler           statesrun.SamplerFlags // -sampler, -autoguide-*, -plain-sampler
}

func main() {
	if err := godebug.Ensure(); err != nil {
		fmt.Fprintln(os.Stderr, "states: warning:", err)
	}
	cmd, o, err := parse(os.Args[1:])
	if err == nil {
		err = run(cmd, o)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "states:", err)
		os.Exit(cliusage.ExitCode(err)) // 2: bad command line; 130: interrupted, the state is saved
	}
}

// commands are the states subcommands, in the order "all" runs them.
var commands = []string{"train", "classify", "sample", "guide", "score"}

// parse reads the command and its flags; a bad command line is a cliusage.Error naming the
// flag and the accepted values.
func parse(args []string) (string, options, error) {
	var o options
	if len(args) < 1 || args[0] == "-h" || args[0] == "--help" {
		usage()
		return "", o, flag.ErrHelp
	}
	cmd := args[0]
	if cmd != "all" && !slices.Contains(commands, cmd) {
		return "", o, cliusage.Errorf("unknown command %q: want one of %s or all", cmd, strings.Join(commands, ", "))
	}
	fs := flag.NewFlagSet("states "+cmd, flag.ContinueOnError)
	fs.StringVar(&o.preset, "preset", preset.Default(), "size of the run: smoke, cpu or paper")
	fs.StringVar(&o.data, "data", "builtin", `"builtin" or the path of the course's states.pt`)
	fs.StringVar(&o.out, "out", "", "output directory (default: outputs/ of the checkout, or $DIFFUSION_OUTPUTS)")
	fs.Int64Var(&o.seed, "seed", 1, "random seed")
	fs.IntVar(&o.steps, "steps", 0, "denoiser training steps (0: the preset's)")
	fs.IntVar(&o.batch, "batch", 0, "denoiser batch size (0: the preset's)")
	fs.Float64Var(&o.lr, "lr", 0, "denoiser learning rate (0: the preset's)")
	fs.Float64Var(&o.timeSkew, "time-skew", 0, "denoiser time steps drawn as T*u^skew, more small t (1: uniform, the assignment; 0: the preset's)")
	fs.IntVar(&o.csteps, "csteps", 0, "classifier training steps (0: the preset's)")
	fs.IntVar(&o.cbatch, "cbatch", 0, "classifier batch size (0: the preset's)")
	fs.Float64Var(&o.clr, "clr", 0, "classifier learning rate (0: the preset's)")
	fs.IntVar(&o.samples, "samples", 0, "samples per set (0: the preset's, 5000 at cpu)")
	fs.IntVar(&o.ddim, "ddim", 0, "guided sampling steps (0: all T steps, the assignment's sampler)")
	fs.Float64Var(&o.scale, "scale", 1, "classifier guidance scale")
	fs.StringVar(&o.sampler.Sampler, "sampler", "", "sample: the unconditional sampler, one of "+strings.Join(sampling.SamplerNames(), ", ")+" (ddpm: ancestral with beta, the assignment's; \"\": the preset's)")
	fs.IntVar(&o.sampler.Weak, "autoguide-weak", 0, "sample, guide: guide the denoiser with its checkpoint after this training step (autoguidance; one of the preset's WeakSteps; 0: the preset's)")
	fs.Float64Var(&o.sampler.W, "autoguide-w", 0, "sample, guide: autoguidance scale w (1: no autoguidance; 0: the preset's)")
	fs.StringVar(&o.sampler.Interval, "autoguide-interval", "", `sample, guide: autoguide only the steps k in "lo,hi" (0-based, 0 = least noise; "all": every step; "": the preset's)`)
	fs.StringVar(&o.sampler.GuidanceInterval, "guidance-interval", "", `guide: classifier guidance only at the steps k in "lo,hi" (0-based, 0 = least noise; "all": every step, the assignment's; "": the preset's)`)
	fs.BoolVar(&o.sampler.Plain, "plain-sampler", false, "sample, guide: the assignment's samplers (ancestral with beta, 500 steps; guided: the deterministic update), no autoguidance")
	fs.IntVar(&o.workers, "workers", 0, "concurrent workers for training and sampling (0: the preset's; 2 uses both cores)")
	if err := cliusage.Parse(fs, args[1:]); err != nil {
		return "", o, err
	}
	if fs.NArg() > 0 {
		return "", o, cliusage.Errorf("unexpected argument %q after the flags of %s", fs.Arg(0), cmd)
	}
	if _, err := preset.Parse(o.preset); err != nil {
		return "", o, cliusage.Errorf("-preset: %w", err)
	}
	for _, c := range []struct {
		name string
		v    int
	}{{"steps", o.steps}, {"batch", o.batch}, {"csteps", o.csteps}, {"cbatch", o.cbatch}, {"samples", o.samples},
		{"ddim", o.ddim}, {"autoguide-weak", o.sampler.Weak}, {"workers", o.workers}} {
		if c.v < 0 {
			return "", o, cliusage.Errorf("-%s must be >= 0 (0: the preset's), got %d", c.name, c.v)
		}
	}
	for _, c := range []struct {
		name string
		v    float64
	}{{"lr", o.lr}, {"clr", o.clr}, {"scale", o.scale}, {"autoguide-w", o.sampler.W}} {
		if err := cliusage.NonNegative(c.name, c.v); err != nil {
			return "", o, err
		}
	}
	if o.sampler.Sampler != "" {
		if _, err := sampling.SamplerByName(o.sampler.Sampler, 0); err != nil {
			return "", o, cliusage.Errorf("-sampler: %w", err)
		}
	}
	if _, err := statesrun.ParseInterval(o.sampler.Interval); err != nil {
		return "", o, cliusage.Errorf("-autoguide-interval: %w", err)
	}
	if _, err := statesrun.ParseInterval(o.sampler.GuidanceInterval); err != nil {
		return "", o, cliusage.Errorf("-guidance-interval: %w", err)
	}
	if o.timeSkew != 0 && !(o.timeSkew >= 1 && o.timeSkew < 1e300) {
		return "", o, cliusage.Errorf("-time-skew must be 0 (the preset's) or a finite exponent >= 1, got %v", o.timeSkew)
	}
	return cmd, o, nil
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: states train|classify|sample|guide|score|all [flags]   (states CMD -h lists the flags)")
}

type env struct {
	b    compute.Backend
	cfg  statesrun.Config
	data *statesrun.Data
	out  string
}

func run(cmd string, o options) error {
	if o.out != "" {
		if err := os.Setenv(workdir.EnvVar, o.out); err != nil {
			return err
		}
	}
	p, err := preset.Parse(o.preset)
	if err != nil {
		return cliusage.Errorf("-preset: %w", err)
	}
	cfg, err := statesrun.PresetConfig(p)
	if err != nil {
		return err
	}
	cfg.Data, cfg.Seed = o.data, o.seed
	if err := cfg.Apply(statesrun.Overrides{Steps: o.steps, Batch: o.batch, LR: o.lr, TimeSkew: o.timeSkew,
		CSteps: o.csteps, CBatch: o.cbatch, CLR: o.clr, Samples: o.samples, Workers: o.workers}); err != nil {
		return cliusage.Wrap(err)
	}
	if o.ddim > 0 {
		cfg.Guided.Steps = o.ddim
	}
	cfg.Guided.Scale = o.scale
	if err := cfg.ApplySamplers(o.sampler); err != nil {
		return cliusage.Wrap(err)
	}
	data, err := statesrun.LoadData(cfg.Data, cfg.ValFraction, cfg.Seed)
	if err != nil {
		return cliusage.Errorf("-data %q (\"builtin\" or a states.pt of points and labels): %w", cfg.Data, err)
	}
	if err := batchFits(o, cfg.Data, data); err != nil {
		return err
	}
	b, err := backend.New()
	if err != nil {
		return err
	}
	out, err := workdir.Outputs()
	if err != nil {
		return err
	}
	e := &env{b: b, cfg: cfg, data: data, out: out}
	fmt.Printf("preset %s, data %s (%d points), backend %s, outputs %s\n", p, cfg.Data, data.All.Len(), backend.Describe(b), out)
	steps := map[string]func(*env, options) error{"train": train, "classify": classify, "sample": sample, "guide": guide, "score": score}
	if cmd == "all" {
		start := time.Now()
		for _, name := range commands {
			t0 := time.Now()
			if err := steps[name](e, o); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fmt.Printf("== %s took %s\n", name, time.Since(t0).Round(100*time.Millisecond))
		}
		fmt.Printf("== whole pipeline took %s\n", time.Since(start).Round(100*time.Millisecond))
		return nil
	}
	step, ok := steps[cmd]
	if !ok {
		return cliusage.Errorf("unknown command %q: want one of %s or all", cmd, strings.Join(commands, ", "))
	}
	return step(e, o)
}

// batchFits returns a usage error when a batch size given by a flag is larger than the
// training points (the presets' sizes are what the assignment asks for and are drawn with
// replacement).
func batchFits(o options, name string, data *statesrun.Data) error {
	n := len(data.Train) / 2
	for _, c := range []struct {
		name string
		v    int
	}{{"batch", o.batch}, {"cbatch", o.cbatch}} {
		if c.v > n {
			return cliusage.Errorf("-%s %d is larger than the %d training points of -data %s: want 1 to %d (0: the preset's)", c.name, c.v, n, name, n)
		}
	}
	return nil
}

func ckpt(name string) (string, error) { return workdir.Checkpoint(name) }

func writePNG(e *env, name string, png []byte, err error) error {
	if err != nil {
		return err
	}
	path := filepath.Join(e.out, "figures", name+".png")
	if err := atomicfile.Write(path, png); err != nil {
		return err
	}
	fmt.Println("wrote", path)
	return nil
}

func train(e *env, _ options) error {
	dir, err := ckpt("denoiser")
	if err != nil {
		return err
	}
	tc := e.cfg.Model.DenoiserTrain
	fmt.Printf("denoiser: %d steps, batch %d, lr %g, time skew %g\n", tc.Steps, tc.BatchSize, tc.LR, max(1, tc.TimeSkew))
	bar := progress.New("denoiser", tc.Steps)
	_, hist, err := statesrun.TrainDenoiser(e.b, e.data, e.cfg, dir, func(step int, loss float64) { bar.Update(step, fmt.Sprintf("loss %.4f", loss)) })
	if err != nil {
		return err
	}
	bar.Done(fmt.Sprintf("%.1f steps/s", float64(tc.Steps)/bar.Elapsed().Seconds()))
	for _, p := range hist.Probes {
		fmt.Printf("  step %6d  probe NLL %.4f\n", p.Step, p.NLL)
	}
	png, err := statesrun.LossFigure(hist, "Denoiser loss")
	return writePNG(e, "denoiser_loss", png, err)
}

func classify(e *env, _ options) error {
	dir, err := ckpt("classifier")
	if err != nil {
		return err
	}
	tc := e.cfg.Model.ClassifierTrain
	fmt.Printf("classifier: %d steps, batch %d, lr %g\n", tc.Steps, tc.BatchSize, tc.LR)
	bar := progress.New("classifier", tc.Steps)
	_, hist, err := statesrun.TrainClassifier(e.b, e.data, e.cfg, dir, func(step int, loss float64) { bar.Update(step, fmt.Sprintf("loss %.4f", loss)) })
	if err != nil {
		return err
	}
	bar.Done("")
	if n := len(hist.ValAcc); n > 0 {
		fmt.Printf("  validation accuracy %.4f\n", hist.ValAcc[n-1])
	}
	png, err := statesrun.LossFigure(hist, "Classifier cross-entropy")
	return writePNG(e, "classifier_loss", png, err)
}

func sample(e *env, _ options) error {
	dir, err := ckpt("denoiser")
	if err != nil {
		return err
	}
	d, _, err := statesrun.LoadDenoiser(e.b, dir)
	if err != nil {
		return err
	}
	sm := e.cfg.Sampler
	s, err := sm.Sample(e.b, d, dir, e.cfg.NumSamples, e.cfg.Model.Speed, e.cfg.Seed, 0)
	if err != nil {
		return err
	}
	fmt.Printf("sampler: %s (-plain-sampler: the assignment's)\n", sm)
	fmt.Printf("%d samples in %s (%.0f samples/s)\n", e.cfg.NumSamples, s.Duration.Round(time.Millisecond), float64(e.cfg.NumSamples)/s.Duration.Seconds())
	if err := statesrun.WriteSamples(e.out, "uncond_gen_samples", s.Points); err != nil {
		return err
	}
	png, err := statesrun.SamplesFigure(e.data.All, statesrun.Points(s.Points), "DDPM samples")
	return writePNG(e, "uncond_gen_samples", png, err)
}

func guide(e *env, _ options) error {
	dd, err := ckpt("denoiser")
	if err != nil {
		return err
	}
	cd, err := ckpt("classifier")
	if err != nil {
		return err
	}
	d, _, err := statesrun.LoadDenoiser(e.b, dd)
	if err != nil {
		return err
	}
	c, _, err := statesrun.LoadClassifier(e.b, cd)
	if err != nil {
		return err
	}
	g := e.cfg.Guided
	var weak *ddpm.Denoiser
	if g.On() {
		if weak, err = statesrun.LoadWeakDenoiser(e.b, dd, g.Weak); err != nil {
			return err
		}
	}
	sets, took, err := statesrun.SampleGuidedWith(d, c, weak, e.data, e.cfg.NumSamples, g, e.cfg.Model.Speed, e.cfg.Seed)
	if err != nil {
		return err
	}
	fmt.Printf("guided sampler: %s (-plain-sampler: the assignment's)\n", g)
	fmt.Printf("%d x %d guided samples in %s\n", len(sets), e.cfg.NumSamples, took.Round(time.Millisecond))
	for _, s := range sets {
		if err := statesrun.WriteSamples(e.out, fmt.Sprintf("cond_gen_samples_%d", s.Label), s.Points); err != nil {
			return err
		}
	}
	png, err := statesrun.GuidedFigure(e.data.All, sets)
	return writePNG(e, "cond_gen_samples", png, err)
}

// score reads the saved sample files back and scores them, as a grader would.
func score(e *env, _ options) error {
	var names []string
	var reps []metrics.Report
	add := func(name, file string, label int) error {
		flat, shape, err := tensorfile.ReadNPY(filepath.Join(e.out, file))
		if errors.Is(err, os.ErrNotExist) {
			fmt.Printf("(no %s yet)\n", file)
			return nil
		}
		if err != nil {
			return err
		}
		if len(shape) != 2 || shape[1] != 2 {
			return fmt.Errorf("%s has shape %v, want [N 2]", file, shape)
		}
		var rep metrics.Report
		if label < 0 {
			rep, err = e.data.Reference.Evaluate(statesrun.Points(flat))
		} else {
			rep, err = statesrun.EvaluateGuided(e.data, statesrun.Points(flat), label) // recall against the state's own points
		}
		if err != nil {
			return err
		}
		names, reps = append(names, name), append(reps, rep)
		return nil
	}
	if err := add("unconditional", "uncond_gen_samples.npy", -1); err != nil {
		return err
	}
	for k := 0; k < 5; k++ {
		if err := add(fmt.Sprintf("guided %d", k), fmt.Sprintf("cond_gen_samples_%d.npy", k), k); err != nil {
			return err
		}
	}
	real, err := e.data.Reference.Evaluate(e.data.All.Points)
	if err != nil {
		return err
	}
	names, reps = append(names, "real data"), append(reps, real)
	for k := 0; k < 5; k++ { // each state's floor: its real points scored as guided samples
		rep, err := statesrun.EvaluateGuided(e.data, e.data.All.OfLabel(k), k)
		if err != nil {
			return err
		}
		names, reps = append(names, fmt.Sprintf("real points of %d", k)), append(reps, rep)
	}
	fmt.Print(metrics.MarkdownTable(names, reps))
	return nil
}

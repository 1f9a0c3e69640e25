// Command mnist runs the MNIST assignments (notebooks 03-05) without Jupyter:
//
//	go run ./diffusion/cmd/mnist train -task mnist_flow_class -preset cpu
//	go run ./diffusion/cmd/mnist score -task mnist_flow_class -preset cpu
//	go run ./diffusion/cmd/mnist sample -task mnist_ddpm -per-class 100 -sampler dpm++2m -sample-steps 20
//	go run ./diffusion/cmd/mnist tasks -preset cpu
//
// train trains a task and saves it (with its loss history and snapshot figures) under
// outputs/checkpoints/<task>; an interrupted train (Ctrl-C: it saves and exits with status
// 130; a kill) resumes where it stopped when the same command is run again; score draws PerClass digits of each class from a trained
// generative task, writes a grid of them next to the checkpoint and prints the evaluator's
// scores (accuracy w.r.t. the requested digit, per-digit confidence, FID at that n), training
// the evaluator first if needed. sample draws digits from a trained generative task (per-class
// of each digit for class-conditioned tasks, 10*per-class otherwise) and writes them as data to
// keep: <out>/<task>_samples.npy (N x 28 x 28 float32 in [0, 1]), <task>_samples_labels.npy
// (N int64) and a PNG grid of the first ten of each digit.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/godiffusion/notebooks/diffusion/atomicfile"
	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/godebug"
	"github.com/godiffusion/notebooks/diffusion/imagediff"
	"github.com/godiffusion/notebooks/diffusion/mnistrun"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/sampling"
	"github.com/godiffusion/notebooks/diffusion/workdir"
)

func main() {
	if err := godebug.Ensure(); err != nil {
		fmt.Fprintln(os.Stderr, "mnist: warning:", err)
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mnist:", err)
		os.Exit(cliusage.ExitCode(err)) // 2: bad command line; 130: interrupted, the state is saved
	}
}

// usageError is a bad command line (unknown command, flag or task, a bad flag value): the
// command exits with status 2 before doing anything.
type usageError = cliusage.Error

// usage returns a usageError with the message.
func usage(format string, args ...any) error { return cliusage.Errorf(format, args...) }

func run(args []string) error {
	if len(args) == 0 || slices.Contains([]string{"-h", "--help", "help"}, args[0]) {
		fmt.Fprintln(os.Stderr, "usage: mnist train|score|sample|tasks [flags]; mnist <command> -h for the flags")
		return nil
	}
	cmd := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	presetName := fs.String("preset", preset.Default(), "smoke, cpu or paper")
	taskName := fs.String("task", "", "task name (see `mnist tasks`)")
	seed := fs.Int64("seed", 1, "random seed of training and sampling")
	steps := fs.Int("steps", 0, "training steps (0: the preset's)")
	batch := fs.Int("batch", 0, "training batch size (0: the preset's)")
	lr := fs.Float64("lr", 0, "learning rate (0: the preset's)")
	width := fs.Int("width", 0, "UNet hidden width D (0: the preset's)")
	workers := fs.Int("workers", 0, "train: concurrent gradient shards of each batch (0: the preset's; 1: one whole batch)")
	modulation := fs.String("modulation", "", "class conditioning of a class-conditioned UNet: scale or add (empty: the preset's)")
	guidance := fs.Float64("guidance", 0, "classifier-free guidance scale when scoring (0: the preset's; 1: none)")
	sampleSteps := fs.Int("sample-steps", 0, "sampling steps when scoring: Euler steps (flow) or visited time steps (DDPM); 0: the preset's")
	perClass := fs.Int("per-class", 0, "digits per class to score or sample (0: the preset's)")
	sampler := fs.String("sampler", "", fmt.Sprintf("sampler when scoring or sampling, one of %v (empty: the model's own: euler for flow, ddim with eta 1 for DDPM)", sampling.SamplerNames()))
	outDir := fs.String("out", "", "directory of the sample files (empty: outputs/samples)")
	ckptEvery := fs.Int("checkpoint-every", 0, "train: also save the resumable training state every N steps (0: only every minute and at Ctrl-C)")
	if !slices.Contains([]string{"train", "score", "sample", "tasks"}, cmd) {
		return usage("unknown command %q (want train, score, sample or tasks)", cmd)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return cliusage.Wrap(err)
	}
	p, err := preset.Parse(*presetName)
	if err != nil {
		return usage("-preset: %w", err)
	}
	if *sampler != "" {
		if _, err := sampling.SamplerByName(*sampler, 0); err != nil {
			return usage("-sampler: %w", err)
		}
	}
	if *modulation != "" && !slices.Contains([]string{"scale", "add"}, *modulation) {
		return usage("-modulation must be scale or add, got %q", *modulation)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"steps", float64(*steps)}, {"batch", float64(*batch)}, {"lr", *lr}, {"width", float64(*width)}, {"workers", float64(*workers)}, {"guidance", *guidance}, {"sample-steps", float64(*sampleSteps)}, {"per-class", float64(*perClass)}, {"checkpoint-every", float64(*ckptEvery)}} {
		if f.v < 0 {
			return usage("-%s must be >= 0 (0: the preset's), got %g", f.name, f.v)
		}
	}
	cfg, err := mnistrun.PresetConfig(p)
	if err != nil {
		return err
	}
	cfg.Seed = *seed
	tasks := cfg.Tasks()
	if cmd == "tasks" {
		names := make([]string, 0, len(tasks))
		for n := range tasks {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			t := tasks[n]
			fmt.Printf("%-30s %-8s D=%-3d steps %-6d batch %-4d lr %g %s\n", n, t.Model.Objective, t.Model.Net.Hidden, t.Train.Steps, t.Train.BatchSize, t.Train.LR, t.Train.LRSchedule)
		}
		return nil
	}
	task, ok := tasks[*taskName]
	if !ok {
		return usage("unknown -task %q (see `mnist tasks`)", *taskName)
	}
	if *steps > 0 {
		task.Train.Steps = *steps
	}
	if *batch > 0 {
		task.Train.BatchSize = *batch
	}
	if *lr > 0 {
		task.Train.LR = *lr
	}
	if *width > 0 {
		task.Model.Net.Hidden = *width
	}
	if *workers > 0 {
		task.Train.Workers = *workers
	}
	if *modulation != "" && task.Model.Net.NumClasses > 0 {
		task.Model.Net.Modulation = nets.Modulation(*modulation)
	}
	task.Train.Seed = *seed
	task.CheckpointEvery = *ckptEvery
	b, err := backend.New()
	if err != nil {
		return err
	}
	dir, err := workdir.Checkpoint(task.Name)
	if err != nil {
		return err
	}
	train, test, err := mnistrun.LoadData()
	if err != nil {
		return err
	}
	switch cmd {
	case "train":
		fmt.Printf("%s: %s, D=%d, %d steps, batch %d, lr %g %s\n", task.Name, task.Model.Objective, task.Model.Net.Hidden, task.Train.Steps, task.Train.BatchSize, task.Train.LR, task.Train.LRSchedule)
		start := time.Now()
		m, h, err := mnistrun.Train(b, task, train, dir, mnistrun.SnapshotFor(cfg, task, test), func(step int, loss float64) {
			if step%100 == 0 {
				fmt.Printf("step %d loss %.4f %s\n", step, loss, time.Since(start).Round(time.Second))
			}
		})
		if err != nil {
			return err
		}
		n := len(h.Loss)
		tail := h.Loss[max(0, n-100):]
		avg := 0.0
		for _, v := range tail {
			avg += v
		}
		fmt.Printf("trained %s: %d parameters, %d steps (%.2f epochs) in %s (%.0f ms/step), loss over the last %d steps %.4f; saved in %s\n",
			task.Name, m.NumParameters(), n, h.Epochs, time.Duration(h.Seconds*float64(time.Second)).Round(time.Second), 1000*h.Seconds/float64(n), len(tail), avg/float64(len(tail)), dir)
		return nil
	case "score", "sample":
		if *guidance > 0 {
			cfg.Guidance, cfg.DDPMGuidance = *guidance, *guidance
		}
		if *sampleSteps > 0 {
			cfg.FlowSteps, cfg.DDPMSteps = *sampleSteps, *sampleSteps
		}
		if *perClass > 0 {
			cfg.PerClass = *perClass
		}
		m, _, err := mnistrun.Load(b, dir)
		if err != nil {
			return err
		}
		if cmd == "sample" {
			return sampleDigits(m, cfg, task.Name, *sampler, *outDir)
		}
		if m.Net.NumClasses == 0 {
			return fmt.Errorf("task %s is not class-conditioned: nothing to score", task.Name)
		}
		evDir, err := workdir.Checkpoint("mnist_evaluator")
		if err != nil {
			return err
		}
		ev, trained, err := mnistrun.Evaluator(b, evDir, p)
		if err != nil {
			return err
		}
		if trained {
			fmt.Println("trained the evaluator:", ev)
		}
		sc := mnistrun.SamplerFor(cfg, m)
		sc.Sampler = *sampler
		r, err := mnistrun.SampleAndScore(ev, m, sc, cfg.PerClass, 10, fmt.Sprintf("%s, guidance %g, %d steps", task.Name, sc.Guidance, sc.Steps))
		if err != nil {
			return err
		}
		gridFile := filepath.Join(dir, fmt.Sprintf("samples_g%g_s%d.png", sc.Guidance, sc.Steps))
		if err := atomicfile.Write(gridFile, r.Grid); err != nil {
			return err
		}
		fmt.Printf("%s: %d digits, guidance %g, %d sampling steps, sampled in %s; grid %s\n%s\n", task.Name, r.Samples.N, sc.Guidance, sc.Steps, r.Took.Round(time.Second), gridFile, r.Report.Markdown())
		return nil
	}
	return fmt.Errorf("unknown command %q (want train, score, sample or tasks)", cmd)
}

// sampleDigits draws cfg.PerClass digits of each class (10*PerClass for unconditional models)
// from m and writes them as .npy files and a PNG grid into outDir (default outputs/samples).
func sampleDigits(m *imagediff.Model, cfg mnistrun.Config, name, sampler, outDir string) error {
	if m.Objective == imagediff.Denoise {
		return fmt.Errorf("task %s is a one-step denoiser: it does not sample (pick a flow or DDPM task)", name)
	}
	if outDir == "" {
		var err error
		if outDir, err = workdir.Sub("samples"); err != nil {
			return err
		}
	}
	sc := mnistrun.SamplerFor(cfg, m)
	sc.Sampler = sampler
	var labels []int
	if m.Net.NumClasses > 0 {
		labels = mnistrun.ClassLabels(cfg.PerClass)
	}
	start := time.Now()
	s, err := m.Sample(10*cfg.PerClass, labels, sc)
	if err != nil {
		return err
	}
	took := time.Since(start)
	base := name + "_samples"
	paths, err := mnistrun.WriteSamples(outDir, base, s, m.PixelLo, m.PixelHi, m.Net.ImageSize, m.Net.Channels)
	if err != nil {
		return err
	}
	shown := min(cfg.PerClass, 10)
	grid := s
	perRow := 0
	if labels != nil {
		if grid, err = mnistrun.FirstPerClass(s, cfg.PerClass, shown); err != nil {
			return err
		}
		perRow = shown
	} else if s.N > 100 {
		grid = &imagediff.Samples{N: 100, Images: s.Images[:100*len(s.Images)/s.N]}
	}
	samplerName := sampler
	if samplerName == "" {
		samplerName = "default"
	}
	png, err := mnistrun.SampleGrid(grid, m.PixelLo, m.PixelHi, perRow, fmt.Sprintf("%s, %s sampler, guidance %g, %d steps", name, samplerName, sc.Guidance, sc.Steps))
	if err != nil {
		return err
	}
	gridFile := filepath.Join(outDir, base+".png")
	if err := atomicfile.Write(gridFile, png); err != nil {
		return err
	}
	fmt.Printf("%s: %d digits (%s sampler, guidance %g, %d steps, seed %d) in %s: %s, %s\n", name, s.N, samplerName, sc.Guidance, sc.Steps, sc.Seed, took.Round(time.Millisecond), strings.Join(paths, ", "), gridFile)
	return nil
}

// Command mnist runs the MNIST assignments (notebooks 03-05) without Jupyter:
//
//	go run ./diffusion/cmd/mnist train -task mnist_flow_class -preset cpu
//	go run ./diffusion/cmd/mnist score -task mnist_flow_class -preset cpu
//	go run ./diffusion/cmd/mnist tasks -preset cpu
//
// train trains a task and saves it (with its loss history and snapshot figures) under
// outputs/checkpoints/<task>; score draws PerClass digits of each class from a trained
// generative task, writes a grid of them next to the checkpoint and prints the evaluator's
// scores (accuracy w.r.t. the requested digit, per-digit confidence, FID at that n), training
// the evaluator first if needed.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/godiffusion/notebooks/diffusion/atomicfile"
	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/godebug"
	"github.com/godiffusion/notebooks/diffusion/mnistrun"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/workdir"
)

func main() {
	if err := godebug.Ensure(); err != nil {
		fmt.Fprintln(os.Stderr, "mnist: warning:", err)
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mnist:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || slices.Contains([]string{"-h", "--help", "help"}, args[0]) {
		fmt.Fprintln(os.Stderr, "usage: mnist train|score|tasks [flags]; mnist <command> -h for the flags")
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
	modulation := fs.String("modulation", "", "class conditioning of a class-conditioned UNet: scale or add (empty: the preset's)")
	guidance := fs.Float64("guidance", 0, "classifier-free guidance scale when scoring (0: the preset's; 1: none)")
	sampleSteps := fs.Int("sample-steps", 0, "sampling steps when scoring: Euler steps (flow) or visited time steps (DDPM); 0: the preset's")
	perClass := fs.Int("per-class", 0, "digits per class to score (0: the preset's)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	p, err := preset.Parse(*presetName)
	if err != nil {
		return err
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
		return fmt.Errorf("unknown -task %q (see `mnist tasks`)", *taskName)
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
	if *modulation != "" && task.Model.Net.NumClasses > 0 {
		task.Model.Net.Modulation = nets.Modulation(*modulation)
	}
	task.Train.Seed = *seed
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
	case "score":
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
		start := time.Now()
		s, err := m.Sample(10*cfg.PerClass, mnistrun.ClassLabels(cfg.PerClass), sc)
		if err != nil {
			return err
		}
		took := time.Since(start)
		shown := min(cfg.PerClass, 10)
		first, err := mnistrun.FirstPerClass(s, cfg.PerClass, shown)
		if err != nil {
			return err
		}
		png, err := mnistrun.SampleGrid(first, m.PixelLo, m.PixelHi, shown, fmt.Sprintf("%s, guidance %g, %d steps", task.Name, sc.Guidance, sc.Steps))
		if err != nil {
			return err
		}
		gridFile := filepath.Join(dir, fmt.Sprintf("samples_g%g_s%d.png", sc.Guidance, sc.Steps))
		if err := atomicfile.Write(gridFile, png); err != nil {
			return err
		}
		rep, err := mnistrun.Score(ev, s, m.PixelLo, m.PixelHi)
		if err != nil {
			return err
		}
		fmt.Printf("%s: %d digits, guidance %g, %d sampling steps, sampled in %s; grid %s\n%s\n", task.Name, s.N, sc.Guidance, sc.Steps, took.Round(time.Second), gridFile, rep.Markdown())
		return nil
	}
	return fmt.Errorf("unknown command %q (want train, score or tasks)", cmd)
}

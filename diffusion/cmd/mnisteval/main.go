// Command mnisteval trains (or loads) the MNIST evaluator and prints its test accuracy, its
// per-digit accuracy and sanity values of its Fréchet distance:
//
//	go run ./diffusion/cmd/mnisteval -preset cpu [-retrain]
//
// The checkpoint is outputs/checkpoints/mnist_evaluator (the one the notebooks use) unless
// -dir says otherwise.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/godebug"
	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/metrics"
	"github.com/godiffusion/notebooks/diffusion/mnisteval"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/workdir"
)

func main() {
	if err := godebug.Ensure(); err != nil {
		fmt.Fprintln(os.Stderr, "mnisteval: warning:", err)
	}
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "mnisteval:", err)
		os.Exit(cliusage.ExitCode(err)) // 2: bad command line; 130: interrupted, the state is saved
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mnisteval", flag.ContinueOnError)
	presetName := fs.String("preset", preset.Default(), "smoke, cpu or paper")
	dir := fs.String("dir", "", "checkpoint directory (default: outputs/checkpoints/mnist_evaluator)")
	retrain := fs.Bool("retrain", false, "train even if a checkpoint exists")
	if err := cliusage.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cliusage.Errorf("unexpected argument %q: mnisteval takes only flags (-preset, -dir, -retrain)", fs.Arg(0))
	}
	p, err := preset.Parse(*presetName)
	if err != nil {
		return cliusage.Errorf("-preset: %w", err)
	}
	if *dir == "" {
		if *dir, err = workdir.Checkpoint("mnist_evaluator"); err != nil {
			return err
		}
	}
	if *retrain {
		if err := os.RemoveAll(*dir); err != nil {
			return err
		}
	}
	b, err := backend.New()
	if err != nil {
		return err
	}
	start := time.Now()
	ev, trained, err := mnisteval.LoadOrTrain(b, *dir, p, func(step int, loss float64) {
		if step%100 == 0 {
			fmt.Printf("step %d loss %.4f %s\n", step, loss, time.Since(start).Round(time.Second))
		}
	})
	if err != nil {
		return err
	}
	verb := "loaded"
	if trained {
		verb = fmt.Sprintf("trained in %s", time.Since(start).Round(time.Second))
	}
	fmt.Printf("%s (%s, %s)\n", ev, verb, *dir)
	test, err := mnist.Load(mnist.Test)
	if err != nil {
		return err
	}
	probs, _, err := ev.Outputs(test.Images, test.N)
	if err != nil {
		return err
	}
	rep, err := metrics.EvaluateClasses(probs, 10, test.Labels)
	if err != nil {
		return err
	}
	fmt.Printf("test set: %s\n%s", rep, metrics.ClassMarkdownTable(rep, nil))
	// Sanity values of the Fréchet distance at n = 1000.
	train, err := mnist.Load(mnist.Train)
	if err != nil {
		return err
	}
	head, err := train.Head(1000)
	if err != nil {
		return err
	}
	r, err := ev.Score(head.Images, head.Labels)
	if err != nil {
		return err
	}
	fmt.Printf("1000 training digits vs the test set: accuracy %.3f, FID(n=1000) %.2f\n", r.Accuracy, r.FID)
	blurred := make([]float32, len(head.Images))
	for i := range blurred {
		blurred[i] = 0.5*head.Images[i] + 0.25
	}
	r, err = ev.Score(blurred, head.Labels)
	if err != nil {
		return err
	}
	fmt.Printf("the same at half contrast: accuracy %.3f, FID(n=1000) %.2f\n", r.Accuracy, r.FID)
	return nil
}

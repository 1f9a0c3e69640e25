// Command nbrun executes notebooks headless with the project's GoNB kernel and fails
// when any cell failed: an error output, a compile error, a runtime panic, a non-zero
// exit, or a cell tagged "expect-image" that displayed no image (GoNB reports some of
// these as success, so nbrun checks the outputs itself). It prints a time table.
//
//	go run ./diffusion/cmd/nbrun -preset smoke -out outputs/executed notebooks/*.ipynb
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/godebug"
	"github.com/godiffusion/notebooks/diffusion/notebook"
	"github.com/godiffusion/notebooks/diffusion/preset"
)

func main() {
	if err := godebug.Ensure(); err != nil {
		fmt.Fprintln(os.Stderr, "nbrun: warning:", err)
	}
	presetName := flag.String("preset", preset.Default(), "preset passed to the cells: smoke, cpu or paper")
	outDir := flag.String("out", "outputs/executed", "directory for the executed notebooks and their logs")
	kernel := flag.String("kernel", notebook.DefaultKernel, "Jupyter kernelspec to run the notebooks with")
	timeout := flag.Duration("cell-timeout", 30*time.Minute, "time limit of one cell")
	python := flag.String("python", notebook.DefaultPython, "Python interpreter that has nbconvert")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: nbrun [flags] notebook.ipynb...\n")
		flag.PrintDefaults()
	}
	flag.CommandLine.Init("nbrun", flag.ContinueOnError)
	if err := cliusage.Parse(flag.CommandLine, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "nbrun:", err)
		os.Exit(2)
	}
	if err := run(*presetName, *outDir, *kernel, *python, *timeout, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "nbrun:", err)
		os.Exit(cliusage.ExitCode(err))
	}
}

func run(presetName, outDir, kernel, python string, timeout time.Duration, paths []string) error {
	p, err := preset.Parse(presetName)
	if err != nil {
		return cliusage.Errorf("-preset: %w", err)
	}
	if len(paths) == 0 {
		return cliusage.Errorf("no notebooks given: usage: nbrun [flags] notebook.ipynb...")
	}
	if err := cliusage.Positive("cell-timeout", timeout); err != nil {
		return err
	}
	if err := cliusage.Notebooks(paths); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := notebook.Options{Kernel: kernel, Preset: p, OutDir: outDir, CellTimeout: timeout, Python: python}
	var results []*notebook.Result
	failed := 0
	for _, path := range paths {
		fmt.Printf("running %s (preset %s)...\n", path, p)
		res, err := notebook.Run(ctx, path, opts)
		if err != nil {
			return err
		}
		status := "ok"
		if !res.OK() {
			status, failed = "FAILED", failed+1
		}
		fmt.Printf("  %s in %s\n", status, res.Wall.Round(100*time.Millisecond))
		results = append(results, res)
	}
	fmt.Println()
	notebook.WriteTable(os.Stdout, results)
	fmt.Println()
	notebook.WriteCellTable(os.Stdout, results, time.Second)
	if failed > 0 {
		return fmt.Errorf("%d of %d notebooks failed", failed, len(paths))
	}
	return nil
}

// Command report runs every notebook at a preset, checks that each ran cleanly, and
// writes one PDF (a cover page with the run times, then every notebook) plus the
// deliverable files the notebooks save, all under the output directory:
//
//	go run ./diffusion/cmd/report -preset cpu -out outputs
//
// writes outputs/report.pdf, outputs/executed/*.ipynb (with their logs), and the
// notebooks' own files (samples, checkpoints, figures). It exits non-zero when a
// notebook failed or the PDF lacks a notebook's title or its images.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/godebug"
	"github.com/godiffusion/notebooks/diffusion/notebook"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/report"
	"github.com/godiffusion/notebooks/diffusion/workdir"
)

func main() {
	if err := godebug.Ensure(); err != nil {
		fmt.Fprintln(os.Stderr, "report: warning:", err)
	}
	presetName := flag.String("preset", preset.Default(), "preset the notebooks run at: smoke, cpu or paper")
	outDir := flag.String("out", "outputs", "output directory (report.pdf, executed notebooks, deliverables)")
	skipRun := flag.Bool("skip-run", false, "do not run the notebooks: export the executed copies already in -out/executed")
	kernel := flag.String("kernel", notebook.DefaultKernel, "Jupyter kernelspec")
	timeout := flag.Duration("cell-timeout", 60*time.Minute, "time limit of one cell")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: report [flags] [notebook.ipynb...]  (default: notebooks/[0-9]*.ipynb)\n")
		flag.PrintDefaults()
	}
	flag.CommandLine.Init("report", flag.ContinueOnError)
	if err := cliusage.Parse(flag.CommandLine, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(2)
	}
	if err := run(*presetName, *outDir, *kernel, *skipRun, *timeout, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(cliusage.ExitCode(err))
	}
}

func run(presetName, outDir, kernel string, skipRun bool, timeout time.Duration, paths []string) error {
	p, err := preset.Parse(presetName)
	if err != nil {
		return cliusage.Errorf("-preset: %w", err)
	}
	if err := cliusage.Positive("cell-timeout", timeout); err != nil {
		return err
	}
	if err := cliusage.Notebooks(paths); err != nil {
		return err
	}
	if len(paths) == 0 {
		paths, _ = filepath.Glob("notebooks/[0-9]*.ipynb")
		sort.Strings(paths)
		if len(paths) == 0 {
			return cliusage.Errorf("no notebooks found in notebooks/ (run from the project root or name them)")
		}
	}
	out, err := filepath.Abs(outDir)
	if err != nil {
		return err
	}
	executedDir := filepath.Join(out, "executed")
	htmlDir := filepath.Join(out, "html")
	for _, d := range []string{executedDir, htmlDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// 1. Run the notebooks (their deliverables go to out through DIFFUSION_OUTPUTS).
	var results []*notebook.Result
	failed := 0
	for _, path := range paths {
		base := strings.TrimSuffix(filepath.Base(path), ".ipynb")
		if skipRun {
			results = append(results, &notebook.Result{Notebook: path, Executed: filepath.Join(executedDir, base+".ipynb")})
			continue
		}
		fmt.Printf("running %s (preset %s)...\n", path, p)
		res, err := notebook.Run(ctx, path, notebook.Options{Kernel: kernel, Preset: p, OutDir: executedDir,
			CellTimeout: timeout, Env: []string{workdir.EnvVar + "=" + out}})
		if err != nil {
			return err
		}
		fmt.Printf("  %s in %s\n", map[bool]string{true: "ok", false: "FAILED"}[res.OK()], res.Wall.Round(100*time.Millisecond))
		if !res.OK() {
			failed++
		}
		results = append(results, res)
	}
	if !skipRun {
		fmt.Println()
		notebook.WriteTable(os.Stdout, results)
		fmt.Println()
		notebook.WriteCellTable(os.Stdout, results, time.Second)
	}

	// 2. One PDF per notebook, after a cover page.
	var pdfs []string
	var entries []report.CoverEntry
	want := report.Expect{Titles: []string{coverTitle}}
	for _, r := range results {
		nb, err := notebook.Read(r.Executed)
		if err != nil {
			return fmt.Errorf("%s was not executed: %w", r.Notebook, err)
		}
		title := nb.Title()
		base := strings.TrimSuffix(filepath.Base(r.Executed), ".ipynb")
		htmlPath := filepath.Join(htmlDir, base+".html")
		pdfPath := filepath.Join(htmlDir, base+".pdf")
		fmt.Printf("exporting %s\n", base)
		if err := report.NotebookHTML(ctx, report.Tools{}, r.Executed, htmlPath); err != nil {
			return err
		}
		if err := report.PrintPDF(ctx, report.Tools{}, htmlPath, pdfPath); err != nil {
			return err
		}
		pdfs = append(pdfs, pdfPath)
		entries = append(entries, report.CoverEntry{Title: title, File: filepath.Base(r.Notebook), Wall: r.Wall, Problems: len(r.Problems)})
		want.Titles = append(want.Titles, title)
		want.MinImages += nb.Images()
	}
	coverHTML := filepath.Join(htmlDir, "cover.html")
	subtitle := fmt.Sprintf("Preset %s, generated %s.", p, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	if err := os.WriteFile(coverHTML, []byte(report.CoverHTML(coverTitle, subtitle, entries)), 0o644); err != nil {
		return err
	}
	coverPDF := filepath.Join(htmlDir, "cover.pdf")
	if err := report.PrintPDF(ctx, report.Tools{}, coverHTML, coverPDF); err != nil {
		return err
	}
	reportPDF := filepath.Join(out, "report.pdf")
	if err := report.Merge(ctx, reportPDF, append([]string{coverPDF}, pdfs...)...); err != nil {
		return err
	}

	// 3. Check the PDF.
	info, err := report.Inspect(ctx, reportPDF)
	if err != nil {
		return err
	}
	want.MinPages = len(pdfs) + 1
	fmt.Printf("wrote %s: %d pages, %d images\n", reportPDF, info.Pages, info.Images)
	if err := report.Check(info, want); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d notebooks failed (see the table above)", failed, len(results))
	}
	return nil
}

const coverTitle = "Diffusion models in Go: coursework report"

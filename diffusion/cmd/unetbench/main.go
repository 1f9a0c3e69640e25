// Command unetbench times the MNIST UNets of the notebooks against their PyTorch twin
// (bench/torch_unet.py: the same network, loss, optimizer and batch) on this machine, in one
// run, and prints a Markdown table of the times and their ratios:
//
//	go run ./diffusion/cmd/unetbench [-rounds 3] [-steps 5] [-threads 2] [-workers 2] [-cases train-d32,sample-d16-flow]
//
// Go runs each computation as the notebooks do: with -workers 2 (the smoke and cpu presets'
// setting) a training step is two concurrent gradient shards and one update, an inference call
// two concurrent calls on halves of the batch; -workers 1 times one call of the whole batch.
//
// Each round times every case in Go and then in PyTorch (a child process of /usr/bin/python3
// with -threads threads), so that both see the same machine state; the table gives the
// medians over the rounds and the ratio Go / PyTorch of each round. Times are medians of
// -steps calls after warm-up calls; compilation is excluded. The CPU model and the load average
// before and after are printed with the table: a ratio is a property of one machine.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomlx/compute"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/godebug"
	"github.com/godiffusion/notebooks/diffusion/mnistrun"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/preset"
)

func main() {
	if err := godebug.Ensure(); err != nil {
		fmt.Fprintln(os.Stderr, "unetbench: warning:", err)
	}
	if err := run(os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "unetbench:", err)
		os.Exit(cliusage.ExitCode(err))
	}
}

// benchCase is one timed computation: a training step or a network call of one UNet.
type benchCase struct {
	name  string // key for -cases
	what  string // its row in the table
	cfg   nets.UNetConfig
	batch int
	train bool     // a training step; otherwise an inference call
	torch []string // bench/torch_unet.py's flags for the same computation
}

// cases returns every case: the D=32 UNet of the speed target, and the D=16 UNets of the cpu
// preset (their training steps, and the network call of one sampling step of 100 digits with
// classifier-free guidance: one batch of 200).
func cases() ([]benchCase, error) {
	mc, err := mnistrun.PresetConfig(preset.CPU)
	if err != nil {
		return nil, err
	}
	d32 := nets.DefaultUNetConfig(32)
	d32class := d32
	d32class.TimeConditioned, d32class.NumClasses = true, 10
	torchFlags := func(cfg nets.UNetConfig, batch int, train bool) []string {
		cond := "none"
		switch {
		case cfg.NumClasses > 0:
			cond = "class"
		case cfg.TimeConditioned:
			cond = "time"
		}
		mode, batchFlag := "forward", "--forward-batch"
		if train {
			mode, batchFlag = "train", "--batch"
		}
		return []string{"--hidden", strconv.Itoa(cfg.Hidden), "--cond", cond, "--sinusoidal", strconv.Itoa(cfg.SinusoidalTimeDim),
			"--gelu", "tanh", "--mode", mode, batchFlag, strconv.Itoa(batch)}
	}
	mk := func(name, what string, cfg nets.UNetConfig, batch int, train bool) benchCase {
		return benchCase{name: name, what: what, cfg: cfg, batch: batch, train: train, torch: torchFlags(cfg, batch, train)}
	}
	return []benchCase{
		mk("train-d32", "train step, D=32, batch 64, unconditional", d32, 64, true),
		mk("train-d32-class", "train step, D=32, batch 64, time + class", d32class, 64, true),
		mk("forward-d32", "network call, D=32, batch 64, unconditional", d32, 64, false),
		mk("train-d16-denoiser", "train step, cpu preset mnist_denoiser (D=16, batch 64)", mc.Denoiser.Model.Net, mc.Denoiser.Train.BatchSize, true),
		mk("train-d16-flow-time", "train step, cpu preset mnist_flow_time (D=16, batch 64)", mc.FlowTime.Model.Net, mc.FlowTime.Train.BatchSize, true),
		mk("train-d16-flow-class", "train step, cpu preset mnist_flow_class (D=16, batch 64)", mc.FlowClass.Model.Net, mc.FlowClass.Train.BatchSize, true),
		mk("train-d16-ddpm", "train step, cpu preset mnist_ddpm (D=16, sinusoidal t, batch 64)", mc.DDPM.Model.Net, mc.DDPM.Train.BatchSize, true),
		mk("sample-d16-flow", "sampling step, 100 digits with CFG (batch 200), mnist_flow_class", mc.FlowClass.Model.Net, 200, false),
		mk("sample-d16-ddpm", "sampling step, 100 digits with CFG (batch 200), mnist_ddpm", mc.DDPM.Model.Net, 200, false),
	}, nil
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("unetbench", flag.ContinueOnError)
	rounds := fs.Int("rounds", 3, "rounds (each times every case in Go, then in PyTorch)")
	steps := fs.Int("steps", 5, "timed calls per case and round (after the warm-up calls)")
	warmup := fs.Int("warmup", 2, "untimed calls per case and round before the timed ones")
	threads := fs.Int("threads", runtime.NumCPU(), "PyTorch's threads (Go uses every core)")
	workers := fs.Int("workers", 2, "Go's concurrent shards of each batch (the presets' training and sampling use 2; 1: one call)")
	only := fs.String("cases", "", "comma-separated case names (default: all; see -list)")
	list := fs.Bool("list", false, "list the cases and exit")
	python := fs.String("python", "/usr/bin/python3", "the Python interpreter that has PyTorch")
	script := fs.String("torch", "bench/torch_unet.py", "the PyTorch twin; empty: time Go alone")
	if err := cliusage.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cliusage.Errorf("unexpected argument %q: unetbench takes only flags", fs.Arg(0))
	}
	for _, f := range []struct {
		name string
		v    int
		min  int
	}{{"rounds", *rounds, 1}, {"steps", *steps, 1}, {"warmup", *warmup, 0}, {"threads", *threads, 1}, {"workers", *workers, 1}} {
		if f.v < f.min {
			return cliusage.Errorf("-%s %d: want >= %d", f.name, f.v, f.min)
		}
	}
	all, err := cases()
	if err != nil {
		return err
	}
	if *list {
		for _, c := range all {
			fmt.Fprintf(stdout, "%-22s %s\n", c.name, c.what)
		}
		return nil
	}
	chosen, err := choose(all, *only)
	if err != nil {
		return err
	}
	if *script != "" {
		if _, err := os.Stat(*script); err != nil {
			return cliusage.Errorf("-torch %s: %v (run from the repository root, or -torch '' to time Go alone)", *script, err)
		}
	}
	be, err := backend.New()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "CPU: %s, %d cores; Go %s, %s\n", cpuModel(), runtime.NumCPU(), runtime.Version(), backend.Describe(be))
	fmt.Fprintf(stdout, "load average before: %s\n", loadAverage())
	results := make([]result, len(chosen))
	for r := range *rounds {
		for i, c := range chosen {
			g, err := results[i].timeGo(be, c, *workers, *warmup, *steps)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			line := fmt.Sprintf("round %d/%d %-22s Go %8.1f ms", r+1, *rounds, c.name, g)
			if *script != "" {
				t, err := timeTorch(*python, *script, c, *threads, *warmup, *steps)
				if err != nil {
					return fmt.Errorf("%s: PyTorch: %w", c.name, err)
				}
				results[i].torch = append(results[i].torch, t)
				line += fmt.Sprintf("   PyTorch %8.1f ms   ratio %.2f", t, g/t)
			}
			fmt.Fprintln(stdout, line)
		}
	}
	fmt.Fprintf(stdout, "load average after: %s\n\n", loadAverage())
	writeTable(stdout, chosen, results, *threads, *workers)
	return nil
}

// choose returns the cases named in the comma-separated list (all when it is empty).
func choose(all []benchCase, names string) ([]benchCase, error) {
	if names == "" {
		return all, nil
	}
	var out []benchCase
	for n := range strings.SplitSeq(names, ",") {
		i := slices.IndexFunc(all, func(c benchCase) bool { return c.name == strings.TrimSpace(n) })
		if i < 0 {
			var known []string
			for _, c := range all {
				known = append(known, c.name)
			}
			return nil, cliusage.Errorf("-cases: unknown case %q (known: %s)", n, strings.Join(known, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// result holds one case's compiled Go computation, its times per round (ms) and the time of
// its first call (compilation included).
type result struct {
	call      func() error
	goMS      []float64
	torch     []float64
	compileMS float64
}

// timeGo builds (first round) and times the Go computation of c: the median of steps calls
// after warmup calls.
func (r *result) timeGo(be compute.Backend, c benchCase, workers, warmup, steps int) (float64, error) {
	if r.call == nil {
		if c.train {
			step, err := nets.UNetTrainStep(be, c.cfg, c.batch, workers, 1)
			if err != nil {
				return 0, err
			}
			r.call = func() error { _, err := step(); return err }
		} else {
			call, err := nets.UNetForward(be, c.cfg, c.batch, workers, 3)
			if err != nil {
				return 0, err
			}
			r.call = call
		}
		start := time.Now()
		if err := r.call(); err != nil {
			return 0, err
		}
		r.compileMS = ms(time.Since(start))
	}
	for range warmup {
		if err := r.call(); err != nil {
			return 0, err
		}
	}
	times := make([]float64, steps)
	for i := range times {
		start := time.Now()
		if err := r.call(); err != nil {
			return 0, err
		}
		times[i] = ms(time.Since(start))
	}
	m := median(times)
	r.goMS = append(r.goMS, m)
	return m, nil
}

// timeTorch runs the PyTorch twin of c and returns its median time (ms).
func timeTorch(python, script string, c benchCase, threads, warmup, steps int) (float64, error) {
	args := append([]string{script, "--threads", strconv.Itoa(threads), "--warmup", strconv.Itoa(warmup), "--steps", strconv.Itoa(steps)}, c.torch...)
	cmd := exec.Command(python, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%s %s: %v: %s", python, strings.Join(args, " "), err, lastLine(stderr.String()))
	}
	return parseTorch(string(out), c.train)
}

// parseTorch returns the median_step of the RESULT line of a train step or a forward call.
func parseTorch(out string, train bool) (float64, error) {
	want := "RESULT torch_unet_forward "
	if train {
		want = "RESULT torch_unet_train "
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, want) {
			continue
		}
		for f := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(f, "median_step="); ok {
				return strconv.ParseFloat(strings.TrimSuffix(v, "ms"), 64)
			}
		}
		return 0, fmt.Errorf("no median_step in %q", line)
	}
	return 0, fmt.Errorf("no %q line in the output: %q", strings.TrimSpace(want), lastLine(out))
}

// writeTable prints the Markdown table of the medians over the rounds and the ratios of each
// round.
func writeTable(w io.Writer, cs []benchCase, rs []result, threads, workers int) {
	goCol := "Go, one call (ms)"
	if workers > 1 {
		goCol = fmt.Sprintf("Go, %d shards (ms)", workers)
	}
	fmt.Fprintf(w, "| computation | %s | PyTorch, %d threads (ms) | Go / PyTorch | per round | Go's first call (s) |\n|---|---:|---:|---:|---|---:|\n", goCol, threads)
	for i, c := range cs {
		r := rs[i]
		if len(r.torch) == 0 {
			fmt.Fprintf(w, "| %s | %.1f | - | - | - | %.1f |\n", c.what, median(r.goMS), r.compileMS/1000)
			continue
		}
		var per []string
		ratios := make([]float64, len(r.goMS))
		for k := range r.goMS {
			ratios[k] = r.goMS[k] / r.torch[k]
			per = append(per, fmt.Sprintf("%.2f", ratios[k]))
		}
		fmt.Fprintf(w, "| %s | %.1f | %.1f | **%.2f** | %s | %.1f |\n", c.what, median(r.goMS), median(r.torch), median(ratios), strings.Join(per, ", "), r.compileMS/1000)
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// cpuModel returns the "model name" of /proc/cpuinfo (GOARCH elsewhere).
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// loadAverage returns the 1, 5 and 15 minute load averages ("unknown" off Linux).
func loadAverage() string {
	b, err := os.ReadFile(filepath.Join("/proc", "loadavg"))
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

package notebook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/godiffusion/notebooks/diffusion/preset"
)

// DefaultKernel is the project's CPU kernelspec name, installed by scripts/setup.sh.
const DefaultKernel = "go-diffusion"

// DefaultPython is Debian's interpreter, which has the Jupyter modules (a pyenv python
// earlier on PATH may not).
const DefaultPython = "/usr/bin/python3"

// Options configure Run.
type Options struct {
	Kernel      string        // kernelspec name; DefaultKernel if empty
	Preset      preset.Preset // passed to the cells through preset.EnvVar; CPU if empty
	OutDir      string        // where executed notebooks and logs are written (required)
	CellTimeout time.Duration // per-cell limit; 30 minutes if zero
	Python      string        // interpreter with nbconvert; DefaultPython if empty
	Env         []string      // extra KEY=VALUE pairs for the kernel's environment
}

// Result is the outcome of running one notebook.
type Result struct {
	Notebook string        // the source notebook
	Executed string        // the executed copy, with outputs
	Log      string        // nbconvert's and the kernel's log
	Wall     time.Duration // wall time of the whole run, kernel start included
	Cells    int           // code cells
	Slowest  time.Duration // the slowest cell
	SlowCell int           // its 1-based index
	Times    []CellTime    // every code cell's time, in order
	Problems []Problem     // failures found by Check
	Err      error         // nbconvert itself failed (no executed notebook, timeout, ...)
}

// CellTime is the execution time of one code cell.
type CellTime struct {
	Cell     int    // 1-based index among all cells
	Line     string // the first line of its source that is not blank, a comment or a flag
	Duration time.Duration
}

// OK reports whether the notebook ran without any failure.
func (r *Result) OK() bool { return r.Err == nil && len(r.Problems) == 0 }

// Run executes one notebook headless with nbconvert (nbclient underneath) and checks the
// executed copy with Check. Errors in cells do not stop the run: every cell executes and
// every failure is listed in Result.Problems. The returned error is for bad options
// only; failures of the run are in the Result.
func Run(ctx context.Context, path string, opts Options) (*Result, error) {
	if opts.OutDir == "" {
		return nil, errors.New("notebook.Run: OutDir is required")
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("notebook.Run: %w", err)
	}
	if opts.Kernel == "" {
		opts.Kernel = DefaultKernel
	}
	if opts.Preset == "" {
		opts.Preset = preset.CPU
	}
	if opts.CellTimeout == 0 {
		opts.CellTimeout = 30 * time.Minute
	}
	if opts.Python == "" {
		opts.Python = DefaultPython
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, err
	}
	outDir, err := filepath.Abs(opts.OutDir)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(filepath.Base(path), ".ipynb")
	res := &Result{
		Notebook: path,
		Executed: filepath.Join(outDir, base+".ipynb"),
		Log:      filepath.Join(outDir, base+".log"),
	}
	_ = os.Remove(res.Executed) // never report a stale copy as this run's

	logFile, err := os.Create(res.Log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	cmd := exec.CommandContext(ctx, opts.Python, "-m", "nbconvert",
		"--to", "notebook", "--execute", "--allow-errors",
		"--ExecutePreprocessor.kernel_name="+opts.Kernel,
		fmt.Sprintf("--ExecutePreprocessor.timeout=%d", int(opts.CellTimeout.Seconds())),
		"--output-dir", outDir, "--output", base,
		path)
	cmd.Env = append(os.Environ(), preset.EnvVar+"="+string(opts.Preset))
	cmd.Env = append(cmd.Env, opts.Env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	runErr := cmd.Run()
	res.Wall = time.Since(start)
	if runErr != nil {
		res.Err = fmt.Errorf("nbconvert failed (%v); see %s", runErr, res.Log)
		if tail := tailOf(res.Log, 5); tail != "" {
			res.Err = fmt.Errorf("%w:\n%s", res.Err, tail)
		}
	}
	nb, err := Read(res.Executed)
	if err != nil {
		if res.Err == nil {
			res.Err = fmt.Errorf("reading the executed notebook: %w", err)
		}
		return res, nil
	}
	for i := range nb.Cells {
		c := &nb.Cells[i]
		if c.Type != "code" {
			continue
		}
		res.Cells++
		res.Times = append(res.Times, CellTime{Cell: i + 1, Line: describeCell(c), Duration: c.Duration()})
		if d := c.Duration(); d > res.Slowest {
			res.Slowest, res.SlowCell = d, i+1
		}
	}
	res.Problems = Check(nb)
	return res, nil
}

func tailOf(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WriteTable prints one line per notebook: name, status, cells, wall time, slowest cell;
// then every problem found.
func WriteTable(w io.Writer, results []*Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "notebook\tstatus\tcells\twall\tslowest cell")
	var total time.Duration
	for _, r := range results {
		status := "ok"
		if !r.OK() {
			status = "FAILED"
		}
		slow := "-"
		if r.SlowCell > 0 {
			slow = fmt.Sprintf("#%d %s", r.SlowCell, r.Slowest.Round(time.Second))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", filepath.Base(r.Notebook), status, r.Cells, r.Wall.Round(100*time.Millisecond), slow)
		total += r.Wall
	}
	fmt.Fprintf(tw, "total\t\t\t%s\t\n", total.Round(100*time.Millisecond))
	tw.Flush()
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(w, "%s: %v\n", filepath.Base(r.Notebook), r.Err)
		}
		for _, p := range r.Problems {
			fmt.Fprintf(w, "%s: %s\n", filepath.Base(r.Notebook), p)
		}
	}
}

// describeCell returns the first line of a cell's source that says what it does: not blank,
// not a comment, not a flag declaration or GoNB's "%%" (cut to 60 characters).
func describeCell(c *Cell) string {
	first := ""
	for _, l := range strings.Split(string(c.Source), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if first == "" {
			first = l
		}
		if l == "%%" || strings.HasPrefix(l, "//") || strings.HasPrefix(l, "var ") || strings.HasPrefix(l, "flag") || strings.Contains(l, "= flag.") || l == "(" || l == ")" ||
			strings.HasSuffix(l, ":= setup()") || strings.HasSuffix(l, ":= config()") || strings.HasPrefix(l, "if *flag") || strings.HasPrefix(l, "func ") || l == "}" || strings.HasPrefix(l, "return ") || strings.HasPrefix(l, "cfg.") {
			continue
		}
		first = l
		break
	}
	if r := []rune(first); len(r) > 60 {
		first = string(r[:57]) + "..."
	}
	return first
}

// WriteCellTable prints every code cell that took at least min, per notebook: index, time
// and what the cell does; then the number and total time of the faster cells.
func WriteCellTable(w io.Writer, results []*Result, min time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "notebook\tcell\ttime\tsource")
	for _, r := range results {
		var fast int
		var fastTime time.Duration
		for _, c := range r.Times {
			if c.Duration < min {
				fast++
				fastTime += c.Duration
				continue
			}
			fmt.Fprintf(tw, "%s\t#%d\t%s\t%s\n", filepath.Base(r.Notebook), c.Cell, c.Duration.Round(100*time.Millisecond), c.Line)
		}
		if fast > 0 {
			fmt.Fprintf(tw, "%s\t%d cells\t%s\t(each under %s)\n", filepath.Base(r.Notebook), fast, fastTime.Round(100*time.Millisecond), min)
		}
	}
	tw.Flush()
}

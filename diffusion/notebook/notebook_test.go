package notebook

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godiffusion/notebooks/diffusion/preset"
)

// testdata/gonb_failures_executed.ipynb is a notebook executed by GoNB v0.11.5: cell 2
// ran fine, cell 3 panicked, cell 4 did not compile, cell 5 called os.Exit(3).
func TestCheckFindsGoNBFailures(t *testing.T) {
	nb, err := Read("testdata/gonb_failures_executed.ipynb")
	if err != nil {
		t.Fatal(err)
	}
	byCell := map[int][]string{}
	for _, p := range Check(nb) {
		byCell[p.Cell] = append(byCell[p.Cell], p.Message)
	}
	for cell, want := range map[int]string{3: "panic: planted", 4: "undefined: undefined_thing", 5: "status 3"} {
		if !strings.Contains(strings.Join(byCell[cell], "\n"), want) {
			t.Errorf("cell %d: problems %q, want one mentioning %q", cell, byCell[cell], want)
		}
	}
	for _, cell := range []int{1, 2} {
		if len(byCell[cell]) > 0 {
			t.Errorf("healthy cell %d reported: %q", cell, byCell[cell])
		}
	}
}

func TestCheckExpectations(t *testing.T) {
	nb, err := Parse([]byte(`{"cells": [
	  {"cell_type": "code", "execution_count": 1, "metadata": {"tags": ["expect-image"]}, "source": ["plot()"],
	   "outputs": [{"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": ["<Figure>"]}}]},
	  {"cell_type": "code", "execution_count": 2, "metadata": {"tags": ["expect-image"]}, "source": "noPlot()",
	   "outputs": [{"output_type": "stream", "name": "stdout", "text": "no plot\n"}]},
	  {"cell_type": "code", "execution_count": null, "metadata": {}, "source": "neverRan()", "outputs": []},
	  {"cell_type": "code", "execution_count": 4, "metadata": {"tags": ["expect-output"]}, "source": "silent()", "outputs": []},
	  {"cell_type": "code", "execution_count": 5, "metadata": {}, "source": "g()",
	   "outputs": [{"output_type": "stream", "name": "stderr", "text": ["fatal error: all goroutines are asleep - deadlock!\n"]}]},
	  {"cell_type": "markdown", "metadata": {}, "source": "# text"}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]string{}
	for _, p := range Check(nb) {
		got[p.Cell] += p.Message
	}
	if _, bad := got[1]; bad {
		t.Errorf("cell 1 displayed an image but was reported: %s", got[1])
	}
	for cell, want := range map[int]string{2: "no image", 3: "did not run", 4: "no output", 5: "deadlock"} {
		if !strings.Contains(got[cell], want) {
			t.Errorf("cell %d: got %q, want %q", cell, got[cell], want)
		}
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	if _, err := Parse([]byte("{not json")); err == nil {
		t.Error("Parse accepted invalid JSON")
	}
}

// kernelInstalled skips the test unless Debian's Jupyter and the project's kernel are
// installed (scripts/setup.sh installs both; `make test` runs setup first).
func kernelInstalled(t *testing.T) {
	t.Helper()
	out, err := exec.Command(DefaultPython, "-m", "jupyter", "--data-dir").Output()
	if err != nil {
		t.Skipf("Jupyter is not installed (%v): run scripts/setup.sh", err)
	}
	spec := filepath.Join(strings.TrimSpace(string(out)), "kernels", DefaultKernel, "kernel.json")
	if _, err := os.Stat(spec); err != nil {
		t.Skipf("kernel %s is not installed: run scripts/setup.sh", DefaultKernel)
	}
}

func TestRunFailsOnPlantedPanic(t *testing.T) {
	kernelInstalled(t)
	res, err := Run(context.Background(), "testdata/planted_panic.ipynb",
		Options{OutDir: t.TempDir(), Preset: preset.Smoke, CellTimeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() {
		t.Fatal("the runner passed a notebook with a planted panic")
	}
	var msgs []string
	for _, p := range res.Problems {
		msgs = append(msgs, p.String())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"integer divide by zero", "no image"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems do not mention %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "cell 2 ") {
		t.Errorf("the healthy cell was reported:\n%s", all)
	}
}

func TestRunPassesHealthyNotebook(t *testing.T) {
	kernelInstalled(t)
	res, err := Run(context.Background(), "testdata/healthy.ipynb",
		Options{OutDir: t.TempDir(), Preset: preset.Smoke, CellTimeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("healthy notebook failed: err=%v problems=%v", res.Err, res.Problems)
	}
	if res.Cells != 3 {
		t.Errorf("Cells = %d, want 3", res.Cells)
	}
}

// The cell table lists the slow cells with what they do, and sums up the fast ones.
func TestWriteCellTable(t *testing.T) {
	slow := &Cell{Source: "var flagX = flag.Int(\"x\", 0, \"\")\n\n%%\n// trains\ns := setup()\nm := train(b, cfg)\n"}
	if got := describeCell(slow); got != "m := train(b, cfg)" {
		t.Errorf("describeCell = %q", got)
	}
	r := &Result{Notebook: "nb/04_x.ipynb", Times: []CellTime{{1, "import (", 300 * time.Millisecond}, {3, "m := train(b, cfg)", 95 * time.Second}, {5, "show()", 200 * time.Millisecond}}}
	var b strings.Builder
	WriteCellTable(&b, []*Result{r}, time.Second)
	out := b.String()
	if !strings.Contains(out, "#3       1m35s  m := train(b, cfg)") || !strings.Contains(out, "2 cells") || !strings.Contains(out, "500ms") {
		t.Errorf("table:\n%s", out)
	}
}

package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
	"github.com/godiffusion/notebooks/diffusion/workdir"
)

func TestExactAndTrainTasks(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	args := []string{"-preset", "smoke", "-steps", "5", "-width", "16", "-layers", "1", "-samples", "100",
		"-likelihood_points", "10", "-out", dir, "-checkpoints", filepath.Join(dir, "ckpt"), "exact", "train"}
	if err := run(args, &out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"forward", "exact_score", "sde_snapshots", "two_runs", "no_score", "val_loss", "train_loss"} {
		if _, err := os.Stat(filepath.Join(dir, f+".png")); err != nil {
			t.Errorf("missing figure %s: %v", f, err)
		}
	}
	if !strings.Contains(out.String(), "mean log-lik. (PF-ODE)") || !strings.Contains(out.String(), "saved to") {
		t.Errorf("output:\n%s", out.String())
	}
	// The second run reuses the checkpoints.
	out.Reset()
	if err := run(append(args[:len(args)-2:len(args)-2], "train"), &out); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "loaded") != 2 {
		t.Errorf("the second run did not reuse both checkpoints:\n%s", out.String())
	}
}

// Every bad flag value is a usage error: one line naming the flag and the accepted values,
// exit status 2, nothing written (neither -out, -checkpoints nor the outputs directory).
func TestBadFlagsAreUsageErrors(t *testing.T) {
	root := t.TempDir()
	t.Setenv(workdir.EnvVar, filepath.Join(root, "outputs"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"fly"}, "unknown task \"fly\": want one of [exact train compare] or all"},
		{[]string{"-preset", "gpu"}, "-preset: unknown preset \"gpu\": want one of smoke, cpu, paper"},
		{[]string{"-steps", "-5", "train"}, "-steps must be >= 1"},
		{[]string{"-batch", "-1"}, "-batch must be >= 1"},
		{[]string{"-k", "-200"}, "-k must be >= 1"},
		{[]string{"-components", "-3"}, "-components"},
		{[]string{"-width", "-16"}, "-width"},
		{[]string{"-layers", "-1"}, "-layers"},
		{[]string{"-samples", "-10"}, "-samples"},
		{[]string{"-likelihood_points", "-1"}, "-likelihood_points"},
		{[]string{"-checkpoint_every", "-2"}, "-checkpoint_every"},
		{[]string{"-sigma", "-1", "exact"}, "-sigma must be a finite number >= 0"},
		{[]string{"-turns", "NaN"}, "-turns"},
		{[]string{"-radius", "-2"}, "-radius"},
		{[]string{"-beta_min", "-0.1"}, "-beta_min"},
		{[]string{"-beta_max", "-20"}, "-beta_max"},
		{[]string{"-lr", "-0.001"}, "-lr must be a finite number >= 0"},
		{[]string{"-lr", "+Inf"}, "-lr"},
		{[]string{"-time_skew", "0.5"}, "-time_skew must be >= 1"},
		{[]string{"-weighting", "cubic"}, "-weighting \"cubic\": want none, sigma, sigma2 or importance"},
		{[]string{"-lr_schedule", "step"}, "-lr_schedule \"step\": want constant, cosine or exponential"},
		{[]string{"-steps", "many"}, "-steps"},
		{[]string{"-no-such-flag"}, "no-such-flag"},
		{[]string{"-beta_min", "30", "-beta_max", "20"}, "beta"},
	} {
		args := append([]string{"-out", filepath.Join(root, "figs"), "-checkpoints", filepath.Join(root, "ckpt")}, c.args...)
		err := run(args, io.Discard)
		if cliusage.ExitCode(err) != 2 || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v (exit %d), want a one-line usage error with %q", c.args, err, cliusage.ExitCode(err), c.want)
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("bad command lines wrote %d entries", len(entries))
	}
}

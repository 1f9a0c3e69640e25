package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

func TestBadInput(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{{"fly"}, {"-sigma", "-1", "exact"}, {"-preset", "gpu"}, {"-weighting", "cubic"}} {
		if err := run(append([]string{"-out", t.TempDir()}, args...), &out); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

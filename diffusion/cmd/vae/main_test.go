package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTrainAndFigures(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	args := []string{"-preset", "smoke", "-epochs", "1", "-hidden", "32", "-train_size", "500", "-test_size", "200",
		"-out", dir, "-checkpoints", filepath.Join(dir, "ckpt"), "all"}
	if err := run(args, &out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"neg_elbo", "recon", "kl", "prior_samples", "latent_scatter", "latent_grid", "reconstructions"} {
		if _, err := os.Stat(filepath.Join(dir, f+".png")); err != nil {
			t.Errorf("missing figure %s: %v", f, err)
		}
	}
	if !strings.Contains(out.String(), "Test -ELBO") || !strings.Contains(out.String(), "saved to") {
		t.Errorf("output:\n%s", out.String())
	}
	out.Reset()
	if err := run(append(args[:len(args)-1:len(args)-1], "train"), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "loaded") {
		t.Errorf("the second run did not reuse the checkpoint:\n%s", out.String())
	}
}

func TestBadInput(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{{"fly"}, {"-latent", "-1"}, {"-preset", "gpu"}, {"-lr", "-1"}, {"-lr_schedule", "cubic"}} {
		if err := run(append([]string{"-out", t.TempDir()}, args...), &out); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

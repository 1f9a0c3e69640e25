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
		"-out", dir, "-checkpoints", filepath.Join(dir, "ckpt"), "train", "figures"}
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
	if err := run(append(args[:len(args)-2:len(args)-2], "train"), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "loaded") {
		t.Errorf("the second run did not reuse the checkpoint:\n%s", out.String())
	}
}

func TestBadInput(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{{"fly"}, {"-latent", "-1"}, {"-preset", "gpu"}, {"-lr", "-1"}, {"-lr_schedule", "cubic"},
		{"-compare_latent", "1"}, {"-guidance", "-1"}, {"-p_uncond", "2"}, {"-samples", "3"}} {
		if err := run(append([]string{"-out", t.TempDir()}, args...), &out); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// The latent tasks train the latent score networks (and the evaluator), print the comparison
// with the prior and the guidance sweep for both latent dimensions, write their figures, and
// reuse the checkpoints on a second run.
func TestLatentTasks(t *testing.T) {
	if testing.Short() {
		t.Skip("trains an evaluator")
	}
	dir := t.TempDir()
	var out bytes.Buffer
	args := []string{"-preset", "smoke", "-epochs", "1", "-hidden", "32", "-train_size", "500", "-test_size", "200",
		"-latent_steps", "20", "-latent_width", "16", "-samples", "20", "-k", "10", "-compare_latent", "3",
		"-out", dir, "-checkpoints", filepath.Join(dir, "ckpt"), "latent", "cfg"}
	if err := run(args, &out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"latent_loss_dz2", "latent_samples_dz2", "latent_prior_samples_dz2", "latent_scatter_dz2",
		"latent_cfg_grid_dz2", "latent_cfg_latents_dz2", "latent_cfg_grid_dz3", "latent_cfg_sweep"} {
		if _, err := os.Stat(filepath.Join(dir, f+".png")); err != nil {
			t.Errorf("missing figure %s: %v", f, err)
		}
	}
	for _, want := range []string{"VAE prior: decode(z)", "on FID:", "guidance sweep, d_z = 2", "guidance sweep, d_z = 3", "Mean evaluator accuracy at w = 7.5"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run(args, &out); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "loaded "+filepath.Join(dir, "ckpt", "latent_")); n != 3 {
		t.Errorf("the second run loaded %d latent checkpoints, want 3:\n%s", n, out.String())
	}
}

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

// Every bad flag value is a usage error: one line naming the flag and the accepted values,
// exit status 2, nothing written (neither -out, -checkpoints nor the outputs directory).
func TestBadFlagsAreUsageErrors(t *testing.T) {
	root := t.TempDir()
	t.Setenv(workdir.EnvVar, filepath.Join(root, "outputs"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"fly"}, "unknown task \"fly\": want one of [train figures latent cfg] or all"},
		{[]string{"-preset", "gpu"}, "-preset: unknown preset \"gpu\": want one of smoke, cpu, paper"},
		{[]string{"-latent", "-1"}, "-latent (the latent dimension d_z) must be >= 1"},
		{[]string{"-epochs", "-3", "train"}, "-epochs must be >= 1"},
		{[]string{"-batch", "-128"}, "-batch must be >= 1"},
		{[]string{"-batch", "3000", "-train_size", "2000"}, "-batch 3000 is larger than the training set (2000 images; -train_size)"},
		{[]string{"-hidden", "-4"}, "-hidden"},
		{[]string{"-train_size", "-1"}, "-train_size"},
		{[]string{"-test_size", "-1"}, "-test_size"},
		{[]string{"-latent_steps", "-100"}, "-latent_steps"},
		{[]string{"-latent_batch", "-1"}, "-latent_batch"},
		{[]string{"-latent_width", "-1"}, "-latent_width"},
		{[]string{"-latent_layers", "-1"}, "-latent_layers"},
		{[]string{"-k", "-1"}, "-k must be >= 1"},
		{[]string{"-class_embed", "-1"}, "-class_embed"},
		{[]string{"-checkpoint_every", "-1"}, "-checkpoint_every"},
		{[]string{"-lr", "-1"}, "-lr must be a finite number >= 0"},
		{[]string{"-latent_lr", "NaN"}, "-latent_lr"},
		{[]string{"-beta_max", "-20"}, "-beta_max"},
		{[]string{"-guidance", "-1"}, "-guidance must be a finite number >= 0"},
		{[]string{"-p_uncond", "2"}, "-p_uncond must be a probability <= 1"},
		{[]string{"-samples", "3"}, "-samples must be >= 10"},
		{[]string{"-samples", "-3"}, "-samples must be >= 1"},
		{[]string{"-compare_latent", "1"}, "-compare_latent must be 0 (none) or a latent dimension in [2, 1024]"},
		{[]string{"-compare_latent", "-8"}, "-compare_latent"},
		{[]string{"-lr_schedule", "cubic"}, "-lr_schedule \"cubic\": want constant, cosine or exponential"},
		{[]string{"-epochs", "ten"}, "-epochs"},
		{[]string{"-no-such-flag"}, "no-such-flag"},
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

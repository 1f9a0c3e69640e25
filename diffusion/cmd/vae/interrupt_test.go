package main

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/cmd/internal/interrupttest"
)

// TestMainChild is the child process of TestCtrlCSavesAndResumes.
func TestMainChild(t *testing.T) { interrupttest.Child(t, "vae", main) }

// Ctrl-C (SIGINT) during training saves the training state and exits with status 130 and
// the one-line message "interrupted at step k of n; saved, re-run to resume" (no stack trace);
// running the same command again resumes from step k and finishes.
func TestCtrlCSavesAndResumes(t *testing.T) {
	out := t.TempDir()
	ckpt := filepath.Join(out, "checkpoints")
	interrupttest.Run(t, interrupttest.Case{
		Args:        "-out " + filepath.Join(out, "figs") + " -checkpoints " + ckpt + " -preset smoke -epochs 2 -hidden 16 -train_size 1000 -test_size 100 -batch 10 -checkpoint_every 2 train",
		Out:         out,
		State:       filepath.Join(ckpt, "vae_dz2.training", "state", "model.json"),
		Interrupted: regexp.MustCompile(`^vae: interrupted at step (\d+) of 200; saved, re-run to resume`),
		Steps:       200,
		Finished:    "trained, saved to",
		Model:       filepath.Join(ckpt, "vae_dz2", "model.json"),
		Workspace:   filepath.Join(ckpt, "vae_dz2.training"),
	})
}

package main

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/cmd/internal/interrupttest"
)

// TestMainChild is the child process of TestCtrlCSavesAndResumes.
func TestMainChild(t *testing.T) { interrupttest.Child(t, "spiral", main) }

// Ctrl-C (SIGINT) during training saves the training state and exits with status 130 and
// the one-line message "interrupted at step k of n; saved, re-run to resume" (no stack trace);
// running the same command again resumes from step k and finishes.
func TestCtrlCSavesAndResumes(t *testing.T) {
	out := t.TempDir()
	ckpt := filepath.Join(out, "checkpoints")
	interrupttest.Run(t, interrupttest.Case{
		Args:        "-out " + filepath.Join(out, "figs") + " -checkpoints " + ckpt + " -preset smoke -steps 300 -width 16 -layers 1 -samples 100 -likelihood_points 10 -checkpoint_every 2 train",
		Out:         out,
		State:       filepath.Join(ckpt, "spiral_hyvarinen.training", "state", "model.json"),
		Interrupted: regexp.MustCompile(`^spiral: train: hyvarinen score: interrupted at step (\d+) of 300; saved, re-run to resume`),
		Steps:       300,
		Finished:    "trained, saved to",
		Model:       filepath.Join(ckpt, "spiral_hyvarinen", "model.json"),
		Workspace:   filepath.Join(ckpt, "spiral_hyvarinen.training"),
	})
}

package main

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/cmd/internal/interrupttest"
)

// TestMainChild is the child process of TestCtrlCSavesAndResumes.
func TestMainChild(t *testing.T) { interrupttest.Child(t, "mnist", main) }

// Ctrl-C (SIGINT) during `mnist train` saves the training state and exits with status 130 and
// the one-line message "interrupted at step k of n; saved, re-run to resume" (no stack trace);
// running the same command again resumes from step k and finishes.
func TestCtrlCSavesAndResumes(t *testing.T) {
	out := t.TempDir()
	ckpt := filepath.Join(out, "checkpoints")
	interrupttest.Run(t, interrupttest.Case{
		Args:        "train -task mnist_denoiser -preset smoke -steps 16 -checkpoint-every 2",
		Out:         out,
		State:       filepath.Join(ckpt, "mnist_denoiser.training", "state", "model.json"),
		Interrupted: regexp.MustCompile(`^mnist: mnistrun: mnist_denoiser: interrupted at step (\d+) of 16; saved, re-run to resume`),
		Steps:       16,
		Finished:    "trained mnist_denoiser",
		Model:       filepath.Join(ckpt, "mnist_denoiser", "model.json"),
		Workspace:   filepath.Join(ckpt, "mnist_denoiser.training"),
	})
}

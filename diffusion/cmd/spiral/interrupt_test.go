package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godiffusion/notebooks/diffusion/workdir"
)

// With SPIRAL_CMD_ARGS set, TestMainChild runs the command's main with those arguments
// (space-separated): the child process of TestCtrlCSavesAndResumes.
func TestMainChild(t *testing.T) {
	args := os.Getenv("SPIRAL_CMD_ARGS")
	if args == "" {
		t.Skip("the child process of TestCtrlCSavesAndResumes")
	}
	os.Args = append([]string{"spiral"}, strings.Fields(args)...)
	main()
	os.Exit(0)
}

// command starts the command as a child process with the outputs directory out.
func command(t *testing.T, out, args string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SPIRAL_CMD_ARGS="+args, workdir.EnvVar+"="+out, "GODEBUG=asyncpreemptoff=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stdout, &stderr
}

// Ctrl-C (SIGINT) during training saves the training state and exits with status 130 and
// the one-line message "interrupted at step k of n; saved, re-run to resume" (no stack trace);
// running the same command again resumes from step k and finishes.
func TestCtrlCSavesAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	out := t.TempDir()
	ckpt := filepath.Join(out, "checkpoints")
	args := "-out " + filepath.Join(out, "figs") + " -checkpoints " + ckpt + " -preset smoke -steps 300 -width 16 -layers 1 -samples 100 -likelihood_points 10 -checkpoint_every 2 train"
	cmd, _, stderr := command(t, out, args)
	state := filepath.Join(ckpt, "spiral_hyvarinen.training", "state", "model.json")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(state); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no training state after 60 s: %s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	msg := strings.TrimSpace(stderr.String())
	m := regexp.MustCompile(`^spiral: train: hyvarinen score: interrupted at step (\d+) of 300; saved, re-run to resume`).FindStringSubmatch(msg)
	if code := cmd.ProcessState.ExitCode(); code != 130 || m == nil || strings.Contains(msg, "goroutine") || strings.Contains(msg, "\n") {
		t.Fatalf("after SIGINT: exit status %d, standard error:\n%s", code, msg)
	}
	t.Logf("after SIGINT (exit 130): %s", msg)
	cmd, stdout, stderr := command(t, out, args)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("re-run: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "resuming from step "+m[1]+" of 300") || !strings.Contains(stdout.String(), "trained, saved to") {
		t.Errorf("re-run output:\n%s\n%s", stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(ckpt, "spiral_hyvarinen", "model.json")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(ckpt, "spiral_hyvarinen.training")); !os.IsNotExist(err) {
		t.Errorf("the workspace is left after the finished training: %v", err)
	}
}

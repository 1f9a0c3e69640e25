package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/tensorfile"
	"github.com/godiffusion/notebooks/diffusion/workdir"
)

// sample writes the digits of a trained task as .npy files and a grid; bad flags are errors.
func TestSampleCommand(t *testing.T) {
	t.Setenv(workdir.EnvVar, t.TempDir())
	if err := run([]string{"train", "-task", "mnist_ddpm", "-preset", "smoke"}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := run([]string{"sample", "-task", "mnist_ddpm", "-preset", "smoke", "-per-class", "2", "-sampler", "dpm++2m", "-sample-steps", "4", "-out", out}); err != nil {
		t.Fatal(err)
	}
	x, shape, err := tensorfile.ReadNPY(filepath.Join(out, "mnist_ddpm_samples.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shape, []int{20, 28, 28}) || slices.Max(x) > 1 || slices.Min(x) < 0 {
		t.Errorf("samples: shape %v, range [%g, %g]", shape, slices.Min(x), slices.Max(x))
	}
	l, err := tensorfile.ReadNPYTensor(filepath.Join(out, "mnist_ddpm_samples_labels.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Int64s) != 20 || l.Int64s[0] != 0 || l.Int64s[19] != 9 {
		t.Errorf("labels %v", l.Int64s)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sample", "-task", "mnist_ddpm", "-preset", "smoke", "-sampler", "bogus"}, "-sampler"},
		{[]string{"sample", "-task", "mnist_ddpm", "-preset", "smoke", "-per-class", "-1"}, "-per-class"},
		{[]string{"sample", "-task", "mnist_flow_time", "-preset", "smoke"}, "no trained model"},
		{[]string{"sample", "-task", "nope", "-preset", "smoke"}, "unknown -task"},
	} {
		if err := run(c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.args, err, c.want)
		}
	}
}

// Bad command lines are usage errors (exit status 2) naming the flag, and write nothing.
func TestBadInputIsAUsageError(t *testing.T) {
	out := t.TempDir()
	t.Setenv(workdir.EnvVar, out)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"fly"}, "unknown command"},
		{[]string{"sample", "-task", "mnist_ddpm", "-preset", "huge"}, "-preset"},
		{[]string{"sample", "-task", "mnist_ddpm", "-sampler", "bogus"}, "-sampler"},
		{[]string{"train", "-task", "mnist_ddpm", "-steps", "-5"}, "-steps"},
		{[]string{"score", "-task", "mnist_ddpm", "-guidance", "-1"}, "-guidance"},
		{[]string{"train", "-task", "mnist_ddpm", "-modulation", "mul"}, "-modulation"},
		{[]string{"train", "-task", "nope"}, "unknown -task"},
		{[]string{"train", "-no-such-flag"}, "no-such-flag"},
		{[]string{"train", "-task", "mnist_ddpm", "-batch", "-2"}, "-batch"},
		{[]string{"train", "-task", "mnist_ddpm", "-lr", "-0.1"}, "-lr"},
		{[]string{"train", "-task", "mnist_ddpm", "-width", "-4"}, "-width"},
		{[]string{"train", "-task", "mnist_ddpm", "-workers", "-1"}, "-workers"},
		{[]string{"score", "-task", "mnist_ddpm", "-sample-steps", "-1"}, "-sample-steps"},
		{[]string{"sample", "-task", "mnist_ddpm", "-per-class", "-3"}, "-per-class"},
		{[]string{"train", "-task", "mnist_ddpm", "-checkpoint-every", "-1"}, "-checkpoint-every"},
		{[]string{"train", "-task", "mnist_ddpm", "-steps", "many"}, "-steps"},
	} {
		err := run(c.args)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want a usage error with %q", c.args, err, c.want)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("bad command lines wrote %d entries into the outputs directory", len(entries))
	}
}

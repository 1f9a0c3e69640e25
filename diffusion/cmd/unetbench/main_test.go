package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
	"github.com/godiffusion/notebooks/diffusion/nets"
)

// Bad flags are usage errors (exit status 2) on one line naming the flag, before anything is
// timed.
func TestBadFlagsAreUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"-rounds", "0"}, []string{"-rounds 0", ">= 1"}},
		{[]string{"-steps", "-1"}, []string{"-steps", ">= 1"}},
		{[]string{"-threads", "0"}, []string{"-threads", ">= 1"}},
		{[]string{"-workers", "0"}, []string{"-workers 0", ">= 1"}},
		{[]string{"-cases", "train-d32,nosuch"}, []string{"-cases", "nosuch", "train-d16-ddpm"}},
		{[]string{"-torch", filepath.Join(t.TempDir(), "missing.py")}, []string{"-torch", "missing.py"}},
		{[]string{"-nosuchflag"}, []string{"nosuchflag"}},
		{[]string{"now"}, []string{"unexpected argument"}},
	} {
		err := run(c.args, io.Discard)
		if cliusage.ExitCode(err) != 2 || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want a one-line usage error", c.args, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q does not say %q", c.args, err, w)
			}
		}
	}
}

func TestParseTorch(t *testing.T) {
	out := "torch 1.13 threads=2 D=16\n" +
		"RESULT torch_unet_train D=16 batch=64 first=412.0ms median_step=201.5ms min=190.0ms loss=0.2\n" +
		"RESULT torch_unet_forward D=16 batch=200 first=90.0ms median_step=75.25ms min=70.0ms\n"
	if v, err := parseTorch(out, true); err != nil || v != 201.5 {
		t.Errorf("train: %v, %v; want 201.5", v, err)
	}
	if v, err := parseTorch(out, false); err != nil || v != 75.25 {
		t.Errorf("forward: %v, %v; want 75.25", v, err)
	}
	if _, err := parseTorch("RESULT torch_unet_forward D=16\n", true); err == nil {
		t.Error("no train line: no error")
	}
	if _, err := parseTorch("RESULT torch_unet_train D=16 min=3ms\n", true); err == nil {
		t.Error("no median_step: no error")
	}
}

// The PyTorch twin of every case has as many trainable parameters as the Go network it is
// compared with (the same layers: sinusoidal embedding, conditioning and widths included).
func TestTorchTwinHasTheSameParameters(t *testing.T) {
	const python, script = "/usr/bin/python3", "../../../bench/torch_unet.py"
	if err := exec.Command(python, "-c", "import torch").Run(); err != nil {
		t.Skipf("PyTorch is not available in %s (%v): the twin's parameter count is not checked", python, err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatal(err)
	}
	be, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	all, err := cases()
	if err != nil {
		t.Fatal(err)
	}
	params := regexp.MustCompile(`params=(\d+)`)
	seen := map[string]bool{}
	for _, c := range all {
		flags := strings.Join(c.torch[:len(c.torch)-4], " ") // without mode and batch
		if seen[flags] {
			continue
		}
		seen[flags] = true
		args := append([]string{script, "--threads", "1", "--warmup", "0", "--steps", "1"}, c.torch...)
		args[len(args)-1] = "2" // the smallest batch: only the count matters
		out, err := exec.Command(python, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.name, err, out)
		}
		m := params.FindSubmatch(out)
		if m == nil {
			t.Fatalf("%s: no params= in %q", c.name, out)
		}
		want, _ := strconv.Atoi(string(m[1]))
		if got := goParameters(t, be, c.cfg); got != want {
			t.Errorf("%s (%s): Go has %d trainable parameters, PyTorch %d", c.name, flags, got, want)
		}
	}
}

// goParameters builds the UNet cfg (without compiling it) and counts its trainable parameters.
func goParameters(t *testing.T, be compute.Backend, cfg nets.UNetConfig) int {
	t.Helper()
	store := model.NewStore()
	g := NewGraph(be, "parameters")
	x := Parameter(g, "x", shapes.Make(dtypes.Float32, 2, cfg.ImageSize, cfg.ImageSize, cfg.Channels))
	var tt, c *Node
	if cfg.TimeConditioned {
		tt = Parameter(g, "t", shapes.Make(dtypes.Float32, 2))
	}
	if cfg.NumClasses > 0 {
		c = Parameter(g, "c", shapes.Make(dtypes.Float32, 2, cfg.NumClasses))
	}
	nets.UNet(store.RootScope().In("unet"), cfg, x, tt, c)
	n := 0
	for v := range store.IterVariables() {
		if v.Trainable {
			n += v.Shape().Size()
		}
	}
	return n
}

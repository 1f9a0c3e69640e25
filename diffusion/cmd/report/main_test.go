package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
)

// Bad flags and arguments are usage errors (exit status 2) on one line naming the flag and
// the accepted values, before any notebook runs; nothing is written into -out.
func TestBadFlagsAreUsageErrors(t *testing.T) {
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out")
	nb := filepath.Join(tmp, "a.ipynb")
	if err := os.WriteFile(nb, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		preset  string
		timeout time.Duration
		paths   []string
		want    []string
	}{
		{"huge", time.Minute, []string{nb}, []string{"-preset", "smoke, cpu, paper"}},
		{"smoke", 0, []string{nb}, []string{"-cell-timeout", "> 0"}},
		{"smoke", -time.Second, []string{nb}, []string{"-cell-timeout", "> 0"}},
		{"smoke", time.Minute, []string{filepath.Join(tmp, "missing.ipynb")}, []string{"missing.ipynb", "no such file"}},
		{"smoke", time.Minute, []string{filepath.Join(tmp, "notes.txt")}, []string{"notes.txt", ".ipynb"}},
		{"smoke", time.Minute, []string{tmp + "/"}, []string{".ipynb"}},
	} {
		err := run(c.preset, out, "gonb", false, c.timeout, c.paths)
		if cliusage.ExitCode(err) != 2 || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v, want a one-line usage error", c, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %q does not say %q", c, err, w)
			}
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%+v: created %s", c, out)
		}
	}
}

package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
)

// Bad flags and atlas files are usage errors (exit status 2) on one line naming the flag and
// the accepted values; no CSV is written.
func TestBadFlagsAreUsageErrors(t *testing.T) {
	tmp := t.TempDir()
	notJSON := filepath.Join(tmp, "atlas.json")
	if err := os.WriteFile(notJSON, []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "states.csv")
	good := config{atlas: notJSON, out: out, perState: 10, jitter: 0.01, minFraction: 0.02}
	for _, c := range []struct {
		edit func(*config)
		want []string
	}{
		{func(c *config) { c.atlas = "" }, []string{"-atlas is required"}},
		{func(c *config) { c.perState = 0 }, []string{"-points", ">= 1", "0"}},
		{func(c *config) { c.perState = -4 }, []string{"-points", ">= 1"}},
		{func(c *config) { c.jitter = -1 }, []string{"-jitter", ">= 0"}},
		{func(c *config) { c.minFraction = 1.5 }, []string{"-min-area", "[0, 1)"}},
		{func(c *config) { c.out = "" }, []string{"-out"}},
		{func(c *config) { c.atlas = filepath.Join(tmp, "missing.json") }, []string{"-atlas", "missing.json", "no such file"}},
		{func(*config) {}, []string{"-atlas", "atlas.json", "TopoJSON"}},
	} {
		cfg := good
		c.edit(&cfg)
		err := run(cfg, io.Discard)
		if cliusage.ExitCode(err) != 2 || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v, want a one-line usage error", cfg, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %q does not say %q", cfg, err, w)
			}
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%+v: wrote %s", cfg, out)
		}
	}
}

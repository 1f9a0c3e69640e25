package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
	"github.com/godiffusion/notebooks/diffusion/workdir"
)

// Bad flags are usage errors (exit status 2) on one line naming the flag and the accepted
// values, before anything is loaded, trained or written.
func TestBadFlagsAreUsageErrors(t *testing.T) {
	out := t.TempDir()
	t.Setenv(workdir.EnvVar, out)
	dir := filepath.Join(out, "ckpt")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"-preset", "huge"}, []string{"-preset", "huge", "smoke, cpu, paper"}},
		{[]string{"-nosuchflag"}, []string{"nosuchflag"}},
		{[]string{"-retrain=maybe"}, []string{"-retrain", "invalid"}},
		{[]string{"train"}, []string{"unexpected argument", "-preset"}},
	} {
		err := run(append([]string{"-dir", dir}, c.args...))
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
	if entries, _ := os.ReadDir(out); len(entries) > 0 {
		t.Errorf("bad flags wrote %v", entries)
	}
}

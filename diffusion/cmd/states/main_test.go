package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
)

// Bad commands and flags are usage errors (exit status 2) on one line naming the flag and the
// accepted values; nothing is written into -out.
func TestBadFlagsAreUsageErrors(t *testing.T) {
	tmp := t.TempDir()
	notPT := filepath.Join(tmp, "notpt.pt")
	if err := os.WriteFile(notPT, []byte("not a torch file"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"fly"}, []string{`unknown command "fly"`, "train, classify, sample, guide, score or all"}},
		{[]string{"train", "-preset", "huge"}, []string{"-preset", "smoke, cpu, paper"}},
		{[]string{"train", "-steps", "-5"}, []string{"-steps", ">= 0", "-5"}},
		{[]string{"train", "-batch", "-1"}, []string{"-batch", ">= 0"}},
		{[]string{"classify", "-csteps", "-1"}, []string{"-csteps", ">= 0"}},
		{[]string{"classify", "-cbatch", "-2"}, []string{"-cbatch", ">= 0"}},
		{[]string{"train", "-lr", "-0.1"}, []string{"-lr", ">= 0"}},
		{[]string{"classify", "-clr", "NaN"}, []string{"-clr", ">= 0"}},
		{[]string{"guide", "-scale", "-1"}, []string{"-scale", ">= 0", "-1"}},
		{[]string{"sample", "-autoguide-w", "-2"}, []string{"-autoguide-w", ">= 0"}},
		{[]string{"sample", "-autoguide-weak", "-2"}, []string{"-autoguide-weak", ">= 0"}},
		{[]string{"sample", "-samples", "-10"}, []string{"-samples", ">= 0"}},
		{[]string{"sample", "-sampler", "euler2"}, []string{"-sampler", "euler2", "ddpm-posterior"}},
		{[]string{"sample", "-autoguide-interval", "99"}, []string{"-autoguide-interval", "lo,hi"}},
		{[]string{"guide", "-autoguide-interval", "100,5"}, []string{"-autoguide-interval", "lo <= hi"}},
		{[]string{"guide", "-ddim", "-3"}, []string{"-ddim", ">= 0"}},
		{[]string{"guide", "-guidance-interval", "400"}, []string{"-guidance-interval", "lo,hi"}},
		{[]string{"train", "-workers", "-1"}, []string{"-workers", ">= 0"}},
		{[]string{"train", "-time-skew", "0.5"}, []string{"-time-skew", ">= 1"}},
		{[]string{"train", "-steps", "ten"}, []string{"-steps", "invalid value"}},
		{[]string{"train", "-nosuchflag"}, []string{"nosuchflag"}},
		{[]string{"train", "extra"}, []string{"unexpected argument", "extra"}},
		{[]string{"train", "-preset", "smoke", "-data", filepath.Join(tmp, "missing.pt")}, []string{"-data", "missing.pt", "builtin"}},
		{[]string{"train", "-preset", "smoke", "-data", notPT}, []string{"-data", "notpt.pt"}},
		{[]string{"train", "-preset", "smoke", "-batch", "1000000"}, []string{"-batch 1000000", "larger than the", "training points"}},
	} {
		cmd, o, err := parse(append(c.args, "-out", out))
		if err == nil {
			err = run(cmd, o)
		}
		if cliusage.ExitCode(err) != 2 || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want a one-line usage error", c.args, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q does not say %q", c.args, err, w)
			}
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%v: created %s", c.args, out)
		}
	}
}

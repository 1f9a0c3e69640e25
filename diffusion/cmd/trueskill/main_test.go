package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
)

func TestTasksWriteTablesAndFigures(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run([]string{"-preset", "smoke", "-samples", "500", "-out", dir, "model", "gibbs", "ep", "season"}, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"p(y = +1)", "| 4000 |", "exact (grid 201²)", "message passing (EP)", "| rank | team | mean | variance |", "prediction rate"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, f := range []string{"factor_graph", "gibbs_trace", "gibbs_histogram", "gibbs_vs_ep"} {
		b, err := os.ReadFile(filepath.Join(dir, f+".png"))
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s.png: %v", f, err)
		}
	}
}

func TestCSVFlag(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.csv")
	csv := "team1,team2,score1,score2\nA,B,2,0\nB,C,1,1\nC,A,0,3\nB,A,1,2\nC,B,0,1\nA,C,2,2\n"
	if err := os.WriteFile(good, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-preset", "smoke", "-csv", good, "-out", dir, "season"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "3 teams, 6 matches") || !strings.Contains(out.String(), "| 1 | A |") {
		t.Errorf("season from CSV:\n%s", out.String())
	}
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("team1,team2,score1,score2\nA,B,2,x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run([]string{"-preset", "smoke", "-csv", bad, "-out", dir, "season"}, &out)
	if err == nil || !strings.Contains(err.Error(), "bad.csv") || !strings.Contains(err.Error(), `line 2: score2 = "x"`) {
		t.Errorf("malformed CSV: %v", err)
	}
}

// Bad flags and tasks are usage errors (exit status 2) on one line naming the flag and the
// accepted values; nothing is written.
func TestBadArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"-preset", "huge"}, []string{"preset", "smoke, cpu, paper"}},
		{[]string{"-samples", "-3", "gibbs"}, []string{"samples", "-3", ">= 0"}},
		{[]string{"-orders", "-1"}, []string{"orders", ">= 0"}},
		{[]string{"-seasons", "-2"}, []string{"seasons", ">= 0"}},
		{[]string{"-burnin", "-5"}, []string{"burnin", ">= 0"}},
		{[]string{"nosuchtask"}, []string{"nosuchtask", "model", "all"}},
		{[]string{"-grid", "3", "ep"}, []string{"grid", "16 to 8192"}},
		{[]string{"-grid", "x"}, []string{"-grid", "invalid value"}},
		{[]string{"-nosuchflag"}, []string{"nosuchflag"}},
	} {
		var out bytes.Buffer
		dir := filepath.Join(t.TempDir(), "out")
		err := run(append(c.args, "-out", dir), &out)
		if cliusage.ExitCode(err) != 2 || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want a one-line usage error", c.args, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q does not say %q", c.args, err, w)
			}
		}
		if _, serr := os.Stat(dir); serr == nil || out.Len() > 0 {
			t.Errorf("%v: wrote %q or created %s", c.args, out.String(), dir)
		}
	}
}

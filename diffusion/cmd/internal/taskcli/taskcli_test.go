package taskcli

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSelect(t *testing.T) {
	all := []string{"a", "b"}
	for _, todo := range [][]string{nil, {"all"}, {"b", "all"}} {
		if got, err := Select(todo, all); err != nil || !slices.Equal(got, all) {
			t.Errorf("Select(%v) = %v, %v", todo, got, err)
		}
	}
	if got, err := Select([]string{"b"}, all); err != nil || !slices.Equal(got, []string{"b"}) {
		t.Errorf("Select(b) = %v, %v", got, err)
	}
	if _, err := Select([]string{"c"}, all); err == nil || !strings.Contains(err.Error(), `"c"`) {
		t.Errorf("Select(c): %v", err)
	}
}

func TestDirsAndFigures(t *testing.T) {
	root := t.TempDir()
	t.Setenv("DIFFUSION_OUTPUTS", root)
	out, err := OutDir("", "x")
	if err != nil || out != filepath.Join(root, "x") {
		t.Errorf("OutDir default = %q, %v", out, err)
	}
	own := filepath.Join(root, "own")
	if out, err = OutDir(own, "x"); err != nil || out != own {
		t.Errorf("OutDir(own) = %q, %v", out, err)
	}
	if d, err := CheckpointDir(filepath.Join(root, "ck"), "m"); err != nil || d != filepath.Join(root, "ck", "m") {
		t.Errorf("CheckpointDir = %q, %v", d, err)
	}
	var log strings.Builder
	f := Figures{Dir: own, W: &log}
	if err := f.Save("fig", []byte("png"), nil); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(own, "fig.png")); err != nil || string(data) != "png" || !strings.Contains(log.String(), "fig.png") {
		t.Errorf("saved %q, %v; log %q", data, err, log.String())
	}
	if err := f.Save("bad", nil, errors.New("boom")); err == nil || !strings.Contains(err.Error(), "bad: boom") {
		t.Errorf("Save with an error: %v", err)
	}
}

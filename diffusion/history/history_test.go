package history

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type run struct {
	Loss     []float64         `json:"loss"`
	LR       float64           `json:"lr"`
	Progress func(step int)    `json:"-"`
	Extra    map[string]string `json:"extra,omitempty"`
}

func TestSaveLoadSame(t *testing.T) {
	dir := t.TempDir()
	var h run
	if found, err := Load(dir, &h); found || err != nil {
		t.Fatalf("missing file: found %v, %v", found, err)
	}
	if err := Save(dir, run{Loss: []float64{1, 0.5}, LR: 0.1}); err != nil {
		t.Fatal(err)
	}
	if found, err := Load(dir, &h); !found || err != nil || len(h.Loss) != 2 || h.LR != 0.1 {
		t.Fatalf("Load: %+v, %v, %v", h, found, err)
	}
	if err := os.WriteFile(filepath.Join(dir, File), []byte("{truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, &h); err == nil || !strings.Contains(err.Error(), File) {
		t.Errorf("malformed file: %v", err)
	}
	a, b := run{LR: 1, Progress: func(int) {}}, run{LR: 1}
	if !Same(a, b) {
		t.Error("callbacks made two configurations differ")
	}
	if b.LR = 2; Same(a, b) {
		t.Error("different learning rates are the same")
	}
	if Same(func() {}, func() {}) {
		t.Error("values that cannot be encoded compared the same")
	}
}

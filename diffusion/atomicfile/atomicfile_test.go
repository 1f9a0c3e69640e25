package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "a.png")
	if err := Write(path, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("yy")); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	entries, _ := os.ReadDir(filepath.Dir(path))
	if string(got) != "yy" || len(entries) != 1 {
		t.Errorf("content %q, %d files in dir (temp files left?)", got, len(entries))
	}
}

package workdir

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRootFindsThisCheckout(t *testing.T) {
	root := Root(".")
	if root == "" {
		t.Fatal("Root(\".\") found no checkout from the package directory")
	}
	if _, err := os.Stat(filepath.Join(root, "diffusion", "workdir")); err != nil {
		t.Fatalf("Root = %q does not contain diffusion/workdir: %v", root, err)
	}
	if got := Root(t.TempDir()); got != "" {
		t.Errorf("Root(temp dir) = %q, want \"\"", got)
	}
}

func TestOutputsHonoursEnv(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	t.Setenv(EnvVar, dir)
	got, err := Sub("checkpoints")
	if err != nil {
		t.Fatal(err)
	}
	if got != filepath.Join(dir, "checkpoints") {
		t.Errorf("Sub = %q", got)
	}
	if fi, err := os.Stat(got); err != nil || !fi.IsDir() {
		t.Errorf("Sub did not create %q", got)
	}
	ck, err := Checkpoint("denoiser")
	if err != nil || ck != filepath.Join(dir, "checkpoints", "denoiser") {
		t.Errorf("Checkpoint = %q, %v", ck, err)
	}
	if _, err := Checkpoint("../x"); err == nil {
		t.Error("Checkpoint(\"../x\") gave no error")
	}
}

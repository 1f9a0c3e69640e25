// Package workdir says where a run writes its files: deliverables (samples, plots) and
// checkpoints, so that notebook cells, which are separate programs, find what earlier
// cells saved.
//
// The outputs directory is $DIFFUSION_OUTPUTS when set, otherwise "outputs" at the root
// of the project checkout (found from the notebook's directory or the current one), or
// "outputs" in the current directory outside a checkout.
package workdir

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvVar overrides the outputs directory.
const EnvVar = "DIFFUSION_OUTPUTS"

// ModulePath is the Go module path of this project, used to recognise its checkout.
const ModulePath = "github.com/godiffusion/notebooks"

// Root returns the root of the project checkout containing dir (or one of its parents),
// or "" when dir is not inside one.
func Root(dir string) string {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(firstLine(string(data)), ModulePath) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Outputs returns the outputs directory (see the package comment), creating it.
func Outputs() (string, error) {
	dir := os.Getenv(EnvVar)
	if dir == "" {
		start := os.Getenv("GONB_DIR") // a GoNB cell runs in a temp dir; GONB_DIR is the notebook's
		if start == "" {
			start = "."
		}
		root := Root(start)
		if root == "" {
			root = "."
		}
		dir = filepath.Join(root, "outputs")
	}
	return ensure(dir)
}

// Sub returns a subdirectory of the outputs directory, creating it, e.g.
// Sub("checkpoints", "states_denoiser").
func Sub(elem ...string) (string, error) {
	out, err := Outputs()
	if err != nil {
		return "", err
	}
	return ensure(filepath.Join(append([]string{out}, elem...)...))
}

// Checkpoint returns the directory of the named checkpoint under outputs/checkpoints,
// creating its parent (not the checkpoint itself, so its absence means "not trained").
func Checkpoint(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", fmt.Errorf("invalid checkpoint name %q", name)
	}
	dir, err := Sub("checkpoints")
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

func ensure(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("creating outputs directory: %w", err)
	}
	return abs, nil
}

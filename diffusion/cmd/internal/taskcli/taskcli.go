// Package taskcli holds what the task-style commands (spiral, trueskill, vae: `cmd [flags]
// [task...]`) share: choosing the tasks, the output and checkpoint directories, and writing
// figures.
package taskcli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/godiffusion/notebooks/diffusion/atomicfile"
	"github.com/godiffusion/notebooks/diffusion/workdir"
)

// Select returns the tasks to run: all of tasks when todo is empty or names "all", else todo,
// each of which must be one of tasks.
func Select(todo, tasks []string) ([]string, error) {
	if len(todo) == 0 || slices.Contains(todo, "all") {
		return tasks, nil
	}
	for _, t := range todo {
		if !slices.Contains(tasks, t) {
			return nil, fmt.Errorf("unknown task %q: want one of %v or all", t, tasks)
		}
	}
	return todo, nil
}

// OutDir returns the figures' directory: dir when set (created), else outputs/<sub>.
func OutDir(dir, sub string) (string, error) {
	if dir == "" {
		return workdir.Sub(sub)
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// CheckpointDir returns the directory of checkpoint name: under dir when set (dir created),
// else under outputs/checkpoints.
func CheckpointDir(dir, name string) (string, error) {
	if dir == "" {
		return workdir.Checkpoint(name)
	}
	return filepath.Join(dir, name), os.MkdirAll(dir, 0o755)
}

// Figures writes PNG figures into dir and reports each on w.
type Figures struct {
	Dir string
	W   io.Writer
}

// Save writes png (or returns err, naming the figure) as dir/name.png, atomically.
func (f Figures) Save(name string, png []byte, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	path := filepath.Join(f.Dir, name+".png")
	if err := atomicfile.Write(path, png); err != nil {
		return err
	}
	fmt.Fprintln(f.W, "wrote", path)
	return nil
}

// Named returns Save for the figure name, to take a figure function's (png, err) results
// directly: figs.Named("loss")(LossFigure(...)).
func (f Figures) Named(name string) func(png []byte, err error) error {
	return func(png []byte, err error) error { return f.Save(name, png, err) }
}

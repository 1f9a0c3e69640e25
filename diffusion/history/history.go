// Package history is the one home of a training run's record next to its checkpoint: the
// JSON file every trainer writes (losses, the configuration it was trained with, probes), and
// the comparison load-or-train uses to decide whether a saved model was trained with the
// configuration asked for.
package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/godiffusion/notebooks/diffusion/atomicfile"
)

// File is the name of the history in a checkpoint directory.
const File = "history.json"

// Save writes v (a history struct) as JSON to dir/File, atomically.
func Save(dir string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return atomicfile.Write(filepath.Join(dir, File), raw)
}

// Load reads dir/File into v. found is false, and v unchanged, when there is no such file
// (checkpoints saved without a history); a malformed file is an error naming it.
func Load(dir string, v any) (found bool, err error) {
	path := filepath.Join(dir, File)
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("history: %s: %w", path, err)
	}
	return true, nil
}

// Same reports whether two configurations are the same as saved: equal JSON encodings
// (fields tagged `json:"-"`, such as callbacks, do not count). A value that cannot be
// encoded is never the same.
func Same(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

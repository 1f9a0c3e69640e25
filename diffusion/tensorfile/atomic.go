package tensorfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes the output of write to path atomically: the bytes go
// to a temporary file in the same directory, which is synced, closed and then
// renamed over path. On any error the temporary file is removed and path is
// left untouched.
func WriteFileAtomic(path string, write func(f *os.File) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("tensorfile: create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("tensorfile: sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("tensorfile: close %s: %w", tmp, err)
	}
	if err = os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("tensorfile: chmod %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tensorfile: rename %s to %s: %w", tmp, path, err)
	}
	return nil
}

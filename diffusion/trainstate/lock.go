package trainstate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Lock is an exclusive lock, held by this process, on a lock file. On Unix it is an flock(2)
// lock, which the kernel releases when the process dies (a killed training leaves no stale
// lock); the file holds the holder's process id for the error message of others.
type Lock struct {
	f    *os.File
	path string
}

// LockedError is the error of Acquire when another process holds the lock.
type LockedError struct {
	Path string
	PID  int // the holder's process id (0 if unknown)
}

// Error names the lock and its holder and says what to do.
func (e *LockedError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("process %d", e.PID)
	}
	return fmt.Sprintf("%s is training into the same checkpoint (lock %s): wait for it to finish or stop it, then re-run", who, e.Path)
}

// Acquire takes the lock file path (creating it and its directory) without waiting: if another
// process holds it, the error is a *LockedError.
func Acquire(path string) (*Lock, error) {
	for range 10 {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("trainstate: lock: %w", err)
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("trainstate: lock: %w", err)
		}
		held, err := tryLock(f)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("trainstate: lock %s: %w", path, err)
		}
		if !held {
			raw := make([]byte, 32)
			n, _ := f.ReadAt(raw, 0)
			_ = f.Close()
			pid, _ := strconv.Atoi(string(bytes.TrimSpace(raw[:n])))
			return nil, &LockedError{Path: path, PID: pid}
		}
		// The holder before us may have removed the file after we opened it: then our lock
		// is on a deleted file; start again.
		fi, err1 := f.Stat()
		pi, err2 := os.Stat(path)
		if err1 != nil || err2 != nil || !os.SameFile(fi, pi) {
			_ = f.Close()
			continue
		}
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		}
		return &Lock{f: f, path: path}, nil
	}
	return nil, fmt.Errorf("trainstate: lock %s keeps changing under us", path)
}

// Release releases the lock; with remove it deletes the lock file first.
func (l *Lock) Release(remove bool) error {
	var err error
	if remove {
		err = os.Remove(l.path)
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

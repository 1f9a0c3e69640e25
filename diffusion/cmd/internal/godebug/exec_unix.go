//go:build unix

package godebug

import (
	"fmt"
	"os"
	"syscall"
)

func reexec() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("godebug: cannot find the running executable to restart it with GODEBUG=%s: %w", Setting, err)
	}
	if err := syscall.Exec(exe, os.Args, Environ(os.Environ())); err != nil {
		return fmt.Errorf("godebug: restarting %s with GODEBUG=%s: %w", exe, Setting, err)
	}
	return nil // not reached
}

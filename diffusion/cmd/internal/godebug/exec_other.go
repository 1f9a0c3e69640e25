//go:build !unix

package godebug

import "fmt"

func reexec() error {
	return fmt.Errorf("godebug: cannot restart with GODEBUG=%s on this platform: set it in the environment", Setting)
}

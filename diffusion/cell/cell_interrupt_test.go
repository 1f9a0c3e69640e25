package cell

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// A cell whose training was interrupted (Jupyter's stop button) ends with the one-line
// message and exit status 130, not a panic with a stack trace; other errors still panic.
func TestMustEndsAnInterruptedCellWithItsMessage(t *testing.T) {
	if os.Getenv("CELL_MUST_CHILD") == "1" {
		Must(&trainstate.InterruptedError{Step: 7, Steps: 40, Dir: "/x/state"})
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMustEndsAnInterruptedCellWithItsMessage$")
	cmd.Env = append(os.Environ(), "CELL_MUST_CHILD=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	if cmd.ProcessState.ExitCode() != 130 || msg != "interrupted at step 7 of 40; saved, re-run to resume (state in /x/state)" {
		t.Errorf("exit %d, standard error %q", cmd.ProcessState.ExitCode(), msg)
	}
	defer func() {
		if recover() == nil {
			t.Error("Must did not panic on an ordinary error")
		}
	}()
	Must(os.ErrNotExist)
}

// Package interrupttest is the Ctrl-C test the training commands share: it runs the
// command's main in a child process (the test binary itself), sends SIGINT once a periodic
// training state is on disk, checks the exit status 130 and the one-line message, re-runs the
// same command and checks that it resumes from the interrupted step and finishes.
package interrupttest

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godiffusion/notebooks/diffusion/workdir"
)

// argsEnv carries the child's arguments.
const argsEnv = "INTERRUPTTEST_CMD_ARGS"

// Child runs main with the arguments of the child process when the test binary was started
// by Run (call it from a TestMainChild of the command's package), and skips otherwise.
func Child(t *testing.T, name string, main func()) {
	args := os.Getenv(argsEnv)
	if args == "" {
		t.Skip("the child process of the command's interrupt test")
	}
	os.Args = append([]string{name}, strings.Fields(args)...)
	main()
	os.Exit(0)
}

// Case is one interrupt-and-resume run of a command.
type Case struct {
	// Args are the command's arguments (space-separated); the outputs directory is Out.
	Args, Out string
	// State is a file that exists once a periodic training state was saved.
	State string
	// Interrupted matches the whole standard error of the interrupted run; its first group is
	// the step it stopped at.
	Interrupted *regexp.Regexp
	// Steps is the number of training steps ("resuming from step k of Steps").
	Steps int
	// Finished is printed on standard output by a finished training; Model exists after it and
	// Workspace (the training workspace) does not.
	Finished, Model, Workspace string
}

// start starts the test binary's TestMainChild with the arguments args.
func start(t *testing.T, c Case) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), argsEnv+"="+c.Args, workdir.EnvVar+"="+c.Out, "GODEBUG=asyncpreemptoff=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stdout, &stderr
}

// Run interrupts the command of c with SIGINT after its first periodic save and checks the
// message, the exit status 130, the resumed re-run, the finished model and the removed
// workspace.
func Run(t *testing.T, c Case) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts child processes")
	}
	cmd, _, stderr := start(t, c)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(c.State); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no training state after 60 s: %s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	msg := strings.TrimSpace(stderr.String())
	m := c.Interrupted.FindStringSubmatch(msg)
	if code := cmd.ProcessState.ExitCode(); code != 130 || m == nil || strings.Contains(msg, "goroutine") || strings.Contains(msg, "\n") {
		t.Fatalf("after SIGINT: exit status %d, standard error:\n%s", code, msg)
	}
	t.Logf("after SIGINT (exit 130): %s", msg)
	cmd, stdout, stderr := start(t, c)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("re-run: %v\n%s", err, stderr)
	}
	resumed := "resuming from step " + m[1] + " of " + strconv.Itoa(c.Steps)
	if !strings.Contains(stdout.String()+stderr.String(), resumed) || !strings.Contains(stdout.String(), c.Finished) {
		t.Errorf("re-run output (want %q and %q):\n%s\n%s", resumed, c.Finished, stdout, stderr)
	}
	if _, err := os.Stat(c.Model); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(c.Workspace); !os.IsNotExist(err) {
		t.Errorf("the workspace is left after the finished training: %v", err)
	}
}

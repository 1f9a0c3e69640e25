// Package godebug makes the command-line tools start with GODEBUG=asyncpreemptoff=1.
//
// With GOEXPERIMENT=simd, Go's asynchronous preemption leaves the upper halves of the vector
// registers dirty; on Intel CPUs every scalar float function that mixes VEX and legacy SSE
// instructions afterwards (math.Exp, math.Tanh, math.FMA) pays the AVX-SSE transition penalty
// (see backend.AsyncPreemptOff). The runtime reads the setting only from the environment at
// start-up: neither //go:debug nor go.mod accept it. So a tool that finds it missing
// re-executes itself, the same binary with the same arguments, with the setting appended to
// GODEBUG. A setting the user gave explicitly (asyncpreemptoff=0 too) is respected, and a
// guard variable makes sure the re-execution happens at most once.
//
// Only commands call this: library code never replaces the process it runs in (a notebook
// kernel gets the setting from its kernelspec).
package godebug

import (
	"os"
	"strings"
)

// GuardVar is set in the environment of the re-executed process, so that it never
// re-executes again (e.g. if the runtime or a wrapper dropped the setting).
const GuardVar = "GODIFFUSION_REEXECUTED"

// Setting is the GODEBUG setting the tools need.
const Setting = "asyncpreemptoff=1"

// Needed reports whether the process should re-execute itself: GODEBUG sets no
// asyncpreemptoff value and the guard variable is unset.
func Needed() bool {
	if os.Getenv(GuardVar) != "" {
		return false
	}
	for _, field := range strings.Split(os.Getenv("GODEBUG"), ",") {
		if strings.HasPrefix(strings.TrimSpace(field), "asyncpreemptoff=") {
			return false
		}
	}
	return true
}

// Environ returns env with Setting appended to its GODEBUG entry (added when missing) and
// GuardVar set.
func Environ(env []string) []string {
	out := make([]string, 0, len(env)+2)
	found := false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			found = true
			if strings.TrimSpace(v) == "" {
				kv = "GODEBUG=" + Setting
			} else {
				kv = "GODEBUG=" + v + "," + Setting
			}
		}
		if strings.HasPrefix(kv, GuardVar+"=") {
			continue
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "GODEBUG="+Setting)
	}
	return append(out, GuardVar+"=1")
}

// Ensure re-executes the running program with Setting when Needed; on success it does not
// return. It returns nil when nothing needs doing, and an error when the re-execution is
// impossible (the caller should go on: the program still runs, only slower on some CPUs).
// Call it first thing in main, before any goroutine starts.
func Ensure() error {
	if !Needed() {
		return nil
	}
	return reexec()
}

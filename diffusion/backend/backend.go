// Package backend selects the GoMLX compute backend that runs the models.
//
// The choice comes from the GOMLX_BACKEND environment variable, as in GoMLX itself,
// with one difference: when the variable is unset or empty the pure-Go backend ("go")
// is used, never XLA, so nothing tries to download a PJRT plugin by default. XLA is
// selected explicitly, e.g. GOMLX_BACKEND=xla:cuda on a machine with an NVIDIA GPU and
// its PJRT plugin installed.
//
// The Go backend runs the ops of a graph one after the other ("ops_sequential"; each op,
// matmuls above all, still uses every core) unless the configuration names another
// ops_* mode. Its parallel op scheduler in github.com/gomlx/compute v0.1.2 deadlocks: it
// runs each ready node as a task of the bounded worker pool (2 x GOMAXPROCS slots), and a
// matrix product inside such a task fans out with workerspool.Saturate, which waits for a
// free slot of the same pool before starting any work of its own; when every slot is held
// by a node waiting in Saturate, none is ever freed (TestParallelScheduler reproduces it
// with 16 independent 256 x 256 products and shows that an unbounded pool,
// "go:parallelism=-1,ops_parallel", finishes the same graph). We saw a training run
// freeze that way; the sequential mode cost ~1.4x per training step then
// (BenchmarkDenoiserTrainStep, batch 1000: 61 ms vs 43 ms). GOMLX_BACKEND=go:ops_parallel
// opts back in (deadlock included); go:parallelism=-1,ops_parallel is the safe form.
//
// New wraps the Go backend in Rewrite with AllRewrites (see Rewrites): transposes that leave
// every axis in place are removed, and matrix products get their operands in the layout the
// backend's fast kernels take.
package backend

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/gomlx/compute"

	// The pure-Go backend (SIMD kernels when built with GOEXPERIMENT=simd) and, where
	// the platform supports it, the XLA backend.
	_ "github.com/gomlx/gomlx/backends/default"
)

// EnvVar is the environment variable that selects the backend, e.g. "go", "xla:cpu" or
// "xla:cuda". It is GoMLX's own variable.
const EnvVar = compute.ConfigEnvVar

// Default is the backend configuration used when EnvVar is unset or empty.
const Default = "go"

// Config returns the backend configuration that New would use: the value of
// GOMLX_BACKEND, or Default when it is unset or empty.
func Config() string {
	if cfg := strings.TrimSpace(os.Getenv(EnvVar)); cfg != "" {
		return cfg
	}
	return Default
}

// New returns the backend chosen by Config. Unknown backend names and backends that
// fail to start (such as XLA without its PJRT plugin) are returned as errors.
func New() (compute.Backend, error) {
	return NewWithConfig(Config())
}

// NewWithConfig returns the backend for a configuration string of the form
// "name[:options]", e.g. "go" or "xla:cuda". An empty string means Default.
func NewWithConfig(config string) (b compute.Backend, err error) {
	config = strings.TrimSpace(config)
	if config == "" {
		config = Default
	}
	config = Effective(config)
	name, _, _ := strings.Cut(config, ":")
	if !Available(name) {
		return nil, fmt.Errorf("backend %q (from %q) is not compiled in; available backends: %s",
			name, config, strings.Join(compute.List(), ", "))
	}
	defer func() {
		// GoMLX panics on some configuration errors; turn them into errors here so a
		// notebook kernel or command line tool can report them.
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("starting backend %q: %v", config, r)
		}
	}()
	b, err = compute.NewWithConfig(config)
	if err != nil {
		return nil, fmt.Errorf("starting backend %q: %w", config, err)
	}
	if name == "go" {
		b = Rewrite(b, AllRewrites)
	}
	return b, nil
}

// Effective returns the configuration New uses for config: Default when empty, and the
// Go backend with "ops_sequential" added unless config names an ops_* mode (see the
// package comment).
func Effective(config string) string {
	config = strings.TrimSpace(config)
	if config == "" {
		config = Default
	}
	name, opts, _ := strings.Cut(config, ":")
	if name != "go" || strings.Contains(opts, "ops_") {
		return config
	}
	if opts == "" {
		return "go:ops_sequential"
	}
	return "go:" + opts + ",ops_sequential"
}

// Available reports whether a backend with this name (without options) is compiled in.
func Available(name string) bool {
	for _, n := range compute.List() {
		if n == name {
			return true
		}
	}
	return false
}

// IsGo reports whether b is the pure-Go backend (as New returns it, or unwrapped; its Name is
// "Go Backend", not the "go" of its configuration).
func IsGo(b compute.Backend) bool {
	if b == nil {
		return false
	}
	if _, ok := b.(elidingBackend); ok {
		return true
	}
	return b.Name() == "go" || b.Name() == "Go Backend"
}

// SIMDBuild reports whether the running program was built with GOEXPERIMENT=simd, which
// enables the Go backend's AVX2/AVX-512 kernels (about 8x faster MLP training here).
func SIMDBuild() bool { return simdBuild() }

// simdBuild reads the build settings once (safeexp asks at every exp-based op of a graph).
var simdBuild = sync.OnceValue(func() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "GOEXPERIMENT" && strings.Contains(s.Value, "simd") {
			return true
		}
	}
	return false
})

// Describe returns a one-line human description of a backend, e.g. for the first cell
// of a notebook: its name, its description as GoMLX gives it, and the configuration.
func Describe(b compute.Backend) string {
	desc := fmt.Sprintf("%s (%s) [%s]", b.Name(), b.Description(), Effective(Config()))
	if b.Name() == "go" || strings.HasPrefix(Effective(Config()), "go") {
		if !SIMDBuild() {
			desc += " WARNING: built without GOEXPERIMENT=simd, the Go backend is several times slower"
		} else if !AsyncPreemptOff() {
			desc += " WARNING: GODEBUG=asyncpreemptoff=1 is not set; on Intel CPUs math.Exp and tanh run ~100x slower after preemption"
		}
	}
	return desc
}

// AsyncPreemptOff reports whether the process was started with GODEBUG=asyncpreemptoff=1
// (the last asyncpreemptoff setting in GODEBUG wins, as in the runtime). With
// GOEXPERIMENT=simd, Go's asynchronous preemption restores the AVX-512 registers and leaves
// their upper halves dirty; on Intel CPUs every function that then mixes VEX and legacy SSE
// instructions (math.Exp, math.Tanh, math.FMA) pays the AVX-SSE transition penalty: math.Exp
// took 1.4-2.2 us per call instead of 16-43 ns on an Intel Xeon (AVX-512). The setting is read
// by the runtime only at start-up, so it must be in the environment.
func AsyncPreemptOff() bool {
	on := false
	for _, field := range strings.Split(os.Getenv("GODEBUG"), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(field), "asyncpreemptoff="); ok {
			on = v == "1"
		}
	}
	return on
}

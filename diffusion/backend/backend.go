// Package backend selects the GoMLX compute backend that runs the models.
//
// The choice comes from the GOMLX_BACKEND environment variable, as in GoMLX itself,
// with one difference: when the variable is unset or empty the pure-Go backend ("go")
// is used, never XLA, so nothing tries to download a PJRT plugin by default. XLA is
// selected explicitly, e.g. GOMLX_BACKEND=xla:cuda on a machine with an NVIDIA GPU and
// its PJRT plugin installed.
package backend

import (
	"fmt"
	"os"
	"strings"

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
	return b, nil
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

// Describe returns a one-line human description of a backend, e.g. for the first cell
// of a notebook: its name, its description as GoMLX gives it, and the configuration.
func Describe(b compute.Backend) string {
	return fmt.Sprintf("%s (%s) [%s=%s]", b.Name(), b.Description(), EnvVar, Config())
}

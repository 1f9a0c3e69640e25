// Package preset names the three sizes every task runs at.
//
// A preset changes sizes (steps, batch, widths, sample counts), never the algorithm:
//
//   - Smoke: seconds; what CI runs to prove every cell works.
//   - CPU: the default; minutes on 2 cores, quality targets met.
//   - Paper: the assignment's exact hyperparameters; meant for a GPU.
//
// The notebook runner passes the preset to the cells through the environment variable
// EnvVar; a cell's own --preset flag overrides it.
package preset

import (
	"fmt"
	"os"
	"strings"
)

// Preset is one of Smoke, CPU or Paper.
type Preset string

// The presets.
const (
	Smoke Preset = "smoke"
	CPU   Preset = "cpu"
	Paper Preset = "paper"
)

// EnvVar is the environment variable the notebook runner sets to choose the preset.
const EnvVar = "DIFFUSION_PRESET"

// All lists the presets from smallest to largest.
var All = []Preset{Smoke, CPU, Paper}

// Parse returns the preset with this name (case-insensitive); "" means CPU.
func Parse(name string) (Preset, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		return CPU, nil
	}
	for _, p := range All {
		if string(p) == name {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown preset %q: want one of smoke, cpu, paper", name)
}

// FromEnv returns the preset named by EnvVar, or CPU when it is unset.
func FromEnv() (Preset, error) {
	p, err := Parse(os.Getenv(EnvVar))
	if err != nil {
		return "", fmt.Errorf("%s: %w", EnvVar, err)
	}
	return p, nil
}

// Default returns the preset named by EnvVar, falling back to CPU when it is unset or
// invalid. Use it as the default value of a --preset flag; the flag's value is then
// checked with Parse.
func Default() string {
	p, err := FromEnv()
	if err != nil {
		return string(CPU)
	}
	return string(p)
}

// Pick returns the value for preset p among the three given.
func Pick[T any](p Preset, smoke, cpu, paper T) T {
	switch p {
	case Smoke:
		return smoke
	case Paper:
		return paper
	default:
		return cpu
	}
}

// Override sets *dst to v when v is not zero: a flag of 0 keeps the preset's value.
func Override[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

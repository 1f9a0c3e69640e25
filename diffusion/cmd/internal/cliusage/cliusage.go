// Package cliusage is what the command-line tools share about bad command lines: an error
// type for them (exit status 2, one line naming the flag and the accepted values), flag
// parsing that returns it, checks of common flag values, and the exit status of an error.
package cliusage

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// Error is a bad command line (unknown command, flag or task, a bad flag value, a missing or
// invalid input file): the tool exits with status 2 and writes nothing.
type Error struct{ error }

// Unwrap returns the wrapped error.
func (e Error) Unwrap() error { return e.error }

// Errorf returns an Error with the formatted message.
func Errorf(format string, args ...any) error { return Error{fmt.Errorf(format, args...)} }

// Wrap returns err as an Error (nil stays nil).
func Wrap(err error) error {
	if err == nil {
		return nil
	}
	return Error{err}
}

// Is reports whether err is (or wraps) an Error.
func Is(err error) bool { return errors.As(err, new(Error)) }

// ExitCode is the exit status of a tool that failed with err: 0 for nil, 2 for a usage
// Error, 130 for an interrupted training (its state is saved: the same command resumes) and
// 1 otherwise.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case Is(err):
		return 2
	case trainstate.IsInterrupted(err):
		return 130
	}
	return 1
}

// Parse parses args with fs, whose error handling should be flag.ContinueOnError: an unknown
// flag or a bad value is an Error with flag's own one-line message; -h returns flag.ErrHelp
// (the usage is printed, exit 0 by convention of the caller). Parse does not print the
// usage on an error.
func Parse(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	usage := fs.Usage
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		if usage != nil {
			usage()
		} else {
			fs.PrintDefaults()
		}
		return err
	}
	return Wrap(err)
}

// AtLeast returns an Error naming the flag when v < lo: "-name must be >= lo, got v".
func AtLeast(name string, v, lo int) error {
	if v < lo {
		return Errorf("-%s must be >= %d, got %d", name, lo, v)
	}
	return nil
}

// NonNegative returns an Error naming the flag when v is negative or NaN (0 often means
// "the preset's"): "-name must be >= 0, got v".
func NonNegative(name string, v float64) error {
	if !(v >= 0) || v > 1e300 {
		return Errorf("-%s must be a finite number >= 0, got %v", name, v)
	}
	return nil
}

// Notebooks returns an Error unless every path names an existing .ipynb file.
func Notebooks(paths []string) error {
	for _, p := range paths {
		if !strings.HasSuffix(p, ".ipynb") {
			return Errorf("argument %q is not a notebook: want paths of .ipynb files", p)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return Errorf("notebook %s: %w", p, err)
		}
		if fi.IsDir() {
			return Errorf("notebook %s is a directory: want paths of .ipynb files", p)
		}
	}
	return nil
}

// Positive returns an Error naming the flag when a duration is not > 0.
func Positive(name string, d time.Duration) error {
	if d <= 0 {
		return Errorf("-%s must be a duration > 0 (e.g. 30m), got %v", name, d)
	}
	return nil
}

// Int and Float name a flag's value for PresetCounts and PresetNumbers.
type (
	Int struct {
		Name string
		V    int
	}
	Float struct {
		Name string
		V    float64
	}
)

// PresetCounts returns an Error for the first negative count flag, whose 0 keeps the
// preset's value: "-name must be >= 1 (0: the preset's), got v".
func PresetCounts(flags ...Int) error {
	for _, f := range flags {
		if f.V < 0 {
			return Errorf("-%s must be >= 1 (0: the preset's), got %d", f.Name, f.V)
		}
	}
	return nil
}

// PresetNumbers returns an Error for the first negative, NaN or infinite number flag, whose 0
// keeps the preset's value: "-name must be a finite number >= 0, got v (0: the preset's)".
func PresetNumbers(flags ...Float) error {
	for _, f := range flags {
		if err := NonNegative(f.Name, f.V); err != nil {
			return Errorf("%v (0: the preset's)", err)
		}
	}
	return nil
}

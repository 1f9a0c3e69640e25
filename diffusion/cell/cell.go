// Package cell holds the few helpers every notebook cell uses, in one home: stopping a cell
// on an error, and displaying figures and Markdown inline.
//
// The library's functions return errors; a GoNB cell has nowhere to return them to, so Must
// and Value end the cell with a panic, which GoNB shows as the cell's error message (and the
// notebook runner, diffusion/notebook, reports as a failure). Only notebook cells call these;
// library code never does. Outside a notebook the display functions print a short note on
// stdout instead, so a cell's code also runs as a plain program.
package cell

import (
	"fmt"
	"os"

	"github.com/janpfeifer/gonb/gonbui"

	"github.com/godiffusion/notebooks/diffusion/trainstate"
	"github.com/godiffusion/notebooks/diffusion/workdir"
)

// Must ends the cell with err when it is not nil, by a panic. An interrupted training
// (trainstate.InterruptedError: Jupyter's stop button) ends the cell with its one-line
// message ("interrupted at step k of n; saved, re-run to resume") on standard error and exit
// status 130 instead of a panic's stack trace. This is the one exit of the library, and only
// for notebook cells: GoNB runs each cell as its own program, so it ends the cell, not the
// kernel (checked with a real kernel, docs/STATUS.md "Resume"); the runtime cannot print a
// panic without its trace (debug.SetTraceback cannot go below the default level).
func Must(err error) {
	if err == nil {
		return
	}
	if trainstate.IsInterrupted(err) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(130)
	}
	panic(err)
}

// Value returns v, or ends the cell with err when it is not nil.
func Value[T any](v T, err error) T {
	Must(err)
	return v
}

// Values returns a and b, or ends the cell with err when it is not nil.
func Values[A, B any](a A, b B, err error) (A, B) {
	Must(err)
	return a, b
}

// Show displays a PNG figure, or ends the cell with err.
func Show(png []byte, err error) {
	Must(err)
	if !gonbui.IsNotebook {
		fmt.Printf("(a %d-byte PNG figure)\n", len(png))
		return
	}
	gonbui.DisplayPNG(png)
}

// ShowFile displays the PNG file at path.
func ShowFile(path string) {
	Show(os.ReadFile(path))
}

// Markdown displays Markdown (tables, reports); outside a notebook it prints it.
func Markdown(md string) {
	if !gonbui.IsNotebook {
		fmt.Println(md)
		return
	}
	gonbui.DisplayMarkdown(md)
}

// Checkpoint returns the directory of a named checkpoint under outputs/checkpoints (see
// workdir.Checkpoint).
func Checkpoint(name string) string { return Value(workdir.Checkpoint(name)) }

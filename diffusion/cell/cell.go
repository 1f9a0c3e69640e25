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

	"github.com/godiffusion/notebooks/diffusion/workdir"
)

// Must ends the cell with err when it is not nil.
func Must(err error) {
	if err != nil {
		panic(err)
	}
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

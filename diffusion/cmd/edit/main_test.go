package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadFlagsAreUsageErrors: every bad command line is a usage error (exit code 2) naming
// the flag, found before any model is loaded.
func TestBadFlagsAreUsageErrors(t *testing.T) {
	cases := map[string][]string{
		"no task":            {},
		"unknown task":       {"paint"},
		"flag before task":   {"-n", "3"},
		"unknown preset":     {"sdedit", "-preset", "huge"},
		"zero n":             {"anagram", "-n", "0"},
		"negative stride":    {"sdedit", "-stride", "-3"},
		"translate no -to":   {"translate"},
		"translate -to 10":   {"translate", "-to", "10"},
		"stray argument":     {"sample", "extra"},
		"unknown flag":       {"sample", "-colour", "red"},
		"negative digits":    {"rates", "-digits", "-1"},
		"negative sigma":     {"hybrid", "-sigma", "-1"},
		"non-numeric -n":     {"hybrid", "-n", "many"},
		"non-numeric -seed":  {"sample", "-seed", "x"},
		"non-numeric -guide": {"sample", "-guidance", "lots"},
	}
	for name, args := range cases {
		_, err := parse(args)
		if err == nil || !errors.As(err, new(usageError)) {
			t.Errorf("%s %v: %v, want a usage error", name, args, err)
		}
	}
	if _, err := parse([]string{"sdedit", "-preset", "smoke", "-in", "a.png"}); err != nil {
		t.Errorf("a good command line: %v", err)
	}
}

// TestBadInputsNeedingTheModel runs the checks that need the (smoke) model: inputs that are
// not images, out-of-range i_start, bad pairs and masks. Each is a usage error and writes
// nothing.
func TestBadInputsNeedingTheModel(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the smoke DDPM")
	}
	root := t.TempDir()
	t.Setenv("DIFFUSION_OUTPUTS", root)
	notImage := filepath.Join(root, "notes.png")
	if err := os.WriteFile(notImage, []byte("these are my notes, not a picture"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "figs")
	cases := map[string][]string{
		"not an image":   {"sdedit", "-in", notImage},
		"missing file":   {"sdedit", "-in", filepath.Join(root, "none.png")},
		"i_start 40":     {"sdedit", "-starts", "1,40"},
		"i_start text":   {"sdedit", "-starts", "one"},
		"noise level":    {"denoise", "-t", "250,1000"},
		"pair of three":  {"anagram", "-pair", "6,9,1"},
		"pair digit 12":  {"hybrid", "-pair", "1,12"},
		"unknown view":   {"anagram", "-view", "spin"},
		"unknown mask":   {"inpaint", "-mask", "donut"},
		"mask not image": {"inpaint", "-mask", notImage},
		"bad class":      {"sdedit", "-class", "eleven"},
		"bad measure":    {"rates", "-measure", "speed"},
		"test digits":    {"sdedit", "-in", "test:0"},
	}
	for name, args := range cases {
		args = append(args, "-preset", "smoke", "-out", out)
		err := run(args, io.Discard)
		if err == nil || !errors.As(err, new(usageError)) {
			t.Errorf("%s %v: %v, want a usage error", name, args, err)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) > 0 {
		t.Errorf("bad inputs wrote %d files into %s", len(entries), out)
	}
	// A good run writes the figure and the digits.
	if err := run([]string{"inpaint", "-preset", "smoke", "-out", out, "-in", "examples", "-mask", "bottom"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !strings.Contains(strings.Join(names, " "), "inpaint.png") || len(names) < 6 {
		t.Errorf("inpaint wrote %v", names)
	}
}

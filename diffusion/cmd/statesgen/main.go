// Command statesgen derives the built-in STATES dataset of
// diffusion/data/states from US Census state outlines as packaged in the npm
// module us-atlas (ISC licence).
//
// It reads a TopoJSON file, states-10m.json (longitude/latitude, used as
// plate carree; this matches the course's axis-aligned outlines) or
// states-albers-10m.json (Albers-projected; western states come out rotated
// by about 10 degrees), takes the outlines of Michigan (both peninsulas),
// Idaho, Ohio, Oklahoma and Wisconsin, samples points evenly in arc length,
// stretches and places each state where the course's states.pt has it, adds
// a little fixed-seed Gaussian jitter, standardizes each axis and writes a
// CSV file "x,y,label". The output is deterministic.
//
// Usage (see diffusion/data/states/README.md and gen.sh there):
//
//	go run ./diffusion/cmd/statesgen -atlas /path/to/us-atlas/states-10m.json \
//		-out diffusion/data/states/states.csv
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/godiffusion/notebooks/diffusion/atomicfile"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
)

// config holds the command-line options.
type config struct {
	atlas       string
	out         string
	perState    int
	jitter      float64
	seed        uint64
	minFraction float64
}

func main() {
	var c config
	flag.StringVar(&c.atlas, "atlas", "", "path of us-atlas states-10m.json (or states-albers-10m.json)")
	flag.StringVar(&c.out, "out", "diffusion/data/states/states.csv", "output CSV file")
	flag.IntVar(&c.perState, "points", 1000, "points per state")
	flag.Float64Var(&c.jitter, "jitter", 0.015, "standard deviation of the Gaussian jitter, in standardized units")
	flag.Uint64Var(&c.seed, "seed", 2024, "seed of the jitter generator")
	flag.Float64Var(&c.minFraction, "min-area", 0.02, "drop polygons smaller than this fraction of the state's largest")
	flag.CommandLine.Init("statesgen", flag.ContinueOnError)
	err := cliusage.Parse(flag.CommandLine, os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err == nil {
		err = run(c, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "statesgen:", err)
		os.Exit(cliusage.ExitCode(err))
	}
}

// check returns a usage error naming the flag of a bad value in c.
func (c config) check() error {
	switch {
	case c.atlas == "":
		return cliusage.Errorf("-atlas is required: the path of us-atlas states-10m.json (or states-albers-10m.json)")
	case c.perState < 1:
		return cliusage.Errorf("-points must be >= 1, got %d", c.perState)
	case !(c.jitter >= 0) || c.jitter > 1e300:
		return cliusage.Errorf("-jitter must be a finite number >= 0, got %v", c.jitter)
	case !(c.minFraction >= 0 && c.minFraction < 1):
		return cliusage.Errorf("-min-area must be in [0, 1), got %v", c.minFraction)
	case c.out == "":
		return cliusage.Errorf("-out must name the output CSV file")
	}
	return nil
}

// run generates the dataset described by c and writes it to c.out, with a
// summary to log.
func run(c config, log io.Writer) error {
	if err := c.check(); err != nil {
		return err
	}
	data, err := os.ReadFile(c.atlas)
	if err != nil {
		return cliusage.Errorf("-atlas: %w", err)
	}
	pts, labels, err := generate(data, c, log)
	if err != nil {
		return cliusage.Errorf("-atlas %s (a us-atlas TopoJSON of the states): %w", c.atlas, err)
	}
	return atomicfile.WriteFunc(c.out, func(f *os.File) error {
		w := bufio.NewWriter(f)
		fmt.Fprintln(w, "x,y,label")
		for i, p := range pts {
			fmt.Fprintf(w, "%s,%s,%d\n", strconv.FormatFloat(p.X, 'f', 6, 64), strconv.FormatFloat(p.Y, 'f', 6, 64), labels[i])
		}
		return w.Flush()
	})
}

// generate builds the standardized points and their labels from a TopoJSON
// document.
func generate(topoJSON []byte, c config, log io.Writer) ([]point, []int, error) {
	topo, arcs, err := parseTopology(topoJSON)
	if err != nil {
		return nil, nil, err
	}
	states, ok := topo.Objects["states"]
	if !ok {
		return nil, nil, fmt.Errorf("TopoJSON has no \"states\" object")
	}
	// Longitude/latitude is used as is (plate carree): each state is then
	// stretched per axis anyway, and this keeps the meridian and parallel
	// borders axis-aligned as in the course's data. Projected files
	// (states-albers-10m.json) are in screen coordinates.
	lonLat := isLonLat(arcs)
	for _, arc := range arcs {
		for j, p := range arc {
			if !lonLat {
				arc[j] = point{p.X, -p.Y} // screen coordinates: y grows downwards
			}
		}
	}
	rng := rand.New(rand.NewPCG(c.seed, 0x5354415445530000)) // "STATES"
	var all []point
	var labels []int
	for label, pl := range courseLayout {
		var geom *geometry
		for i := range states.Geometries {
			if states.Geometries[i].Properties.Name == pl.Name {
				geom = &states.Geometries[i]
			}
		}
		if geom == nil {
			return nil, nil, fmt.Errorf("state %q not found", pl.Name)
		}
		polys, err := geom.polygons(arcs)
		if err != nil {
			return nil, nil, err
		}
		rings := keptRings(polys, c.minFraction)
		sampled, err := sampleOutline(rings, c.perState)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", pl.Name, err)
		}
		placed := place(sampled, pl, c.jitter)
		addJitter(placed, c.jitter, rng)
		fmt.Fprintf(log, "%-9s %d of %d polygons kept, %d points\n", pl.Name, len(rings), len(polys), len(placed))
		all = append(all, placed...)
		for range placed {
			labels = append(labels, label)
		}
	}
	standardize(all)
	for label, pl := range courseLayout {
		var cx, cy float64
		minX, minY := math.Inf(1), math.Inf(1)
		maxX, maxY := math.Inf(-1), math.Inf(-1)
		n := 0
		for i, p := range all {
			if labels[i] == label {
				cx, cy, n = cx+p.X, cy+p.Y, n+1
				minX, maxX = math.Min(minX, p.X), math.Max(maxX, p.X)
				minY, maxY = math.Min(minY, p.Y), math.Max(maxY, p.Y)
			}
		}
		cx, cy = cx/float64(n), cy/float64(n)
		fmt.Fprintf(log, "%-9s centroid angle %7.2f deg radius %.3f (course %4.0f, %.2f), box %.3f x %.3f (course %.3f x %.3f)\n",
			pl.Name, math.Atan2(cy, cx)*180/math.Pi, math.Hypot(cx, cy), pl.AngleDeg, pl.Radius, maxX-minX, maxY-minY, pl.Width, pl.Height)
	}
	return all, labels, nil
}

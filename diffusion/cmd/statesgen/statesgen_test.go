package main

import (
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// squareTopology is a quantized TopoJSON with two squares sharing an edge:
// arc 0 is the shared edge, arcs 1 and 2 the rest of each square. Arc
// positions are delta-encoded and scaled by 0.5.
const squareTopology = `{
  "type": "Topology",
  "transform": {"scale": [0.5, 0.5], "translate": [10, 20]},
  "objects": {"states": {"type": "GeometryCollection", "geometries": [
    {"type": "Polygon", "properties": {"name": "A"}, "arcs": [[0, 1]]},
    {"type": "MultiPolygon", "properties": {"name": "B"}, "arcs": [[[2, -1]]]}
  ]}},
  "arcs": [
    [[2, 0], [0, 2]],
    [[2, 2], [-2, 0], [0, -2], [2, 0]],
    [[2, 0], [2, 0], [0, 2], [-2, 0]]
  ]
}`

func TestParseTopologyDeltaDecoding(t *testing.T) {
	topo, arcs, err := parseTopology([]byte(squareTopology))
	if err != nil {
		t.Fatal(err)
	}
	// Arc 0: quantized (2,0) then (2,2) -> (11,20), (11,21).
	if arcs[0][0] != (point{11, 20}) || arcs[0][1] != (point{11, 21}) {
		t.Errorf("arc 0 decoded as %v", arcs[0])
	}
	geoms := topo.Objects["states"].Geometries
	a, err := geoms[0].polygons(arcs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := geoms[1].polygons(arcs)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("got %d and %d polygons", len(a), len(b))
	}
	// Each square is 1x1 in output units: area 1, perimeter 4, and the
	// shared arc appears once per ring without duplicated joints.
	for name, r := range map[string]ring{"A": a[0][0], "B": b[0][0]} {
		if math.Abs(r.area()-1) > 1e-12 || math.Abs(r.length()-4) > 1e-12 {
			t.Errorf("%s: area %g, length %g; want 1 and 4 (ring %v)", name, r.area(), r.length(), r)
		}
		if len(r) != 5 {
			t.Errorf("%s: ring has %d points, want 5 (closed square)", name, len(r))
		}
	}
	// B's ring uses arc 0 reversed: it must end where it started, at (11, 20).
	if got := b[0][0]; got[len(got)-1] != (point{11, 20}) {
		t.Errorf("B ring %v does not close at (11, 20)", got)
	}
}

func TestParseTopologyErrors(t *testing.T) {
	cases := map[string]string{
		`{"type": "FeatureCollection"}`:         "not a TopoJSON topology",
		`{"type": "Topology", "arcs": [[[1]]]}`: "has 1 coordinates",
		`not json`:                              "parse TopoJSON",
	}
	for input, want := range cases {
		if _, _, err := parseTopology([]byte(input)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", input, err, want)
		}
	}
	_, arcs, _ := parseTopology([]byte(squareTopology))
	bad := geometry{Type: "Polygon", Arcs: []byte(`[[7]]`)}
	if _, err := bad.polygons(arcs); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("arc index 7: err = %v", err)
	}
	open := geometry{Type: "Polygon", Arcs: []byte(`[[0]]`)}
	if _, err := open.polygons(arcs); err == nil || !strings.Contains(err.Error(), "not closed") {
		t.Errorf("open ring: err = %v", err)
	}
	line := geometry{Type: "LineString", Arcs: []byte(`[0]`)}
	if _, err := line.polygons(arcs); err == nil {
		t.Error("LineString accepted as a polygon")
	}
}

func TestSampleOutlineEvenlySpaced(t *testing.T) {
	square := ring{{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0}}
	small := ring{{5, 5}, {5.5, 5}, {5.5, 5.5}, {5, 5.5}, {5, 5}}
	pts, err := sampleOutline([]ring{square, small}, 12)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 12 {
		t.Fatalf("%d points, want 12", len(pts))
	}
	// Total length 6, spacing 0.5, first point at 0.25: 8 points on the
	// square (length 4) and 4 on the small one (length 2).
	want := []point{{0.25, 0}, {0.75, 0}, {1, 0.25}, {1, 0.75}, {0.75, 1}, {0.25, 1}, {0, 0.75}, {0, 0.25},
		{5.25, 5}, {5.5, 5.25}, {5.25, 5.5}, {5, 5.25}}
	for i := range want {
		if math.Hypot(pts[i].X-want[i].X, pts[i].Y-want[i].Y) > 1e-9 {
			t.Errorf("point %d = %v, want %v", i, pts[i], want[i])
		}
	}
	if _, err := sampleOutline(nil, 10); err == nil {
		t.Error("sampling no rings succeeded")
	}
}

func TestKeptRingsDropsIslands(t *testing.T) {
	big := polygon{ring{{0, 0}, {10, 0}, {10, 10}, {0, 10}, {0, 0}}}
	mid := polygon{ring{{20, 0}, {25, 0}, {25, 5}, {20, 5}, {20, 0}}}
	islet := polygon{ring{{30, 0}, {31, 0}, {31, 1}, {30, 1}, {30, 0}}}
	if got := keptRings([]polygon{big, islet, mid}, 0.02); len(got) != 2 || got[0][1].X != 10 || got[1][1].X != 25 {
		t.Errorf("kept %v", got)
	}
}

func TestPlaceAndStandardize(t *testing.T) {
	pts := []point{{0, 0}, {2, 0}, {2, 4}, {0, 4}}
	pl := placement{Name: "X", AngleDeg: 90, Radius: 2, Width: 1, Height: 3}
	out := place(pts, pl, 0)
	var mx, my float64
	for _, p := range out {
		mx += p.X / 4
		my += p.Y / 4
	}
	if math.Abs(mx) > 1e-12 || math.Abs(my-2) > 1e-12 {
		t.Errorf("mean (%g, %g), want (0, 2)", mx, my)
	}
	if w, h := out[1].X-out[0].X, out[2].Y-out[1].Y; math.Abs(w-1) > 1e-12 || math.Abs(h-3) > 1e-12 {
		t.Errorf("box %g x %g, want 1 x 3", w, h)
	}
	standardize(out)
	var sx, sy, vx, vy float64
	for _, p := range out {
		sx += p.X
		sy += p.Y
		vx += p.X * p.X
		vy += p.Y * p.Y
	}
	if math.Abs(sx) > 1e-12 || math.Abs(sy) > 1e-12 || math.Abs(vx/4-1) > 1e-12 || math.Abs(vy/4-1) > 1e-12 {
		t.Errorf("standardized sums %g %g, variances %g %g", sx, sy, vx/4, vy/4)
	}
}

// atlasPath returns where gen.sh installs us-atlas (or $US_ATLAS_DIR); the
// end-to-end test runs only when the file is there.
func atlasPath(t *testing.T) string {
	dir := os.Getenv("US_ATLAS_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Skipf("no cache directory: %v", err)
		}
		dir = filepath.Join(cache, "godiffusion", "us-atlas-3.0.1")
	}
	return filepath.Join(dir, "node_modules", "us-atlas", "states-10m.json")
}

func TestRegenerateMatchesCommittedData(t *testing.T) {
	atlas := atlasPath(t)
	if _, err := os.Stat(atlas); err != nil {
		t.Skipf("us-atlas not installed (run diffusion/data/states/gen.sh): %v", err)
	}
	out := filepath.Join(t.TempDir(), "states.csv")
	c := config{atlas: atlas, out: out, perState: 1000, jitter: 0.015, seed: 2024, minFraction: 0.02}
	if err := run(c, io.Discard); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	want, err := os.ReadFile("../../data/states/states.csv")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Error("regenerated states.csv differs from the committed one")
	}
}

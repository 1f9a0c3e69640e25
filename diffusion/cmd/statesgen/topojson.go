package main

import (
	"encoding/json"
	"fmt"
	"math"
)

// topology is the part of a TopoJSON document the generator reads.
type topology struct {
	Type      string                `json:"type"`
	Transform *transform            `json:"transform"`
	Objects   map[string]collection `json:"objects"`
	Arcs      [][][]float64         `json:"arcs"`
}

// transform maps quantized, delta-encoded arc positions to coordinates.
type transform struct {
	Scale     [2]float64 `json:"scale"`
	Translate [2]float64 `json:"translate"`
}

// collection is a TopoJSON GeometryCollection.
type collection struct {
	Type       string     `json:"type"`
	Geometries []geometry `json:"geometries"`
}

// geometry is one Polygon or MultiPolygon of a collection.
type geometry struct {
	Type       string          `json:"type"`
	ID         json.RawMessage `json:"id"`
	Properties struct {
		Name string `json:"name"`
	} `json:"properties"`
	Arcs json.RawMessage `json:"arcs"`
}

// point is a planar position.
type point struct{ X, Y float64 }

// ring is a closed polyline (first point == last point).
type ring []point

// polygon is an exterior ring followed by its holes.
type polygon []ring

// parseTopology decodes a TopoJSON document and resolves its arcs into
// absolute coordinates.
func parseTopology(data []byte) (*topology, [][]point, error) {
	var topo topology
	if err := json.Unmarshal(data, &topo); err != nil {
		return nil, nil, fmt.Errorf("parse TopoJSON: %w", err)
	}
	if topo.Type != "Topology" {
		return nil, nil, fmt.Errorf("not a TopoJSON topology (type %q)", topo.Type)
	}
	arcs := make([][]point, len(topo.Arcs))
	for i, arc := range topo.Arcs {
		var qx, qy float64
		pts := make([]point, len(arc))
		for j, pos := range arc {
			if len(pos) < 2 {
				return nil, nil, fmt.Errorf("arc %d position %d has %d coordinates", i, j, len(pos))
			}
			x, y := pos[0], pos[1]
			if t := topo.Transform; t != nil {
				// Quantized arcs are delta-encoded: each position is an
				// offset from the previous one.
				qx += x
				qy += y
				x = qx*t.Scale[0] + t.Translate[0]
				y = qy*t.Scale[1] + t.Translate[1]
			}
			pts[j] = point{x, y}
		}
		arcs[i] = pts
	}
	return &topo, arcs, nil
}

// polygons returns the polygons of a Polygon or MultiPolygon geometry.
func (g *geometry) polygons(arcs [][]point) ([]polygon, error) {
	var rings [][][]int
	switch g.Type {
	case "Polygon":
		var p [][]int
		if err := json.Unmarshal(g.Arcs, &p); err != nil {
			return nil, fmt.Errorf("%s: polygon arcs: %w", g.Properties.Name, err)
		}
		rings = [][][]int{p}
	case "MultiPolygon":
		if err := json.Unmarshal(g.Arcs, &rings); err != nil {
			return nil, fmt.Errorf("%s: multipolygon arcs: %w", g.Properties.Name, err)
		}
	default:
		return nil, fmt.Errorf("%s: geometry type %q is not a polygon", g.Properties.Name, g.Type)
	}
	var out []polygon
	for _, p := range rings {
		var poly polygon
		for _, r := range p {
			rg, err := assembleRing(r, arcs)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", g.Properties.Name, err)
			}
			poly = append(poly, rg)
		}
		if len(poly) > 0 {
			out = append(out, poly)
		}
	}
	return out, nil
}

// assembleRing concatenates the arcs of a ring. A negative index ~i means
// arc i reversed; consecutive arcs share their joining point, which is kept
// once.
func assembleRing(indices []int, arcs [][]point) (ring, error) {
	var r ring
	for k, idx := range indices {
		reversed := idx < 0
		if reversed {
			idx = ^idx
		}
		if idx >= len(arcs) {
			return nil, fmt.Errorf("arc index %d out of range (%d arcs)", idx, len(arcs))
		}
		arc := arcs[idx]
		pts := make([]point, len(arc))
		for j := range arc {
			if reversed {
				pts[j] = arc[len(arc)-1-j]
			} else {
				pts[j] = arc[j]
			}
		}
		if k > 0 && len(pts) > 0 {
			pts = pts[1:]
		}
		r = append(r, pts...)
	}
	if len(r) < 4 || r[0] != r[len(r)-1] {
		return nil, fmt.Errorf("ring of %d points is not closed", len(r))
	}
	return r, nil
}

// area returns the absolute area enclosed by a ring (shoelace formula).
func (r ring) area() float64 {
	var s float64
	for i := 0; i+1 < len(r); i++ {
		s += r[i].X*r[i+1].Y - r[i+1].X*r[i].Y
	}
	return math.Abs(s) / 2
}

// length returns the perimeter of a ring.
func (r ring) length() float64 {
	var s float64
	for i := 0; i+1 < len(r); i++ {
		s += math.Hypot(r[i+1].X-r[i].X, r[i+1].Y-r[i].Y)
	}
	return s
}

// isLonLat reports whether the coordinates look like longitude/latitude
// degrees rather than projected planar units.
func isLonLat(arcs [][]point) bool {
	for _, arc := range arcs {
		for _, p := range arc {
			if math.Abs(p.X) > 180 || math.Abs(p.Y) > 90 {
				return false
			}
		}
	}
	return true
}

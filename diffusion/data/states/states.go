// Package states provides the STATES dataset of the diffusion coursework:
// 2-D points on the outlines of five US states (Michigan, Idaho, Ohio,
// Oklahoma, Wisconsin), 1000 per state, standardized per axis.
//
// Two sources give the same layout: the course's own states.pt (LoadPT) and
// a built-in copy derived from US Census outlines (Builtin; see README.md
// for its provenance and how to regenerate it).
package states

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/godiffusion/notebooks/diffusion/tensorfile"
)

// Labels of the five states, as in the course's states.pt.
const (
	Michigan  = 0
	Idaho     = 1
	Ohio      = 2
	Oklahoma  = 3
	Wisconsin = 4
	// NumLabels is the number of states (classes).
	NumLabels = 5
)

// Names holds the state names indexed by label.
var Names = [NumLabels]string{"Michigan", "Idaho", "Ohio", "Oklahoma", "Wisconsin"}

// Codes holds the two-letter postal codes indexed by label.
var Codes = [NumLabels]string{"MI", "ID", "OH", "OK", "WI"}

// LabelOf returns the label of a state given its name or postal code
// (case-insensitive).
func LabelOf(name string) (int, error) {
	for l := range NumLabels {
		if strings.EqualFold(name, Names[l]) || strings.EqualFold(name, Codes[l]) {
			return l, nil
		}
	}
	return 0, fmt.Errorf("states: unknown state %q (want one of %v or %v)", name, Names, Codes)
}

// Dataset is a set of labelled 2-D points.
type Dataset struct {
	// Points holds the (x, y) coordinates.
	Points [][2]float64
	// Labels holds the state label (0..NumLabels-1) of each point.
	Labels []int
	// Source describes where the data came from.
	Source string
}

// Len returns the number of points.
func (d *Dataset) Len() int { return len(d.Points) }

// Flat32 returns the points as float32 in row-major order (N*2 values:
// x0, y0, x1, y1, ...), the layout of a [N, 2] tensor.
func (d *Dataset) Flat32() []float32 {
	out := make([]float32, 0, 2*len(d.Points))
	for _, p := range d.Points {
		out = append(out, float32(p[0]), float32(p[1]))
	}
	return out
}

// Labels64 returns the labels as int64, the layout of a [N] int64 tensor.
func (d *Dataset) Labels64() []int64 {
	out := make([]int64, len(d.Labels))
	for i, l := range d.Labels {
		out[i] = int64(l)
	}
	return out
}

// OfLabel returns the points with the given label, in dataset order.
func (d *Dataset) OfLabel(label int) [][2]float64 {
	var out [][2]float64
	for i, l := range d.Labels {
		if l == label {
			out = append(out, d.Points[i])
		}
	}
	return out
}

// Counts returns the number of points of each label.
func (d *Dataset) Counts() [NumLabels]int {
	var c [NumLabels]int
	for _, l := range d.Labels {
		if l >= 0 && l < NumLabels {
			c[l]++
		}
	}
	return c
}

// Centroid returns the mean of the points with the given label, and false if
// there are none.
func (d *Dataset) Centroid(label int) ([2]float64, bool) {
	var c [2]float64
	n := 0
	for i, l := range d.Labels {
		if l == label {
			c[0] += d.Points[i][0]
			c[1] += d.Points[i][1]
			n++
		}
	}
	if n == 0 {
		return c, false
	}
	return [2]float64{c[0] / float64(n), c[1] / float64(n)}, true
}

// Validate checks that the dataset is non-empty, has one label per point,
// labels in 0..NumLabels-1 and finite coordinates.
func (d *Dataset) Validate() error {
	if len(d.Points) == 0 {
		return errors.New("states: dataset has no points")
	}
	if len(d.Labels) != len(d.Points) {
		return fmt.Errorf("states: %d points but %d labels", len(d.Points), len(d.Labels))
	}
	for i, p := range d.Points {
		if math.IsNaN(p[0]) || math.IsInf(p[0], 0) || math.IsNaN(p[1]) || math.IsInf(p[1], 0) {
			return fmt.Errorf("states: point %d (%g, %g) is not finite", i, p[0], p[1])
		}
	}
	for i, l := range d.Labels {
		if l < 0 || l >= NumLabels {
			return fmt.Errorf("states: label %d of point %d is outside 0..%d", l, i, NumLabels-1)
		}
	}
	return nil
}

// WritePT writes the dataset in the course's states.pt format, a
// torch.save'd dict {"data": float32[N, 2], "labels": int64[N]}, replacing
// path atomically.
func (d *Dataset) WritePT(path string) error {
	if err := d.Validate(); err != nil {
		return err
	}
	data, err := tensorfile.NewFloat32(d.Flat32(), d.Len(), 2)
	if err != nil {
		return err
	}
	labels, err := tensorfile.NewInt64(d.Labels64(), d.Len())
	if err != nil {
		return err
	}
	return tensorfile.WritePTDict(path, tensorfile.NamedTensor{Name: "data", Tensor: data}, tensorfile.NamedTensor{Name: "labels", Tensor: labels})
}

// Load returns the dataset named by spec: "builtin" or "" for Builtin,
// anything else is the path of a states.pt file read with LoadPT.
func Load(spec string) (*Dataset, error) {
	if spec == "" || spec == "builtin" {
		return Builtin()
	}
	return LoadPT(spec)
}

// LoadPT reads a states.pt file in the course's format: a torch.save'd dict
// {"data": float32[N, 2], "labels": int64[N]} with labels in 0..4 and finite
// coordinates.
func LoadPT(path string) (*Dataset, error) {
	tensors, err := tensorfile.ReadPTDict(path)
	if err != nil {
		return nil, fmt.Errorf("states: %w", err)
	}
	d, err := fromTensors(tensors)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d.Source = "states.pt file " + path
	return d, nil
}

// DecodePT is LoadPT on the bytes of a states.pt file.
func DecodePT(b []byte) (*Dataset, error) {
	tensors, err := tensorfile.DecodePTDict(b)
	if err != nil {
		return nil, fmt.Errorf("states: %w", err)
	}
	d, err := fromTensors(tensors)
	if err != nil {
		return nil, err
	}
	d.Source = "states.pt data"
	return d, nil
}

// fromTensors checks and converts the "data" and "labels" tensors.
func fromTensors(tensors map[string]*tensorfile.Tensor) (*Dataset, error) {
	data, labels := tensors["data"], tensors["labels"]
	if data == nil || labels == nil {
		var keys []string
		for k := range tensors {
			keys = append(keys, strconv.Quote(k))
		}
		return nil, fmt.Errorf("states: want tensors \"data\" and \"labels\", file has [%s]", strings.Join(keys, " "))
	}
	if data.DType != tensorfile.Float32 {
		return nil, fmt.Errorf("states: \"data\" is %s, want float32", data.DType)
	}
	if len(data.Shape) != 2 || data.Shape[1] != 2 {
		return nil, fmt.Errorf("states: \"data\" has shape %v, want [N 2]", data.Shape)
	}
	if labels.DType != tensorfile.Int64 {
		return nil, fmt.Errorf("states: \"labels\" is %s, want int64", labels.DType)
	}
	if len(labels.Shape) != 1 {
		return nil, fmt.Errorf("states: \"labels\" has shape %v, want [N]", labels.Shape)
	}
	n := data.Shape[0]
	if labels.Shape[0] != n {
		return nil, fmt.Errorf("states: %d points but %d labels", n, labels.Shape[0])
	}
	if err := data.Validate(); err != nil {
		return nil, fmt.Errorf("states: \"data\": %w", err)
	}
	if err := labels.Validate(); err != nil {
		return nil, fmt.Errorf("states: \"labels\": %w", err)
	}
	d := &Dataset{Points: make([][2]float64, n), Labels: make([]int, n)}
	for i := range n {
		d.Points[i] = [2]float64{float64(data.Float32s[2*i]), float64(data.Float32s[2*i+1])}
		l := labels.Int64s[i]
		if l < 0 || l >= NumLabels {
			return nil, fmt.Errorf("states: label %d of point %d is outside 0..%d", l, i, NumLabels-1)
		}
		d.Labels[i] = int(l)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

//go:embed states.csv
var builtinCSV []byte

// builtinSource describes the embedded data.
const builtinSource = "built-in STATES (US Census 2017 cartographic boundaries via npm us-atlas 3.0.1, see diffusion/data/states/README.md)"

// Builtin returns the built-in STATES dataset embedded in the package:
// 5000 points, 1000 per state in label order, laid out like the course's
// states.pt and standardized per axis. Each call returns a fresh copy.
func Builtin() (*Dataset, error) {
	d, err := parseCSV(builtinCSV)
	if err != nil {
		return nil, fmt.Errorf("states: embedded states.csv: %w", err)
	}
	d.Source = builtinSource
	return d, nil
}

// parseCSV reads "x,y,label" rows after a header line.
func parseCSV(b []byte) (*Dataset, error) {
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = 3
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, err
	}
	if strings.Join(header, ",") != "x,y,label" {
		return nil, fmt.Errorf("header %q, want x,y,label", strings.Join(header, ","))
	}
	d := &Dataset{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		x, err1 := strconv.ParseFloat(rec[0], 64)
		y, err2 := strconv.ParseFloat(rec[1], 64)
		l, err3 := strconv.Atoi(rec[2])
		if err := errors.Join(err1, err2, err3); err != nil {
			line, _ := r.FieldPos(0)
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		d.Points = append(d.Points, [2]float64{x, y})
		d.Labels = append(d.Labels, l)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

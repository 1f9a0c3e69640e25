package states

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/tensorfile"
)

// coursePT is the course's own states.pt, relative to this package.
const coursePT = "../../../../shared/data/states.pt"

// courseCentroids are the polar positions (degrees, radius) of each state's
// centroid in the course data, by label.
var courseCentroids = [NumLabels][2]float64{
	Michigan: {157, 1.43}, Idaho: {-120, 1.36}, Ohio: {90, 1.07}, Oklahoma: {-58, 1.25}, Wisconsin: {25, 1.47},
}

// checkCourseLayout asserts the properties the course's STATES data has.
func checkCourseLayout(t *testing.T, d *Dataset) {
	t.Helper()
	if d.Len() != 5000 {
		t.Fatalf("%d points, want 5000", d.Len())
	}
	if c := d.Counts(); c != [NumLabels]int{1000, 1000, 1000, 1000, 1000} {
		t.Errorf("label counts %v, want 1000 each", c)
	}
	for axis := range 2 {
		var sum, sq float64
		for _, p := range d.Points {
			sum += p[axis]
		}
		mean := sum / float64(d.Len())
		for _, p := range d.Points {
			sq += (p[axis] - mean) * (p[axis] - mean)
		}
		std := math.Sqrt(sq / float64(d.Len()))
		if math.Abs(mean) > 1e-4 || math.Abs(std-1) > 1e-4 {
			t.Errorf("axis %d: mean %.2g, population std %.6f; want 0 and 1", axis, mean, std)
		}
	}
	for l := range NumLabels {
		c, ok := d.Centroid(l)
		if !ok {
			t.Fatalf("no points of %s", Names[l])
		}
		angle := math.Atan2(c[1], c[0]) * 180 / math.Pi
		radius := math.Hypot(c[0], c[1])
		want := courseCentroids[l]
		if math.Abs(angle-want[0]) > 1.5 || math.Abs(radius-want[1]) > 0.02 {
			t.Errorf("%s centroid at %.2f deg, radius %.3f; course has %.0f deg, %.2f", Names[l], angle, radius, want[0], want[1])
		}
	}
}

func TestBuiltin(t *testing.T) {
	d, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	checkCourseLayout(t, d)
	if !strings.Contains(d.Source, "us-atlas") {
		t.Errorf("source %q does not name its origin", d.Source)
	}
	// Points are stored state by state in label order.
	for i, l := range d.Labels {
		if l != i/1000 {
			t.Fatalf("label of point %d is %d, want %d", i, l, i/1000)
		}
	}
	// Each call returns an independent copy.
	d.Points[0][0] = 99
	again, _ := Builtin()
	if again.Points[0][0] == 99 {
		t.Error("Builtin shares its slices between calls")
	}
}

func TestLoadCoursePT(t *testing.T) {
	if _, err := os.Stat(coursePT); err != nil {
		t.Skipf("course file not available: %v", err)
	}
	d, err := LoadPT(coursePT)
	if err != nil {
		t.Fatal(err)
	}
	checkCourseLayout(t, d)
	if !strings.Contains(d.Source, coursePT) {
		t.Errorf("source %q does not name the file", d.Source)
	}
}

// nearest95 returns the 95th percentile, over the points of a, of the
// distance to the nearest point of b.
func nearest95(a, b [][2]float64) float64 {
	dists := make([]float64, len(a))
	for i, p := range a {
		best := math.Inf(1)
		for _, q := range b {
			best = math.Min(best, math.Hypot(p[0]-q[0], p[1]-q[1]))
		}
		dists[i] = best
	}
	sort.Float64s(dists)
	return dists[len(dists)*95/100]
}

func TestBuiltinMatchesCourseOutlines(t *testing.T) {
	if _, err := os.Stat(coursePT); err != nil {
		t.Skipf("course file not available: %v", err)
	}
	course, err := LoadPT(coursePT)
	if err != nil {
		t.Fatal(err)
	}
	builtin, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	// Every built-in point lies near the course outline of the same state
	// and vice versa (the jitter alone is ~0.015).
	for l := range NumLabels {
		a, b := builtin.OfLabel(l), course.OfLabel(l)
		if d := nearest95(a, b); d > 0.06 {
			t.Errorf("%s: 95%% of built-in points within %.3f of the course outline, want < 0.06", Names[l], d)
		}
		if d := nearest95(b, a); d > 0.06 {
			t.Errorf("%s: 95%% of course points within %.3f of the built-in outline, want < 0.06", Names[l], d)
		}
	}
}

func TestWritePTRoundTrip(t *testing.T) {
	d, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "states.pt")
	if err := d.WritePT(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadPT(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Labels, d.Labels) {
		t.Error("labels differ after WritePT/LoadPT")
	}
	for i := range d.Points {
		for k := range 2 {
			if float32(d.Points[i][k]) != float32(got.Points[i][k]) {
				t.Fatalf("point %d differs: %v vs %v", i, got.Points[i], d.Points[i])
			}
		}
	}
	viaLoad, err := Load(path)
	if err != nil || viaLoad.Len() != 5000 {
		t.Errorf("Load(path): %v", err)
	}
}

func TestLoadSpec(t *testing.T) {
	for _, spec := range []string{"", "builtin"} {
		d, err := Load(spec)
		if err != nil || d.Len() != 5000 || d.Source != builtinSource {
			t.Errorf("Load(%q): %d points, source %q, err %v", spec, d.Len(), d.Source, err)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "nope.pt")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func TestLoadPTErrors(t *testing.T) {
	dir := t.TempDir()
	f32 := func(shape ...int) *tensorfile.Tensor {
		n := 1
		for _, s := range shape {
			n *= s
		}
		tt, err := tensorfile.NewFloat32(make([]float32, n), shape...)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	i64 := func(vals ...int64) *tensorfile.Tensor {
		tt, err := tensorfile.NewInt64(vals)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	nan := f32(2, 2)
	nan.Float32s[3] = float32(math.NaN())
	cases := []struct {
		name    string
		entries []tensorfile.NamedTensor
		want    string
	}{
		{"missing labels", []tensorfile.NamedTensor{{Name: "data", Tensor: f32(2, 2)}}, `want tensors "data" and "labels", file has ["data"]`},
		{"three columns", []tensorfile.NamedTensor{{Name: "data", Tensor: f32(2, 3)}, {Name: "labels", Tensor: i64(0, 1)}}, `"data" has shape [2 3], want [N 2]`},
		{"flat data", []tensorfile.NamedTensor{{Name: "data", Tensor: f32(4)}, {Name: "labels", Tensor: i64(0, 1)}}, `"data" has shape [4]`},
		{"float labels", []tensorfile.NamedTensor{{Name: "data", Tensor: f32(2, 2)}, {Name: "labels", Tensor: f32(2)}}, `"labels" is float32, want int64`},
		{"int data", []tensorfile.NamedTensor{{Name: "data", Tensor: i64(1, 2, 3, 4)}, {Name: "labels", Tensor: i64(0, 1)}}, `"data" is int64, want float32`},
		{"2-D labels", []tensorfile.NamedTensor{{Name: "data", Tensor: f32(2, 2)}, {Name: "labels", Tensor: &tensorfile.Tensor{DType: tensorfile.Int64, Shape: []int{2, 1}, Int64s: []int64{0, 1}}}}, `"labels" has shape [2 1], want [N]`},
		{"count mismatch", []tensorfile.NamedTensor{{Name: "data", Tensor: f32(3, 2)}, {Name: "labels", Tensor: i64(0, 1)}}, "3 points but 2 labels"},
		{"label range", []tensorfile.NamedTensor{{Name: "data", Tensor: f32(2, 2)}, {Name: "labels", Tensor: i64(0, 5)}}, "label 5 of point 1 is outside 0..4"},
		{"negative label", []tensorfile.NamedTensor{{Name: "data", Tensor: f32(2, 2)}, {Name: "labels", Tensor: i64(-1, 0)}}, "label -1 of point 0"},
		{"nan", []tensorfile.NamedTensor{{Name: "data", Tensor: nan}, {Name: "labels", Tensor: i64(0, 1)}}, "point 1 (0, NaN) is not finite"},
		{"empty", []tensorfile.NamedTensor{{Name: "data", Tensor: f32(0, 2)}, {Name: "labels", Tensor: i64()}}, "no points"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".pt")
			if err := tensorfile.WritePTDict(path, c.entries...); err != nil {
				t.Fatal(err)
			}
			_, err := LoadPT(path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	t.Run("single tensor", func(t *testing.T) {
		path := filepath.Join(dir, "tensor.pt")
		if err := tensorfile.WritePTTensor(path, make([]float32, 4), 2, 2); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadPT(path); err == nil || !strings.Contains(err.Error(), "want a dict") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		good := filepath.Join(dir, "good.pt")
		d, _ := Builtin()
		if err := d.WritePT(good); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(good)
		if _, err := DecodePT(b[:len(b)/2]); err == nil || !strings.Contains(err.Error(), "not a torch zip archive") {
			t.Errorf("err = %v", err)
		}
		b[len(b)/3] ^= 0xff // inside a storage record: the CRC no longer matches
		if _, err := DecodePT(b); err == nil || !strings.Contains(err.Error(), "checksum") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestLabelOf(t *testing.T) {
	for l := range NumLabels {
		for _, s := range []string{Names[l], Codes[l], strings.ToLower(Names[l]), strings.ToLower(Codes[l])} {
			if got, err := LabelOf(s); err != nil || got != l {
				t.Errorf("LabelOf(%q) = %d, %v; want %d", s, got, err, l)
			}
		}
	}
	if _, err := LabelOf("Texas"); err == nil {
		t.Error("LabelOf(Texas) succeeded")
	}
}

func TestDatasetHelpers(t *testing.T) {
	d := &Dataset{Points: [][2]float64{{1, 2}, {3, 4}, {5, 6}}, Labels: []int{Ohio, Idaho, Ohio}}
	if got := d.Flat32(); !reflect.DeepEqual(got, []float32{1, 2, 3, 4, 5, 6}) {
		t.Errorf("Flat32 = %v", got)
	}
	if got := d.OfLabel(Ohio); !reflect.DeepEqual(got, [][2]float64{{1, 2}, {5, 6}}) {
		t.Errorf("OfLabel(Ohio) = %v", got)
	}
	if c, ok := d.Centroid(Ohio); !ok || c != [2]float64{3, 4} {
		t.Errorf("Centroid(Ohio) = %v, %v", c, ok)
	}
	if _, ok := d.Centroid(Michigan); ok {
		t.Error("Centroid of an absent label reported ok")
	}
	if got := d.Labels64(); !reflect.DeepEqual(got, []int64{2, 1, 2}) {
		t.Errorf("Labels64 = %v", got)
	}
	if err := d.Validate(); err != nil {
		t.Error(err)
	}
	d.Labels = d.Labels[:2]
	if err := d.Validate(); err == nil {
		t.Error("Validate accepted 3 points with 2 labels")
	}
}

func TestParseCSVErrors(t *testing.T) {
	for input, want := range map[string]string{
		"a,b,c\n1,2,0\n":     "header",
		"x,y,label\n1,2\n":   "wrong number of fields",
		"x,y,label\n1,z,0\n": `parsing "z"`,
		"x,y,label\n1,2,7\n": "outside 0..4",
		"x,y,label\n":        "no points",
	} {
		if _, err := parseCSV([]byte(input)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseCSV(%q): err = %v, want %q", input, err, want)
		}
	}
}

func FuzzDecodePT(f *testing.F) {
	dir := f.TempDir()
	small := &Dataset{Points: [][2]float64{{0.5, -1}, {2, 3}}, Labels: []int{Oklahoma, Wisconsin}}
	path := filepath.Join(dir, "small.pt")
	if err := small.WritePT(path); err != nil {
		f.Fatal(err)
	}
	for _, p := range []string{path, coursePT} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodePT(b)
		if err != nil {
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("DecodePT returned an invalid dataset: %v", err)
		}
	})
}

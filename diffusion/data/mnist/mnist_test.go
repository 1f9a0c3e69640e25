package mnist

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func load(t *testing.T, split string) *Set {
	t.Helper()
	s, err := Load(split)
	if err != nil {
		t.Fatalf("Load(%q): %v", split, err)
	}
	return s
}

func TestLoadSplits(t *testing.T) {
	// Known label counts of the MNIST splits.
	trainCounts := [NumClasses]int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}
	testCounts := [NumClasses]int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}
	for _, tc := range []struct {
		split      string
		n          int
		counts     [NumClasses]int
		firstLabel int
		mean       float64
	}{
		{Train, TrainSize, trainCounts, 5, 0.1307},
		{Test, TestSize, testCounts, 7, 0.1325},
	} {
		s := load(t, tc.split)
		if s.N != tc.n || s.Rows != Rows || s.Cols != Cols || len(s.Images) != tc.n*Rows*Cols || len(s.Labels) != tc.n {
			t.Fatalf("%s: N=%d %dx%d, %d values, %d labels", tc.split, s.N, s.Rows, s.Cols, len(s.Images), len(s.Labels))
		}
		if got := s.ClassCounts(); got != tc.counts {
			t.Errorf("%s: label counts %v, want %v", tc.split, got, tc.counts)
		}
		if s.Labels[0] != tc.firstLabel {
			t.Errorf("%s: first label %d, want %d", tc.split, s.Labels[0], tc.firstLabel)
		}
		lo, hi, sum := float32(math.Inf(1)), float32(math.Inf(-1)), 0.0
		for _, v := range s.Images {
			lo, hi = min(lo, v), max(hi, v)
			sum += float64(v)
		}
		if lo != 0 || hi != 1 {
			t.Errorf("%s: pixel range [%v, %v], want [0, 1]", tc.split, lo, hi)
		}
		if mean := sum / float64(len(s.Images)); math.Abs(mean-tc.mean) > 5e-4 {
			t.Errorf("%s: mean pixel %.4f, want %.4f", tc.split, mean, tc.mean)
		}
		// The first training image is a 5: its centre rows have ink, its corners none.
		img := s.Image(0)
		if img[0] != 0 || img[len(img)-1] != 0 {
			t.Errorf("%s: corner pixels of image 0 are not background", tc.split)
		}
	}
}

func TestFindDirSources(t *testing.T) {
	dir, err := FindDir()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dir, "!go!m!n!i!s!t@") {
		t.Logf("MNIST found outside the module cache: %s", dir)
	}
	// WithDir accepts the module root (files in data/) as well as the data folder.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if got, err := FindDir(WithDir(d)); err != nil || got != dir {
			t.Errorf("WithDir(%s): %q, %v", d, got, err)
		}
	}
	t.Setenv(EnvDir, dir)
	if got, err := FindDir(); err != nil || got != dir {
		t.Errorf("$%s: %q, %v", EnvDir, got, err)
	}
	empty := t.TempDir()
	t.Setenv(EnvDir, empty)
	if _, err := FindDir(); err == nil || !strings.Contains(err.Error(), EnvDir) {
		t.Errorf("empty $%s: error %v", EnvDir, err)
	}
	if _, err := FindDir(WithDir(empty)); err == nil || !strings.Contains(err.Error(), "WithDir") {
		t.Errorf("empty WithDir: error %v", err)
	}
	if _, err := Load("validation", WithDir(dir)); err == nil {
		t.Error("unknown split gave no error")
	}
}

// TestFindDirOutsideTheModule runs from a folder outside any module, where `go list -m`
// cannot help: the module cache scan must still find the files, and with an empty
// module cache the error must give the download command.
func TestFindDirOutsideTheModule(t *testing.T) {
	dir, err := FindDir()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(filepath.ToSlash(dir), escapeModulePath(ModulePath)+"@") {
		t.Skipf("MNIST is not in the module cache (%s)", dir)
	}
	cache := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(dir)))) // .../mod/github.com/petar/X@v/data
	t.Chdir(t.TempDir())
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "")
	t.Setenv("GOMODCACHE", cache)
	if got, err := FindDir(); err != nil || got != dir {
		t.Errorf("from outside the module: %q, %v (want %s)", got, err, dir)
	}
	t.Setenv("GOMODCACHE", t.TempDir())
	_, err = FindDir()
	if err == nil || !strings.Contains(err.Error(), DownloadCommand) {
		t.Errorf("with an empty module cache: error %v, want one giving %q", err, DownloadCommand)
	}
}

// writeSplit writes MNIST-like test files into a new folder and returns it.
func writeSplit(t *testing.T, images, labels []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), images, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "t10k-labels-idx1-ubyte"), labels, 0o644); err != nil {
		t.Fatal(err)
	}
	// FindDir looks for the training images to recognise an MNIST folder.
	if err := os.WriteFile(filepath.Join(dir, "train-images-idx3-ubyte"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadSmallFiles(t *testing.T) {
	pix := []byte{0, 255, 51, 102, 0, 0, 0, 0}
	dir := writeSplit(t, gzipped(t, encodeIDX(IDXUint8, []uint32{2, 2, 2}, pix)), encodeIDX(IDXUint8, []uint32{2}, []byte{3, 9}))
	s, err := Load(Test, WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 2 || s.Rows != 2 || s.Cols != 2 || s.Labels[0] != 3 || s.Labels[1] != 9 {
		t.Fatalf("got N=%d %dx%d labels %v", s.N, s.Rows, s.Cols, s.Labels)
	}
	want := []float32{0, 1, 0.2, 0.4}
	for i, v := range s.Image(0) {
		if math.Abs(float64(v-want[i])) > 1e-6 {
			t.Errorf("pixel %d = %v, want %v", i, v, want[i])
		}
	}
}

func TestLoadCorruptFiles(t *testing.T) {
	realDir, err := FindDir()
	if err != nil {
		t.Fatal(err)
	}
	realImages, err := os.ReadFile(filepath.Join(realDir, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	labels := encodeIDX(IDXUint8, []uint32{2}, []byte{1, 2})
	images := gzipped(t, encodeIDX(IDXUint8, []uint32{2, 2, 2}, make([]byte, 8)))
	corrupt := append([]byte(nil), realImages...)
	for i := 1000; i < 1100; i++ {
		corrupt[i] ^= 0x5a
	}
	for _, tc := range []struct {
		name           string
		images, labels []byte
		bad, want      string // the file the error must name, and a word it must contain
	}{
		{"truncated real gzip", realImages[:len(realImages)/2], labels, "images", "gzip"},
		{"corrupt real gzip", corrupt, labels, "images", "gzip"},
		{"labels for images", images, images, "labels", "labels must be uint8 with 1 dimension"},
		{"images for labels", gzipped(t, labels), labels, "images", "images must be uint8 with 3 dimensions"},
		{"label count", images, encodeIDX(IDXUint8, []uint32{3}, []byte{1, 2, 3}), "labels", "3 labels"},
		{"label 10", images, encodeIDX(IDXUint8, []uint32{2}, []byte{1, 10}), "labels", "not a digit"},
		{"float images", gzipped(t, encodeIDX(IDXFloat32, []uint32{1, 1, 1}, make([]byte, 4))), labels, "images", "float32"},
		{"empty images", gzipped(t, encodeIDX(IDXUint8, []uint32{0, 28, 28}, nil)), labels, "images", "no pixels"},
		{"truncated labels", images, labels[:len(labels)-1], "labels", "truncated"},
		{"not IDX", []byte("<html>rate limited</html>"), labels, "images", "bad magic number"},
	} {
		dir := writeSplit(t, tc.images, tc.labels)
		_, err := Load(Test, WithDir(dir))
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), "t10k-"+tc.bad) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q should name the %s file and contain %q", tc.name, err, tc.bad, tc.want)
		}
	}
}

func TestRawFilesReadLikeGzip(t *testing.T) {
	dir, err := FindDir()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	a, err := DecodeIDX(bytes.NewReader(raw), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ReadIDXFile(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Data, b.Data) || len(a.Data) != TestSize || a.Data[0] != 7 {
		t.Errorf("raw and gzip labels differ or are wrong: %d vs %d bytes", len(a.Data), len(b.Data))
	}
}

func TestSubsetsAndScaling(t *testing.T) {
	s := load(t, Test)
	per, err := s.PerClass(4)
	if err != nil {
		t.Fatal(err)
	}
	if per.N != 40 || len(per.Images) != 40*Rows*Cols {
		t.Fatalf("PerClass(4): N=%d", per.N)
	}
	idx, err := s.ClassIndices(4)
	if err != nil {
		t.Fatal(err)
	}
	for d := range NumClasses {
		for j := range 4 {
			i := d*4 + j
			if per.Labels[i] != d {
				t.Errorf("PerClass image %d has label %d, want %d", i, per.Labels[i], d)
			}
			if j > 0 && idx[d][j] <= idx[d][j-1] {
				t.Errorf("digit %d: indices %v not in file order", d, idx[d])
			}
			if !slices.Equal(per.Image(i), s.Image(idx[d][j])) {
				t.Errorf("PerClass image %d is not image %d", i, idx[d][j])
			}
		}
	}
	// The first 7 in the test set is image 0.
	if idx[7][0] != 0 {
		t.Errorf("first 7 at %d, want 0", idx[7][0])
	}
	if _, err := s.ClassIndices(2000); err == nil {
		t.Error("ClassIndices beyond a digit's count gave no error")
	}
	head, err := s.Head(3)
	if err != nil || head.N != 3 || !slices.Equal(head.Image(2), s.Image(2)) {
		t.Errorf("Head(3): %v", err)
	}
	if _, err := s.Subset([]int{0, s.N}); err == nil {
		t.Error("out-of-range Subset gave no error")
	}
	if s.Image(-1) != nil || s.Image(s.N) != nil {
		t.Error("Image out of range is not nil")
	}
	sym := s.Scaled(-1, 1)
	for i, v := range s.Images {
		if w := 2*v - 1; sym[i] != w {
			t.Fatalf("Scaled(-1, 1)[%d] = %v, want %v", i, sym[i], w)
		}
	}
	imgs, labels, err := s.Batch([]int{5, 0}, -1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if labels[0] != s.Labels[5] || labels[1] != 7 || !slices.Equal(imgs[Rows*Cols:], sym[:Rows*Cols]) {
		t.Error("Batch does not match Scaled")
	}
	if _, _, err := s.Batch([]int{-1}, 0, 1); err == nil {
		t.Error("out-of-range Batch gave no error")
	}
	bad := &Set{Images: make([]float32, 3), Labels: []int{1}, N: 1, Rows: 2, Cols: 2}
	if _, err := bad.PerClass(1); err == nil {
		t.Error("inconsistent Set gave no error")
	}
}

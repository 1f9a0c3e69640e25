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

// NetConfig sizes the score MLP s_theta([x1, x2, t]): 3 -> Layers x Width -> 2.
// JSON-serializable (saved with checkpoints).
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
}

// Time inputs of NetConfig.
const (
	TimeT        = "t"
	TimeLogSigma = "logsigma"
)

// DefaultNet is the notebook's network: 3 hidden layers of 128 SiLU units on x, 32 pairs of
// Fourier features of x (scale 6) and log sigma(t), output scaled by 1/sigma(t).
func DefaultNet() NetConfig {
	return NetConfig{Width: 128, Layers: 3, Activation: nets.SiLU, ScaleBySigma: true, TimeInput: TimeLogSigma, Fourier: 32, FourierScale: 6}
}

// Validate reports a configuration that cannot build a network.
func (c NetConfig) Validate() error {
	if c.Width < 1 || c.Layers < 1 {
		return fmt.Errorf("spiral: the score network needs width >= 1 and layers >= 1, got %d, %d", c.Width, c.Layers)
	}
	if err := (nets.DenoiserConfig{DataDim: Dim, HiddenWidth: c.Width, HiddenLayers: c.Layers, Activation: c.Activation}).Validate(); err != nil {
		return fmt.Errorf("spiral: %w", err)
	}
	if c.Fourier < 0 || (c.Fourier > 0 && !(c.FourierScale > 0)) {
		return fmt.Errorf("spiral: Fourier features need a count >= 0 and a scale > 0, got %d, %g", c.Fourier, c.FourierScale)
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
	if _, err := n.Predict(make([]float32, Dim), []float64{0.5}, nil); err != nil {
		return nil, err
	}
	return n, nil
}

// Backend returns the backend the network runs on.
func (n *Net) Backend() compute.Backend { return n.backend }

// sigmaOf returns sigma(t) of the process in the graph, floored at minSigma.
func (n *Net) sigmaOf(t *Node) *Node {
	p := n.Process
	logAbar := Neg(Add(MulScalar(t, p.BetaMin), MulScalar(Square(t), (p.BetaMax-p.BetaMin)/2)))
	s2 := Neg(Expm1(logAbar))
	return Sqrt(Max(s2, Scalar(t.Graph(), t.DType(), minSigma*minSigma)))
}

// graph returns the scores [B, 2] of x [B, 2] at times t [B] (once per graph).
func (n *Net) graph(scope *model.Scope, x, t *Node) *Node {
	net := scope.In(NetScope)
	feature := t
	if n.Config.TimeInput == TimeLogSigma {
		feature = Log(n.sigmaOf(t))
	}
	in := x
	if f := n.Config.Fourier; f > 0 {
		rng := rand.New(rand.NewPCG(0xf0, 0x71e))
		b := make([]float32, Dim*f)
		for i := range b {
			b[i] = float32(n.Config.FourierScale * rng.NormFloat64())
		}
		proj := MatMul(x, Const(x.Graph(), tensors.FromFlatDataAndDimensions(b, Dim, f)))
		in = Concatenate([]*Node{x, Sin(proj), Cos(proj)}, -1)
	}
	h := Concatenate([]*Node{in, InsertAxes(feature, -1)}, -1)
	for i := range n.Config.Layers {
		sc := net.In("layer_%d", i)
		h = nets.ApplyActivation(sc, n.Config.Activation, nets.Linear(sc, h, n.Config.Width))
	}
	out := nets.Linear(net.In("output"), h, Dim)
	if n.Config.ScaleBySigma {
		out = Div(out, InsertAxes(n.sigmaOf(t), -1))
	}
	return out
}

// scoreAndTrace returns the scores [B, 2] and their divergences [B]: tr(d s / d x) by two
// backward passes, one per output coordinate (the samples are independent, so the gradient
// of sum_b s_b,d with respect to x holds d s_b,d / d x_b in row b).
func (n *Net) scoreAndTrace(scope *model.Scope, x, t *Node) (s, trace *Node) {
	s = n.graph(scope, x, t)
	for d := range Dim {
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

// inputs checks x and t and returns them as tensors.
func inputs(x []float32, t []float64) (*tensors.Tensor, *tensors.Tensor, error) {
	if len(t) == 0 || len(x) != Dim*len(t) {
		return nil, nil, fmt.Errorf("spiral: %d values for %d times (want 2 per time, at least one)", len(x), len(t))
	}
	tf := make([]float32, len(t))
	for i, v := range t {
		if !(v >= 0 && v <= 1) {
			return nil, nil, fmt.Errorf("spiral: time %g outside [0, 1]", v)
		}
		tf[i] = float32(v)
	}
	return tensors.FromFlatDataAndDimensions(x, len(t), Dim), tensors.FromFlatDataAndDimensions(tf, len(t)), nil
}

// Predict returns the learned scores at x (n*2 values) and times t (cond is ignored).
func (n *Net) Predict(x []float32, t []float64, _ []int) (out []float32, err error) {
	defer savedmodel.RecoverError(&err, "spiral.Net.Predict")
	if n == nil || n.store == nil {
		return nil, fmt.Errorf("spiral.Net.Predict: nil or uninitialized network (use NewNet or Load)")
	}
	xt, tt, err := inputs(x, t)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.predict == nil {
		if n.predict, err = model.NewExec(n.backend, n.store, func(scope *model.Scope, x, t *Node) *Node {
			return n.graph(scope, x, t)
		}); err != nil {
			return nil, err
		}
	}
	res, err := n.predict.Call1(xt, tt)
	if err != nil {
		return nil, err
	}
	defer res.FinalizeAll()
	return tensors.MustCopyFlatData[float32](res), nil
}

// ScoreAndTrace returns the learned scores and their divergences tr(d s / d x), computed
// exactly by autodiff.
func (n *Net) ScoreAndTrace(x []float32, t []float64) (score []float32, trace []float64, err error) {
	defer savedmodel.RecoverError(&err, "spiral.Net.ScoreAndTrace")
	if n == nil || n.store == nil {
		return nil, nil, fmt.Errorf("spiral.Net.ScoreAndTrace: nil or uninitialized network (use NewNet or Load)")
	}
	xt, tt, err := inputs(x, t)
	if err != nil {
		return nil, nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.withDiv == nil {
		if n.withDiv, err = model.NewExec(n.backend, n.store, func(scope *model.Scope, x, t *Node) (*Node, *Node) {
			return n.scoreAndTrace(scope, x, t)
		}); err != nil {
			return nil, nil, err
		}
	}
	s, tr, err := n.withDiv.Call2(xt, tt)
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
// state is not saved).
func (n *Net) Save(dir string) error {
	if n == nil || n.store == nil {
		return fmt.Errorf("spiral.Net.Save: nil or uninitialized network")
	}
	if err := savedmodel.Save(dir, n.store, "/"+NetScope, Meta{Kind: Kind, Format: FormatVersion, Net: n.Config, Process: n.Process}); err != nil {
		return fmt.Errorf("spiral: %w", err)
	}
	return nil
}

// Load loads a network saved with Save. If want is not nil, the checkpoint's network and
// process must equal it: another model's checkpoint, another size or another schedule is an
// error naming both.
func Load(backend compute.Backend, dir string, want *Meta) (*Net, error) {
	var meta Meta
	if err := savedmodel.ReadMeta(dir, &meta); err != nil {
		return nil, fmt.Errorf("spiral: %w", err)
	}
	if meta.Kind != Kind {
		return nil, fmt.Errorf("spiral: checkpoint %q holds a %q, not a %q", dir, meta.Kind, Kind)
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

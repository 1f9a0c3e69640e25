// Package imagediff trains and samples the image models of the MNIST assignments with the
// UNets of package nets: the one-step denoiser (CS180 5B part 1), flow matching with optional
// class conditioning and classifier-free guidance (part 2), and the class-conditional DDPM
// (the MNIST DDPM report).
//
// The three objectives share one training graph. For clean images x, Gaussian noise n, a time
// fraction tau in [0, 1] and per-example coefficients (a, b, c, d) drawn on the host, the UNet
// sees a*x + b*n and is trained by MSE to predict c*x + d*n:
//
//	denoise  a = 1, b = sigma               target x               (predicts the clean image;
//	                                                               a = 0 with PureNoise)
//	flow     a = tau, b = 1 - tau          target x - n           (velocity of x_tau = tau x + (1-tau) n)
//	ddpm     a = sqrt(abar_t), b = sqrt(1 - abar_t)  target n     (eps-prediction, t uniform in 0..T-1)
//
// Class-conditioned models see one-hot class vectors, replaced by zeros with probability
// PUncond during training (the "unconditional" input of classifier-free guidance).
package imagediff

import (
	"fmt"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/dataparallel"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/schedule"
)

// Objective names what a model learns.
type Objective string

const (
	// Denoise: predict the clean image from image + Sigma * noise (one step; CS180 5B part 1).
	Denoise Objective = "denoise"
	// Flow: flow matching on the straight path from noise (tau = 0) to data (tau = 1); the
	// network predicts the velocity x - n (CS180 5B part 2).
	Flow Objective = "flow"
	// DDPM: predict the noise of q(x_t | x_0) under Schedule (Ho et al. 2020).
	DDPM Objective = "ddpm"
)

// Scope is the scope of the UNet's variables in a model's store.
const Scope = "unet"

// DType of all computations.
const DType = dtypes.Float32

// Kind is the model kind stored in checkpoints.
const Kind = "image-diffusion"

// FormatVersion of the checkpoint metadata.
const FormatVersion = 1

// TimeScaleSinusoidal multiplies tau in [0, 1] before a sinusoidal time embedding, so that the
// embedding's frequencies (1 .. 1/10000) see the range of integer diffusion steps.
const TimeScaleSinusoidal = 1000

// Config describes a model: network, objective and data range. It is saved with checkpoints.
type Config struct {
	Net       nets.UNetConfig `json:"net"`
	Objective Objective       `json:"objective"`
	// Sigma is the noise level of the Denoise objective (0.5 in CS180).
	Sigma float64 `json:"sigma,omitempty"`
	// PureNoise makes the Denoise objective's input pure noise Sigma * n, without the image
	// (CS180's "denoising pure noise": the best prediction is then the mean training image).
	PureNoise bool `json:"pure_noise,omitempty"`
	// Schedule of the DDPM objective.
	Schedule *schedule.Config `json:"schedule,omitempty"`
	// PixelLo and PixelHi are the range the images are mapped to from [0, 1] (CS180 uses
	// [0, 1]; the DDPM report [-1, 1]). Samples are returned in this range.
	PixelLo float32 `json:"pixel_lo"`
	PixelHi float32 `json:"pixel_hi"`
}

// Validate reports a configuration that cannot build a model.
func (c Config) Validate() error {
	if err := c.Net.Validate(); err != nil {
		return fmt.Errorf("imagediff: %w", err)
	}
	if !(c.PixelHi > c.PixelLo) {
		return fmt.Errorf("imagediff: pixel range [%g, %g] is empty", c.PixelLo, c.PixelHi)
	}
	switch c.Objective {
	case Denoise:
		if !(c.Sigma > 0) {
			return fmt.Errorf("imagediff: the denoise objective needs Sigma > 0, got %g", c.Sigma)
		}
		if c.Net.TimeConditioned {
			return fmt.Errorf("imagediff: the denoise objective takes an unconditional UNet")
		}
	case Flow, DDPM:
		if c.PureNoise {
			return fmt.Errorf("imagediff: PureNoise applies to the denoise objective only")
		}
		if !c.Net.TimeConditioned {
			return fmt.Errorf("imagediff: the %s objective needs a time-conditioned UNet", c.Objective)
		}
		if c.Objective == DDPM {
			if c.Schedule == nil {
				return fmt.Errorf("imagediff: the ddpm objective needs a Schedule")
			}
			if _, err := schedule.New(*c.Schedule); err != nil {
				return fmt.Errorf("imagediff: %w", err)
			}
		}
	default:
		return fmt.Errorf("imagediff: unknown objective %q (want %q, %q or %q)", c.Objective, Denoise, Flow, DDPM)
	}
	return nil
}

// Model is a UNet with its objective, its variables in a GoMLX store.
type Model struct {
	Config
	backend compute.Backend
	store   *model.Store
	sched   *schedule.Schedule    // DDPM only
	train   *dataparallel.Stepper // lazily built; keeps the optimizer state between Train calls
	infer   *model.Exec           // lazily built prediction graph
}

// New returns a model with freshly initialized weights (PyTorch's initialization), seeded.
func New(backend compute.Backend, cfg Config, seed int64) (m *Model, err error) {
	defer savedmodel.RecoverError(&err, "imagediff.New")
	if backend == nil {
		return nil, fmt.Errorf("imagediff: nil backend")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m = &Model{Config: cfg, backend: backend, store: model.NewStore()}
	if cfg.Objective == DDPM {
		if m.sched, err = schedule.New(*cfg.Schedule); err != nil {
			return nil, err
		}
	}
	if err := m.store.SetRNGStateFromSeed(seed); err != nil {
		return nil, err
	}
	// Create the variables with one tiny inference graph.
	exec, err := model.NewExec(backend, m.store, func(scope *model.Scope, x *Node) *Node {
		return m.graph(scope, x, m.timeNode(x.Graph(), 1), m.classNode(x.Graph(), 1))
	})
	if err != nil {
		return nil, err
	}
	s := cfg.Net.ImageSize
	zeros := make([]float32, s*s*cfg.Net.Channels)
	out, err := exec.Exec(tensorOf(zeros, 1, s, s, cfg.Net.Channels))
	if err != nil {
		return nil, err
	}
	out[0].FinalizeAll()
	return m, nil
}

// timeNode returns a constant time input for n examples (tau = 1), or nil for unconditional nets.
func (m *Model) timeNode(g *Graph, n int) *Node {
	if !m.Net.TimeConditioned {
		return nil
	}
	return Ones(g, shapeOf(n))
}

// classNode returns all-zero class vectors for n examples, or nil without class conditioning.
func (m *Model) classNode(g *Graph, n int) *Node {
	if m.Net.NumClasses == 0 {
		return nil
	}
	return Zeros(g, shapeOf(n, m.Net.NumClasses))
}

// graph is the UNet on images x [B, S, S, C] with time fractions tau [B] (nil if unconditional)
// and class vectors c [B, K] (nil without classes).
func (m *Model) graph(scope *model.Scope, x, tau, c *Node) *Node {
	if tau != nil && m.Net.SinusoidalTimeDim > 0 {
		tau = MulScalar(tau, TimeScaleSinusoidal)
	}
	return nets.UNet(scope.In(Scope), m.Net, x, tau, c)
}

// Backend returns the model's backend.
func (m *Model) Backend() compute.Backend { return m.backend }

// Store returns the store holding the model's variables (and the optimizer's, once trained).
func (m *Model) Store() *model.Store { return m.store }

// NumParameters is the number of trainable weights of the UNet.
func (m *Model) NumParameters() int { return m.store.Scope("/" + Scope).NumParameters() }

// Schedule returns the noise schedule of a DDPM model (nil for the other objectives).
func (m *Model) Schedule() *schedule.Schedule { return m.sched }

// meta is the content of a checkpoint's model.json.
type meta struct {
	Kind   string `json:"kind"`
	Format int    `json:"format"`
	Config Config `json:"config"`
}

// Save writes the model's weights (including batch-norm statistics) and Config into dir,
// replacing any previous checkpoint there atomically. Optimizer state is not saved.
func (m *Model) Save(dir string) error {
	if err := savedmodel.Save(dir, m.store, "/"+Scope, meta{Kind: Kind, Format: FormatVersion, Config: m.Config}); err != nil {
		return fmt.Errorf("imagediff: %w", err)
	}
	return nil
}

// ReadConfig returns the Config of the checkpoint in dir.
func ReadConfig(dir string) (Config, error) {
	var mt meta
	if err := savedmodel.ReadMeta(dir, &mt); err != nil {
		return Config{}, fmt.Errorf("imagediff: %w", err)
	}
	if mt.Kind != Kind {
		return Config{}, fmt.Errorf("imagediff: checkpoint %q holds a %q, not a %q", dir, mt.Kind, Kind)
	}
	if mt.Format != FormatVersion {
		return Config{}, fmt.Errorf("imagediff: checkpoint %q has format %d, this code reads format %d", dir, mt.Format, FormatVersion)
	}
	return mt.Config, nil
}

// Load loads a model saved with Save. If want is not nil, the checkpoint's Config must equal it.
func Load(backend compute.Backend, dir string, want *Config) (*Model, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	if want != nil && !sameConfig(cfg, *want) {
		return nil, fmt.Errorf("imagediff: checkpoint %q has config %+v, expected %+v", dir, cfg, *want)
	}
	m, err := New(backend, cfg, 0)
	if err != nil {
		return nil, fmt.Errorf("imagediff: checkpoint %q: %w", dir, err)
	}
	if err := savedmodel.LoadVariables(dir, m.store, "/"+Scope); err != nil {
		return nil, fmt.Errorf("imagediff: %w", err)
	}
	return m, nil
}

func sameConfig(a, b Config) bool {
	if (a.Schedule == nil) != (b.Schedule == nil) || (a.Schedule != nil && *a.Schedule != *b.Schedule) {
		return false
	}
	a.Schedule, b.Schedule = nil, nil
	return a == b
}

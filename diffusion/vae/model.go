// Package vae is the variational autoencoder of the final exam, Exercise 3, part 3: an MLP
// encoder 784-400(ReLU)-(mu, logvar) and decoder dz-400(ReLU)-784(sigmoid) trained on MNIST
// with a Bernoulli likelihood, by the negative ELBO = BCE + KL(q(z|x) || N(0, I)).
//
// Encode (the encoder means) and Decode (latents to pixel probabilities) are what latent
// diffusion builds on: map MNIST to latents, sample latents by another model, decode them.
package vae

import (
	"fmt"
	"math"
	"sync"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/dataparallel"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/safeexp"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
)

// Pixels is the size of an MNIST image (28 x 28), the data dimension of the VAE.
const Pixels = 28 * 28

// Scopes of the variables in the model's store: Scope/EncoderScope and Scope/DecoderScope.
const (
	Scope        = "vae"
	EncoderScope = "encoder"
	DecoderScope = "decoder"
)

// NetConfig sizes the VAE. JSON-serializable (saved with checkpoints).
type NetConfig struct {
	Latent int `json:"latent"` // latent dimension d_z (the exam: 2)
	Hidden int `json:"hidden"` // hidden units of the encoder and of the decoder (the exam: 400)
}

// DefaultNet is the exam's VAE: d_z = 2, 400 hidden units.
func DefaultNet() NetConfig { return NetConfig{Latent: 2, Hidden: 400} }

// Validate reports a configuration that cannot build a VAE.
func (c NetConfig) Validate() error {
	if c.Latent < 1 || c.Latent > 1024 {
		return fmt.Errorf("vae: the latent dimension must be in [1, 1024], got %d", c.Latent)
	}
	if c.Hidden < 1 || c.Hidden > 1<<14 {
		return fmt.Errorf("vae: the hidden width must be in [1, 16384], got %d", c.Hidden)
	}
	return nil
}

// Model is a VAE with its weights.
type Model struct {
	Config NetConfig

	backend compute.Backend
	store   *model.Store

	mu             sync.Mutex
	encode, decode *model.Exec
	losses         *model.Exec
	train          *dataparallel.Stepper // the compiled training step
}

// New creates a VAE with freshly initialized weights (PyTorch's nn.Linear initialization)
// drawn from seed.
func New(backend compute.Backend, cfg NetConfig, seed int64) (m *Model, err error) {
	defer savedmodel.RecoverError(&err, "vae.New")
	if backend == nil {
		return nil, fmt.Errorf("vae.New: nil backend")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m = &Model{Config: cfg, backend: backend, store: model.NewStore()}
	if err := m.store.SetRNGStateFromSeed(seed); err != nil {
		return nil, err
	}
	// One evaluation creates every variable.
	if _, _, err := m.Losses(make([]float32, Pixels), make([]float32, cfg.Latent)); err != nil {
		return nil, err
	}
	return m, nil
}

// Backend returns the backend the model runs on.
func (m *Model) Backend() compute.Backend { return m.backend }

// encoderGraph (like decoderGraph) takes the model's scope vs = root.In(Scope) (a graph may
// visit it once only) and returns the means and log-variances [B, dz] of q(z|x) for x [B, 784].
func (m *Model) encoderGraph(vs *model.Scope, x *Node) (mu, logvar *Node) {
	sc := vs.In(EncoderScope)
	h := nets.ApplyActivation(sc, nets.ReLU, nets.Linear(sc.In("hidden"), x, m.Config.Hidden))
	return nets.Linear(sc.In("mu"), h, m.Config.Latent), nets.Linear(sc.In("logvar"), h, m.Config.Latent)
}

// decoderGraph returns the Bernoulli logits [B, 784] of p(x|z) for z [B, dz].
func (m *Model) decoderGraph(vs *model.Scope, z *Node) *Node {
	sc := vs.In(DecoderScope)
	h := nets.ApplyActivation(sc, nets.ReLU, nets.Linear(sc.In("hidden"), z, m.Config.Hidden))
	return nets.Linear(sc.In("output"), h, Pixels)
}

// lossGraph returns the per-image reconstruction term (BCE summed over pixels, in nats) and
// KL term [B] of x [B, 784] with the reparameterization noise eps [B, dz]:
// z = mu + exp(logvar / 2) eps.
func (m *Model) lossGraph(scope *model.Scope, x, eps *Node) (recon, kl *Node) {
	vs := scope.In(Scope)
	mu, logvar := m.encoderGraph(vs, x)
	z := Add(mu, Mul(safeexp.Exp(MulScalar(logvar, 0.5)), eps))
	logits := m.decoderGraph(vs, z)
	return bceWithLogits(logits, x), klGraph(mu, logvar)
}

// bceWithLogits is sum_pixels [softplus(l) - x l] = -sum [x log sigmoid(l) + (1-x) log(1 - sigmoid(l))],
// computed stably (safeexp.Softplus: max(l, 0) + log(1 + exp(-|l|))).
func bceWithLogits(logits, x *Node) *Node {
	return ReduceSum(Sub(safeexp.Softplus(logits), Mul(x, logits)), -1)
}

// klGraph is KL(N(mu, diag exp(logvar)) || N(0, I)) = -1/2 sum (1 + logvar - mu^2 - exp(logvar)).
func klGraph(mu, logvar *Node) *Node {
	return MulScalar(ReduceSum(Sub(Sub(AddScalar(logvar, 1), Square(mu)), safeexp.Exp(logvar)), -1), -0.5)
}

// KL returns the closed form KL(N(mu, diag exp(logvar)) || N(0, I)) of one latent (host code,
// the reference of the tests and of the graph's klGraph).
func KL(mu, logvar []float64) float64 {
	s := 0.0
	for i := range mu {
		s += 1 + logvar[i] - mu[i]*mu[i] - math.Exp(logvar[i])
	}
	return -s / 2
}

// batchRows checks that flat holds whole rows of width and returns their number.
func batchRows(flat []float32, width int, what string) (int, error) {
	if len(flat) == 0 || len(flat)%width != 0 {
		return 0, fmt.Errorf("vae: %d values of %s are not a whole number (>= 1) of rows of %d", len(flat), what, width)
	}
	return len(flat) / width, nil
}

// batchTensor checks that flat holds whole rows of width and returns them as an [n, width] tensor.
func batchTensor(flat []float32, width int, what string) (*tensors.Tensor, int, error) {
	n, err := batchRows(flat, width, what)
	if err != nil {
		return nil, 0, err
	}
	return tensors.FromFlatDataAndDimensions(flat, n, width), n, nil
}

// Losses returns the per-image reconstruction (BCE, nats) and KL terms of images (n*784 values
// in [0, 1]) with the reparameterization noise eps (n*d_z values); their sum is the
// single-sample estimate of -ELBO per image.
func (m *Model) Losses(images, eps []float32) (recon, kl []float64, err error) {
	defer savedmodel.RecoverError(&err, "vae.Model.Losses")
	if m == nil || m.store == nil {
		return nil, nil, fmt.Errorf("vae.Model.Losses: nil or uninitialized model (use New or Load)")
	}
	x, n, err := batchTensor(images, Pixels, "images")
	if err != nil {
		return nil, nil, err
	}
	e, ne, err := batchTensor(eps, m.Config.Latent, "noise")
	if err != nil {
		return nil, nil, err
	}
	if ne != n {
		return nil, nil, fmt.Errorf("vae: %d images but noise for %d", n, ne)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.losses == nil {
		if m.losses, err = model.NewExec(m.backend, m.store, func(scope *model.Scope, x, eps *Node) (*Node, *Node) {
			return m.lossGraph(scope, x, eps)
		}); err != nil {
			return nil, nil, err
		}
	}
	r, k, err := m.losses.Call2(x, e)
	if err != nil {
		return nil, nil, err
	}
	defer r.FinalizeAll()
	defer k.FinalizeAll()
	for _, v := range tensors.MustCopyFlatData[float32](r) {
		recon = append(recon, float64(v))
	}
	for _, v := range tensors.MustCopyFlatData[float32](k) {
		kl = append(kl, float64(v))
	}
	return recon, kl, nil
}

// chunk is the largest number of images Encode and Decode run through the model at once.
const chunk = 4096

// EncodeDist returns the means and log-variances (n*d_z values each) of q(z|x) for images
// (n*784 values in [0, 1]), in chunks of 4096 images.
func (m *Model) EncodeDist(images []float32) (mu, logvar []float32, err error) {
	if len(images) == 0 || len(images)%Pixels != 0 {
		return nil, nil, fmt.Errorf("vae: %d values of images are not a whole number (>= 1) of rows of %d", len(images), Pixels)
	}
	for lo := 0; lo < len(images); lo += chunk * Pixels {
		a, b, err := m.encodeChunk(images[lo:min(len(images), lo+chunk*Pixels)])
		if err != nil {
			return nil, nil, err
		}
		mu, logvar = append(mu, a...), append(logvar, b...)
	}
	return mu, logvar, nil
}

func (m *Model) encodeChunk(images []float32) (mu, logvar []float32, err error) {
	defer savedmodel.RecoverError(&err, "vae.Model.Encode")
	if m == nil || m.store == nil {
		return nil, nil, fmt.Errorf("vae.Model.Encode: nil or uninitialized model (use New or Load)")
	}
	x, _, err := batchTensor(images, Pixels, "images")
	if err != nil {
		return nil, nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.encode == nil {
		if m.encode, err = model.NewExec(m.backend, m.store, func(scope *model.Scope, x *Node) (*Node, *Node) {
			return m.encoderGraph(scope.In(Scope), x)
		}); err != nil {
			return nil, nil, err
		}
	}
	a, b, err := m.encode.Call2(x)
	if err != nil {
		return nil, nil, err
	}
	defer a.FinalizeAll()
	defer b.FinalizeAll()
	return tensors.MustCopyFlatData[float32](a), tensors.MustCopyFlatData[float32](b), nil
}

// Encode returns the encoder means (n*d_z values, row by row) of images (n*784 values in
// [0, 1]): the latents of latent diffusion.
func (m *Model) Encode(images []float32) ([]float32, error) {
	mu, _, err := m.EncodeDist(images)
	return mu, err
}

// Decode returns the decoder's pixel probabilities sigmoid(logits) (n*784 values in [0, 1])
// of latents (n*d_z values). A number of values that is not a multiple of d_z (latents of
// another dimension) is an error.
func (m *Model) Decode(latents []float32) (images []float32, err error) {
	if m == nil || m.store == nil {
		return nil, fmt.Errorf("vae.Model.Decode: nil or uninitialized model (use New or Load)")
	}
	d := m.Config.Latent
	if len(latents) == 0 || len(latents)%d != 0 {
		return nil, fmt.Errorf("vae: %d values of latents (d_z = %d) are not a whole number (>= 1) of rows of %d", len(latents), d, d)
	}
	for lo := 0; lo < len(latents); lo += chunk * d {
		x, err := m.decodeChunk(latents[lo:min(len(latents), lo+chunk*d)])
		if err != nil {
			return nil, err
		}
		images = append(images, x...)
	}
	return images, nil
}

func (m *Model) decodeChunk(latents []float32) (images []float32, err error) {
	defer savedmodel.RecoverError(&err, "vae.Model.Decode")
	if m == nil || m.store == nil {
		return nil, fmt.Errorf("vae.Model.Decode: nil or uninitialized model (use New or Load)")
	}
	z, _, err := batchTensor(latents, m.Config.Latent, fmt.Sprintf("latents (d_z = %d)", m.Config.Latent))
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.decode == nil {
		if m.decode, err = model.NewExec(m.backend, m.store, func(scope *model.Scope, z *Node) *Node {
			return safeexp.Sigmoid(m.decoderGraph(scope.In(Scope), z))
		}); err != nil {
			return nil, err
		}
	}
	out, err := m.decode.Call1(z)
	if err != nil {
		return nil, err
	}
	defer out.FinalizeAll()
	return tensors.MustCopyFlatData[float32](out), nil
}

// Reconstruct returns Decode(Encode(images)): the decoded encoder means.
func (m *Model) Reconstruct(images []float32) ([]float32, error) {
	z, err := m.Encode(images)
	if err != nil {
		return nil, err
	}
	return m.Decode(z)
}

// Kind of the VAE's checkpoints (savedmodel.MetaFile).
const Kind = "vae-mnist"

// FormatVersion of the checkpoint metadata.
const FormatVersion = 1

// Meta is the content of a checkpoint's MetaFile.
type Meta struct {
	Kind   string    `json:"kind"`
	Format int       `json:"format"`
	Net    NetConfig `json:"net"`
}

// Save writes the model's weights and sizes into dir, atomically (optimizer state is not
// saved).
func (m *Model) Save(dir string) error {
	if m == nil || m.store == nil {
		return fmt.Errorf("vae.Model.Save: nil or uninitialized model")
	}
	if err := savedmodel.Save(dir, m.store, "/"+Scope, Meta{Kind: Kind, Format: FormatVersion, Net: m.Config}); err != nil {
		return fmt.Errorf("vae: %w", err)
	}
	return nil
}

// Load loads a VAE saved with Save. If want is not nil, the checkpoint's sizes must equal it:
// another latent dimension is an error naming both, as is another model's checkpoint.
func Load(backend compute.Backend, dir string, want *NetConfig) (*Model, error) {
	var meta Meta
	if err := savedmodel.ReadMeta(dir, &meta); err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	if meta.Kind != Kind {
		return nil, fmt.Errorf("vae: checkpoint %q holds a %q model, not a %q", dir, meta.Kind, Kind)
	}
	if meta.Format != FormatVersion {
		return nil, fmt.Errorf("vae: checkpoint %q has format %d, this code reads format %d", dir, meta.Format, FormatVersion)
	}
	if want != nil {
		if meta.Net.Latent != want.Latent {
			return nil, fmt.Errorf("vae: checkpoint %q has latent dimension %d, expected %d (train it again with --latent=%d, or load it with --latent=%d)",
				dir, meta.Net.Latent, want.Latent, want.Latent, meta.Net.Latent)
		}
		if meta.Net != *want {
			return nil, fmt.Errorf("vae: checkpoint %q has sizes %+v, expected %+v", dir, meta.Net, *want)
		}
	}
	m, err := New(backend, meta.Net, 0)
	if err != nil {
		return nil, fmt.Errorf("vae: checkpoint %q: %w", dir, err)
	}
	if err := savedmodel.LoadVariables(dir, m.store, "/"+Scope); err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	return m, nil
}

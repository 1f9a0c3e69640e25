// Package sampling is the sampling core of every diffusion model of the project: one small
// model interface, time grids, samplers written once as short plain functions side by side
// (in the spirit of k-diffusion's sampling.py), guidance as wrappers that return a model,
// and the hooks editing algorithms need. Models (ddpm's MLP on 2-D points, imagediff's
// UNets, score models, latent diffusion) implement Model; nothing else here knows about
// them. It is a host-side loop in pure Go: the models run their GoMLX graphs inside
// Predict, the samplers only combine flat float32 slices with per-step coefficients.
//
// # The model interface
//
// A Model predicts, for a flat batch x of N samples of D values (row-major []float32) at
// times t (one per sample) with an optional integer condition per sample (a class label, or
// Null for "unconditional"), one of four quantities, reported by Predicts: Noise (eps),
// Velocity (dx/dt, flow matching), Score (grad log p_t) or X0 (the clean data). Host slices
// keep the interface backend-agnostic and let a model batch, shard or fuse as it likes; the
// cost of the copies is small next to a network evaluation (see BenchmarkSamplerOverhead).
// Per-sample times and conditions let one call carry a classifier-free-guidance pair, or
// samples at different noise levels.
//
// # Processes and time conventions
//
// Every sampler is written against a Process: a Gaussian forward process
// x_t = alpha(t) x0 + sigma(t) eps, in the time variable the model was trained with, which is
// also the t passed to Predict. Three are provided:
//
//	Discrete{schedule}  DDPM table schedules; t = step index k = 0 .. T-1, and k = -1 the clean
//	                    data (alpha 1, sigma 0). The model maps k to its own input
//	                    (ddpm: linspace(-1, 1, T)[k]; imagediff: (k+1)/T).
//	VPSDE{min, max}     continuous VP with linear beta(t) on t in [0, 1], t = 0 the data
//	                    (score-based models, Song et al. 2021).
//	Flow{}              flow matching's straight path x_tau = tau x0 + (1 - tau) eps on tau in
//	                    [0, 1], tau = 0 the noise, tau = 1 the data (CS180 5B, imagediff).
//
// From alpha, sigma and their derivatives every prediction converts into every other
// (Convert, AsPrediction): a sampler turns whatever the model predicts into the pair
// (x0, eps) and never asks which kind it was. The same scales give the reverse SDE (drift
// f = alpha'/alpha, g^2 = 2 sigma sigma' - 2 f sigma^2) and the probability-flow ODE
// dx/dt = alpha' x0 + sigma' eps, so the flow-matching ODE and the PF-ODE are one sampler,
// and a new process needs no sampler changes.
//
// # Time grids
//
// A grid is the list of S+1 times visited, always ordered from noise to data: grid[0] is the
// start, step i goes from grid[i] to grid[i+1] evaluating the model at grid[i], grid[S] is the
// end. Reverse processes descend (StridedGrid(1000, 30) = 990, 960, ..., 0, -1 as CS180 5A;
// EvenGrid(T, S) as ddpm.DDIMTimeSteps and imagediff.DDPMTimeSteps; UniformGrid(1, 0, K) for
// VPSDE), flows ascend (UniformGrid(0, 1, S)). Samplers check that alpha/sigma strictly
// grows along the grid. The last step of every sampler adds no noise.
//
// # Samplers
//
// All samplers have the signature of Sampler, func(Model, Options) ([]float32, error), once
// their own parameter is bound (SamplerByName does that for command lines):
//
//	Ancestral(m, o, v)   DDPM: mean of the posterior q(x_s | x_t, x0) plus noise of variance
//	                     beta or beta-tilde; on a strided grid, the posterior between strided steps
//	DDIM(m, o, eta)      eta = 0 deterministic (-> the PF-ODE with many steps), 1 = Ancestral
//	                     with the posterior variance
//	EulerODE, HeunODE    the ODE dx/dt = velocity: flow matching's Euler / Heun, and the
//	                     probability-flow ODE of a VP model
//	EulerMaruyama        the reverse-time SDE (score models, the final exam's sampler)
//	DPMSolverPP2M        DPM-Solver++(2M), second order in log-SNR, few steps
//
// A first-order step is an Update, x' = X x + X0 x0 + Eps eps + Noise z, whose four
// coefficients depend only on the scales of the two grid times (AncestralUpdate, DDIMUpdate,
// EulerUpdate, EulerMaruyamaUpdate). They are exported so that a fused in-graph fast path
// (ddpm's unrolled MLP sampler) takes its coefficients from the same code
// (Update.NoiseForm folds x0 into eps form) and can be tested equal to the host sampler.
//
// To add a sampler: write a function over start / run.steps / run.denoise / run.done (see
// firstOrder for an Update-based one, HeunODE for a multi-evaluation one, DPMSolverPP2M for a
// multistep one), add it to SamplerByName, and test it on the exact Gaussian denoiser of the
// tests (gaussModel), against the exact flow map (deterministic samplers) or the exact
// moments of its chain (stochastic ones). Precompute coefficients per step; per-element loops
// must avoid math.Exp and friends (slow on Intel with GOEXPERIMENT=simd unless
// GODEBUG=asyncpreemptoff=1).
//
// # Options shared by all samplers
//
// N, Dim, Process, Grid and Cond describe the run. Seed makes it deterministic: sample i
// draws its initial and step noise from its own stream seeded by (Seed, i), so a sample does
// not depend on N, on the batching inside the model or on the sampler's evaluation count.
// XStart with StartIndex starts from a given input noised to grid[StartIndex] (SDEdit,
// image-to-image; XStartNoised takes it as already noised). Clip clips x0 and recomputes eps
// (pixel ranges). Project runs after every step and may rewrite the samples (inpainting,
// see Inpaint); Callback runs before the first and after every step with the samples and the
// current x0 estimate (frames, progress). Hooks draw noise through Step.Noise to keep runs
// deterministic.
//
// # Guidance
//
// Guidance methods are wrappers returning a Model of the wrapped model's kind, so every
// sampler samples every guided model: ClassifierFree (p_u + w (p_c - p_u), the pair in one
// batched call), ClassifierGuidance (score + w grad_x log p(y | x_t), i.e.
// eps - w sigma grad; the gradient is a GradFunc, e.g. GoMLX autodiff of a noisy classifier)
// and Autoguidance (p_weak + w (p_main - p_weak)), the first and last with an optional
// Interval of times where guidance applies. A new rule is one more wrapper of the same shape.
//
// # Editing algorithms
//
// Editing algorithms are models, options or hooks over these samplers, never copies of them:
// SDEdit and image-to-image are Options.XStart/StartIndex (with another condition for
// image-to-image); inpainting is Options.Project = Inpaint(original, mask); visual anagrams
// and hybrid images are Model wrappers that combine the (guided) predictions of transformed
// inputs, e.g. (eps(x, p1) + flip(eps(flip(x), p2))) / 2, or lowpass(eps(p1)) +
// highpass(eps(p2)), exactly as the guidance wrappers combine theirs. Package
// diffusion/edit implements them (CS180 5A) over this interface.
package sampling

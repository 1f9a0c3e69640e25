// Command vae runs notebook 07 (final exam, Exercise 3, parts 3 and 4: a VAE on MNIST, then
// latent diffusion on its latents) without Jupyter, with the notebook's flags, printing the
// test -ELBO, the evaluator's scores and writing the figures as PNG files:
//
//	go run ./diffusion/cmd/vae -preset cpu all
//	go run ./diffusion/cmd/vae -latent 8 -epochs 30 train
//	go run ./diffusion/cmd/vae -preset cpu latent cfg
//	go run ./diffusion/cmd/vae -preset cpu -compare_latent 8 cfg
//
// Tasks: train (train or load the VAE, curves of -ELBO, reconstruction and KL per epoch;
// reuses the checkpoint), figures (prior samples, latent scatter, decoded latent plane,
// reconstructions), latent (a score network on the VAE's latents: decoded samples against
// the VAE's prior samples by the MNIST evaluator, FID and mean max-confidence; generated
// latents over the data's), cfg (the class-conditional latent score network with
// classifier-free guidance: 10 samples per digit at -guidance, accuracy per digit, the
// guidance sweep w in {0, 1, 3, 7.5, 15}; with -compare_latent the same for a VAE of that
// d_z trained for -compare_epochs, in the same figure and table; with d_z = 2 the evaluator's
// reading of the decoded latent plane, the bound on any latent sampler's accuracy), all (the
// default). Every model is trained once and
// reused from its checkpoint while its configuration matches. Figures go to -out (default
// outputs/vae); the checkpoints to outputs/checkpoints: vae_dz<d_z>, latent_score_dz<d_z>,
// latent_cfg_dz<d_z>, mnist_evaluator.
//
// A bad command line (an unknown task, flag or preset, a negative count, a guidance < 0, a
// batch larger than the training set, ...) exits with status 2 and a one-line message naming
// the flag, before anything is written. Training is resumable: Ctrl-C saves its state and
// exits with status 130; the same command resumes it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/godebug"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/taskcli"
	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/latent"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/vae"
)

var tasks = []string{"train", "figures", "latent", "cfg"}

func main() {
	if err := godebug.Ensure(); err != nil {
		fmt.Fprintln(os.Stderr, "vae: warning:", err)
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "vae:", err)
		os.Exit(cliusage.ExitCode(err)) // 2: bad command line; 130: interrupted, the state is saved
	}
}

// options are the notebook's flags.
type options struct {
	o             vae.Overrides
	l             latent.Overrides
	compareLatent int
	compareEpochs int
	out, ckp      string
	checkEvery    int
}

func parse(args []string) (*options, []string, error) {
	fs := flag.NewFlagSet("vae", flag.ContinueOnError)
	o := &options{}
	fs.StringVar(&o.o.Preset, "preset", preset.Default(), "size of the run: smoke, cpu or paper")
	fs.Int64Var(&o.o.Seed, "seed", 0, "random seed (0: 1)")
	fs.IntVar(&o.o.Latent, "latent", 0, "latent dimension d_z (0: 2, the exam's)")
	fs.IntVar(&o.o.Hidden, "hidden", 0, "hidden units of the encoder and decoder (0: 400)")
	fs.IntVar(&o.o.Epochs, "epochs", 0, "training epochs (0: the preset's)")
	fs.IntVar(&o.o.Batch, "batch", 0, "batch size (0: 128)")
	fs.Float64Var(&o.o.LR, "lr", 0, "Adam learning rate (0: 1e-3)")
	fs.StringVar(&o.o.LRSchedule, "lr_schedule", "", "constant (the exam), cosine or exponential")
	fs.IntVar(&o.o.TrainSize, "train_size", 0, "training images (0: the preset's)")
	fs.IntVar(&o.o.TestSize, "test_size", 0, "test images (0: the preset's)")
	fs.IntVar(&o.o.Workers, "workers", 0, "data-parallel shards of each training batch of the VAE and the latent networks (0: 2, both cores)")
	fs.IntVar(&o.l.Steps, "latent_steps", 0, "training steps of the latent score networks (0: the preset's)")
	fs.IntVar(&o.l.Batch, "latent_batch", 0, "batch size of the latent score networks (0: 256)")
	fs.Float64Var(&o.l.LR, "latent_lr", 0, "Adam learning rate of the latent score networks (0: 2e-3, cosine)")
	fs.IntVar(&o.l.Width, "latent_width", 0, "hidden units of the latent score networks (0: the preset's)")
	fs.IntVar(&o.l.Layers, "latent_layers", 0, "hidden layers of the latent score networks (0: 3)")
	fs.IntVar(&o.l.K, "k", 0, "reverse SDE steps of latent sampling (0: the preset's; the exam: 200)")
	fs.Float64Var(&o.l.BetaMax, "beta_max", 0, "beta(1) of the VP process of the latents (0: 20)")
	fs.IntVar(&o.l.ClassEmbed, "class_embed", 0, "class embedding of the conditional network (0: 256, the exam's)")
	fs.Float64Var(&o.l.PUncond, "p_uncond", 0, "label dropout of the conditional network (0: 0.2, the exam's; < 0: none)")
	fs.Float64Var(&o.l.Guidance, "guidance", 0, "classifier-free guidance scale of the digit grid (0: 7.5, the exam's)")
	fs.IntVar(&o.l.Samples, "samples", 0, "digits per scored set (0: the preset's)")
	fs.IntVar(&o.compareLatent, "compare_latent", 0, "cfg: also run the conditional latent diffusion on a VAE of this d_z (e.g. 8; 0: none)")
	fs.IntVar(&o.compareEpochs, "compare_epochs", 0, "cfg: training epochs of the -compare_latent VAE (0: the preset's, cpu 10)")
	fs.StringVar(&o.out, "out", "", "directory for the figures (default: outputs/vae)")
	fs.StringVar(&o.ckp, "checkpoints", "", "directory of the checkpoints (default: outputs/checkpoints)")
	fs.IntVar(&o.checkEvery, "checkpoint_every", 0, "also save the resumable training states every this many steps (0: every minute)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: vae [flags] [task...]  tasks: %v or all (default)\n", tasks)
		fs.PrintDefaults()
	}
	if err := cliusage.Parse(fs, args); err != nil {
		return nil, nil, err
	}
	return o, fs.Args(), nil
}

// check reports the first bad flag value as a usage error naming the flag and the accepted
// values (0 keeps the preset's value of every count and number).
func (o *options) check() error {
	v, l := o.o, o.l
	if _, err := preset.Parse(v.Preset); err != nil {
		return cliusage.Errorf("-preset: %v", err)
	}
	if v.Latent < 0 {
		return cliusage.Errorf("-latent (the latent dimension d_z) must be >= 1 (0: 2), got %d", v.Latent)
	}
	if err := cliusage.PresetCounts(cliusage.Int{Name: "hidden", V: v.Hidden}, cliusage.Int{Name: "epochs", V: v.Epochs}, cliusage.Int{Name: "batch", V: v.Batch},
		cliusage.Int{Name: "train_size", V: v.TrainSize}, cliusage.Int{Name: "test_size", V: v.TestSize}, cliusage.Int{Name: "workers", V: v.Workers}, cliusage.Int{Name: "latent_steps", V: l.Steps},
		cliusage.Int{Name: "latent_batch", V: l.Batch}, cliusage.Int{Name: "latent_width", V: l.Width}, cliusage.Int{Name: "latent_layers", V: l.Layers},
		cliusage.Int{Name: "k", V: l.K}, cliusage.Int{Name: "class_embed", V: l.ClassEmbed}, cliusage.Int{Name: "samples", V: l.Samples},
		cliusage.Int{Name: "checkpoint_every", V: o.checkEvery}, cliusage.Int{Name: "compare_epochs", V: o.compareEpochs}); err != nil {
		return err
	}
	if err := cliusage.PresetNumbers(cliusage.Float{Name: "lr", V: v.LR}, cliusage.Float{Name: "latent_lr", V: l.LR}, cliusage.Float{Name: "beta_max", V: l.BetaMax},
		cliusage.Float{Name: "guidance", V: l.Guidance}); err != nil {
		return err
	}
	if !(l.PUncond <= 1) {
		return cliusage.Errorf("-p_uncond must be a probability <= 1 (0: 0.2; < 0: no label dropout), got %v", l.PUncond)
	}
	if l.Samples != 0 && l.Samples < 10 {
		return cliusage.Errorf("-samples must be >= 10 (one digit per class at least; 0: the preset's), got %d", l.Samples)
	}
	if o.compareLatent < 0 || o.compareLatent == 1 || o.compareLatent > 1024 {
		return cliusage.Errorf("-compare_latent must be 0 (none) or a latent dimension in [2, 1024], got %d", o.compareLatent)
	}
	if err := lrschedule.Kind(v.LRSchedule).Valid(); err != nil {
		return cliusage.Errorf("-lr_schedule %q: %v", v.LRSchedule, err)
	}
	return nil
}

func run(args []string, w io.Writer) error {
	o, todo, err := parse(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	cfg, err := o.o.Config()
	if err != nil {
		return cliusage.Wrap(err) // every value comes from a flag
	}
	if n := trainImages(cfg.TrainSize); cfg.Train.BatchSize > n {
		return cliusage.Errorf("-batch %d is larger than the training set (%d images; -train_size)", cfg.Train.BatchSize, n)
	}
	cfg.CheckpointEvery = o.checkEvery
	o.l.Preset, o.l.Seed, o.l.Workers = o.o.Preset, o.o.Seed, o.o.Workers
	lcfg, err := o.l.Config()
	if err != nil {
		return cliusage.Wrap(err)
	}
	lcfg.CheckpointEvery = o.checkEvery
	if todo, err = taskcli.Select(todo, tasks); err != nil {
		return cliusage.Wrap(err)
	}
	out, err := taskcli.OutDir(o.out, "vae")
	if err != nil {
		return err
	}
	name := vae.CheckpointName(cfg.Net.Latent)
	dir, err := taskcli.CheckpointDir(o.ckp, name)
	if err != nil {
		return err
	}
	b, err := backend.New()
	if err != nil {
		return err
	}
	s, err := vae.NewStudy(cfg, b)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, cfg.Summary())
	save := taskcli.Figures{Dir: out, W: w}.Save
	last := -1
	m, hist, loaded, err := s.TrainOrLoad(dir, func(epoch, step int, loss float64) {
		if epoch != last {
			last = epoch
			fmt.Fprintf(w, "epoch %d (step %d): -ELBO %.2f\n", epoch, step, loss)
		}
	})
	if err != nil {
		return err
	}
	if loaded {
		fmt.Fprintln(w, "loaded", dir)
	} else {
		fmt.Fprintln(w, "trained, saved to", dir)
	}
	fmt.Fprintln(w, vae.LossSummary(hist))
	fmt.Fprintln(w, vae.TargetLine(hist))
	for _, t := range todo {
		switch t {
		case "train":
			for _, term := range []struct {
				file string
				t    vae.Term
			}{{"neg_elbo", vae.NegELBO}, {"recon", vae.Recon}, {"kl", vae.KLTerm}} {
				png, err := vae.CurveFigure(hist, term.t)
				if err := save(term.file, png, err); err != nil {
					return err
				}
			}
		case "figures":
			png, err := m.PriorFigure(10, 10, cfg.Seed)
			if err := save("prior_samples", png, err); err != nil {
				return err
			}
			if cfg.Net.Latent >= 2 {
				png, err = m.LatentScatterFigure(s.Test)
				if err := save("latent_scatter", png, err); err != nil {
					return err
				}
				png, err = m.LatentGridFigure(20)
				if err := save("latent_grid", png, err); err != nil {
					return err
				}
			}
			png, err = m.ReconstructionFigure(s.Test, 30, 10)
			if err := save("reconstructions", png, err); err != nil {
				return err
			}
		case "latent", "cfg":
			lr := &latentRun{o: o, cfg: lcfg, b: b, w: w, figs: taskcli.Figures{Dir: out, W: w}}
			var err error
			if t == "latent" {
				err = lr.unconditional(s, m)
			} else {
				err = lr.conditional(s, m)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// trainImages is the number of training images of a -train_size (0 or more than MNIST's: all).
func trainImages(size int) int {
	if size <= 0 || size > mnist.TrainSize {
		return mnist.TrainSize
	}
	return size
}

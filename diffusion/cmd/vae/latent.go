package main

import (
	"fmt"
	"io"

	"github.com/gomlx/compute"

	"github.com/godiffusion/notebooks/diffusion/cmd/internal/taskcli"
	"github.com/godiffusion/notebooks/diffusion/latent"
	"github.com/godiffusion/notebooks/diffusion/mnisteval"
	"github.com/godiffusion/notebooks/diffusion/spiral"
	"github.com/godiffusion/notebooks/diffusion/vae"
)

// latentRun runs the latent tasks on a trained VAE.
type latentRun struct {
	o    *options
	cfg  latent.Config
	b    compute.Backend
	w    io.Writer
	figs taskcli.Figures
	ev   *mnisteval.Evaluator
}

// evaluator loads or trains the MNIST evaluator (once).
func (r *latentRun) evaluator() (*mnisteval.Evaluator, error) {
	if r.ev != nil {
		return r.ev, nil
	}
	dir, err := taskcli.CheckpointDir(r.o.ckp, "mnist_evaluator")
	if err != nil {
		return nil, err
	}
	ev, trained, err := mnisteval.LoadOrTrain(r.b, dir, r.cfg.Preset, nil)
	if err != nil {
		return nil, err
	}
	if trained {
		fmt.Fprintln(r.w, "trained the evaluator:", ev)
	}
	r.ev = ev
	return ev, nil
}

// network trains or loads a latent score network of the study.
func (r *latentRun) network(ls *latent.Study, conditional bool) (*spiral.Net, *spiral.History, error) {
	dir, err := taskcli.CheckpointDir(r.o.ckp, latent.CheckpointName(ls.Latent(), conditional))
	if err != nil {
		return nil, nil, err
	}
	every := max(1, ls.Config.Train.Steps/10)
	n, h, loaded, err := ls.TrainOrLoad(conditional, dir, func(step int, loss float64) {
		if step%every == 0 {
			fmt.Fprintf(r.w, "latent score (d_z %d, conditional %v) step %d: loss %.4f\n", ls.Latent(), conditional, step, loss)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	what := "trained, saved to"
	if loaded {
		what = "loaded"
	}
	fmt.Fprintln(r.w, what, dir)
	fmt.Fprintln(r.w, latent.LossSummary(h))
	return n, h, nil
}

// study returns the latent study of a VAE study and its model.
func (r *latentRun) study(s *vae.Study, m *vae.Model) (*latent.Study, error) {
	ls, err := latent.NewStudy(r.cfg, s, m)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(r.w, r.cfg.Summary(ls.Latent()))
	return ls, nil
}

// unconditional is the latent task: latent diffusion against the VAE's prior.
func (r *latentRun) unconditional(s *vae.Study, m *vae.Model) error {
	ls, err := r.study(s, m)
	if err != nil {
		return err
	}
	net, h, err := r.network(ls, false)
	if err != nil {
		return err
	}
	ev, err := r.evaluator()
	if err != nil {
		return err
	}
	c, err := ls.ComparePrior(ev, net)
	if err != nil {
		return err
	}
	fmt.Fprint(r.w, latent.Table(c.Rows()))
	fmt.Fprintln(r.w, latent.PriorComparison(c.Prior, c.Diffusion))
	if err := r.figs.Named(fmt.Sprintf("latent_loss_dz%d", ls.Latent()))(latent.LossFigure([]string{"unconditional"}, []*spiral.History{h})); err != nil {
		return err
	}
	if err := r.figs.Named(fmt.Sprintf("latent_samples_dz%d", ls.Latent()))(latent.ImagesFigure(c.DiffusionSamples, 10, 10, "Latent diffusion: decoded samples of the latent score network")); err != nil {
		return err
	}
	if err := r.figs.Named(fmt.Sprintf("latent_prior_samples_dz%d", ls.Latent()))(latent.ImagesFigure(c.PriorSamples, 10, 10, "VAE prior: decode(z), z ~ N(0, I)")); err != nil {
		return err
	}
	return r.figs.Named(fmt.Sprintf("latent_scatter_dz%d", ls.Latent()))(ls.LatentsFigure(
		latent.LatentPanel{Title: "VAE prior z ~ N(0, I)", Samples: c.PriorSamples},
		latent.LatentPanel{Title: "latent diffusion (reverse SDE)", Samples: c.DiffusionSamples}))
}

// conditional is the cfg task: classifier-free guidance on the latents, and optionally the
// same on a VAE of another latent dimension.
func (r *latentRun) conditional(s *vae.Study, m *vae.Model) error {
	ls, err := r.study(s, m)
	if err != nil {
		return err
	}
	names, sweeps, err := r.sweep(ls)
	if err != nil {
		return err
	}
	if dz := r.o.compareLatent; dz > 0 && dz != ls.Latent() {
		vo := r.o.o
		vo.Latent, vo.Epochs = dz, r.o.compareEpochs
		if vo.Epochs == 0 {
			vo.Epochs = vae.ComparisonEpochs(r.cfg.Preset)
		}
		vcfg, err := vo.Config()
		if err != nil {
			return err
		}
		vcfg.CheckpointEvery = r.o.checkEvery
		vs, err := vae.NewStudy(vcfg, r.b)
		if err != nil {
			return err
		}
		dir, err := taskcli.CheckpointDir(r.o.ckp, vae.CheckpointName(dz))
		if err != nil {
			return err
		}
		vm, hist, loaded, err := vs.TrainOrLoad(dir, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.w, "VAE d_z = %d (loaded %v): %s\n", dz, loaded, vae.LossSummary(hist))
		ls2, err := r.study(vs, vm)
		if err != nil {
			return err
		}
		n2, s2, err := r.sweep(ls2)
		if err != nil {
			return err
		}
		names, sweeps = append(names, n2...), append(sweeps, s2...)
	}
	return r.figs.Named("latent_cfg_sweep")(latent.SweepFigure(names, sweeps))
}

// sweep trains or loads the conditional network of ls, draws the digit grid at the
// configured guidance and runs the guidance sweep.
func (r *latentRun) sweep(ls *latent.Study) ([]string, [][]latent.Row, error) {
	net, _, err := r.network(ls, true)
	if err != nil {
		return nil, nil, err
	}
	ev, err := r.evaluator()
	if err != nil {
		return nil, nil, err
	}
	w := ls.Config.Guidance
	grid, err := ls.Sample(net, 100, latent.BalancedLabels(100), w, ls.Config.Seed+400)
	if err != nil {
		return nil, nil, err
	}
	if err := r.figs.Named(fmt.Sprintf("latent_cfg_grid_dz%d", ls.Latent()))(latent.DigitGridFigure(grid, 10, fmt.Sprintf("Classifier-free guidance, w = %g, d_z = %d: 10 samples per digit", w, ls.Latent()))); err != nil {
		return nil, nil, err
	}
	if err := r.figs.Named(fmt.Sprintf("latent_cfg_grid_mode_dz%d", ls.Latent()))(latent.DigitGridFigure(grid.WithModeImages(), 10, fmt.Sprintf("The same digits as mode images (pixel = 1 where p >= 0.5), d_z = %d", ls.Latent()))); err != nil {
		return nil, nil, err
	}
	rows, err := ls.Sweep(ev, net, nil)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(r.w, "guidance sweep, d_z = %d:\n%s", ls.Latent(), latent.SweepTable(rows))
	fmt.Fprintln(r.w, ls.TargetLine(rows))
	if ls.Latent() == 2 {
		pr, err := ls.ReadPlane(ev, ls.Config.PlaneGrid, 0)
		if err != nil {
			return nil, nil, err
		}
		fmt.Fprintln(r.w, pr.Summary())
		if err := r.figs.Named("latent_plane_reading")(ls.PlaneFigure(pr, 2000)); err != nil {
			return nil, nil, err
		}
	}
	if err := r.figs.Named(fmt.Sprintf("latent_cfg_latents_dz%d", ls.Latent()))(ls.LatentsFigure(
		latent.LatentPanel{Title: fmt.Sprintf("CFG w = %g, by requested digit", w), Samples: grid, ByDigit: true})); err != nil {
		return nil, nil, err
	}
	return []string{fmt.Sprintf("d_z = %d", ls.Latent())}, [][]latent.Row{rows}, nil
}

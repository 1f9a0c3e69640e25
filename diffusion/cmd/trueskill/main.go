// Command trueskill runs the tasks of notebook 09 (final exam, Exercise 1: TrueSkill)
// without Jupyter, with the notebook's flags, printing its tables and writing its
// figures as PNG files:
//
//	go run ./diffusion/cmd/trueskill -preset cpu all
//	go run ./diffusion/cmd/trueskill -samples 4000 gibbs
//	go run ./diffusion/cmd/trueskill -csv SerieA.csv season
//
// Tasks: model, gibbs, ep, season, shuffle, extension, checks, all (the default).
// Figures go to -out (default outputs/trueskill).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/godiffusion/notebooks/diffusion/cmd/internal/cliusage"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/godebug"
	"github.com/godiffusion/notebooks/diffusion/cmd/internal/taskcli"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/trueskill"
)

var tasks = []string{"model", "gibbs", "ep", "season", "shuffle", "extension", "checks"}

func main() {
	if err := godebug.Ensure(); err != nil {
		fmt.Fprintln(os.Stderr, "trueskill: warning:", err)
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "trueskill:", err)
		os.Exit(cliusage.ExitCode(err))
	}
}

// options are the notebook's flags.
type options struct {
	preset                                 string
	seed                                   uint64
	samples, burnin, orders, seasons, grid int
	csv, out                               string
}

func parse(args []string) (*options, []string, error) {
	fs := flag.NewFlagSet("trueskill", flag.ContinueOnError)
	o := &options{}
	fs.StringVar(&o.preset, "preset", preset.Default(), "size of the run: smoke, cpu or paper")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed")
	fs.IntVar(&o.samples, "samples", 0, "Gibbs samples after the burn-in (0: the preset's)")
	fs.IntVar(&o.burnin, "burnin", 0, "Gibbs burn-in (0: chosen from a pilot chain)")
	fs.IntVar(&o.orders, "orders", 0, "random match orders in the shuffling study (0: the preset's)")
	fs.IntVar(&o.seasons, "seasons", 0, "synthetic seasons the prediction rates are averaged over (0: the preset's)")
	fs.IntVar(&o.grid, "grid", 0, "grid points per axis of the exact posterior (0: the preset's)")
	fs.StringVar(&o.csv, "csv", "", "CSV of match results (columns team1, team2, score1, score2); empty: synthetic seasons")
	fs.StringVar(&o.out, "out", "", "directory for the figures (default: outputs/trueskill)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: trueskill [flags] [task...]  tasks: %v or all (default)\n", tasks)
		fs.PrintDefaults()
	}
	if err := cliusage.Parse(fs, args); err != nil {
		return nil, nil, err
	}
	return o, fs.Args(), nil
}

// config turns the flags into the library's configuration (0 keeps the preset's).
func (o *options) config() (trueskill.Config, error) {
	return trueskill.Overrides{Preset: o.preset, Seed: o.seed, Samples: o.samples, BurnIn: o.burnin, Orders: o.orders,
		Seasons: o.seasons, Grid: o.grid, CSV: o.csv}.Config()
}

func run(args []string, w io.Writer) error {
	o, todo, err := parse(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, err := o.config()
	if err != nil {
		return cliusage.Wrap(err)
	}
	if todo, err = taskcli.Select(todo, tasks); err != nil {
		return cliusage.Wrap(err)
	}
	out, err := taskcli.OutDir(o.out, "trueskill")
	if err != nil {
		return err
	}
	save := taskcli.Figures{Dir: out, W: w}.Named
	fmt.Fprintf(w, "preset %s, seed %d\n", cfg.Preset, cfg.Seed)
	for _, t := range todo {
		fmt.Fprintf(w, "\n## %s\n\n", t)
		if err := runTask(t, cfg, w, save); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	}
	return nil
}

func runTask(task string, cfg trueskill.Config, w io.Writer, save func(string) func([]byte, error) error) error {
	switch task {
	case "model":
		fmt.Fprint(w, trueskill.ModelSummary(cfg.Params))
		return save("factor_graph")(trueskill.FactorGraphFigure())
	case "gibbs", "ep":
		ms, err := trueskill.StudyMatch(cfg)
		if err != nil {
			return err
		}
		if task == "ep" {
			fmt.Fprint(w, ms.EP.Table(), "\n", ms.MethodsTable())
			return save("gibbs_vs_ep")(trueskill.CompareFigure(ms.Gibbs, ms.EP, ms.Exact))
		}
		table, err := ms.SamplesTable(trueskill.TableSizes, cfg.Seed+100)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "burn-in %d (chosen from a pilot chain unless -burnin)\n\n%s", ms.Gibbs.BurnIn, table)
		if err := save("gibbs_trace")(trueskill.TraceFigure(ms.Pilot, 300)); err != nil {
			return err
		}
		return save("gibbs_histogram")(trueskill.HistogramFigure(ms.Gibbs))
	case "season", "shuffle":
		d, err := trueskill.LoadSeason(cfg, 0)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, d.Describe())
		st, err := trueskill.StudyShuffles(d.Season, trueskill.BasicModel(), cfg.Orders, cfg.Seed)
		if err != nil {
			return err
		}
		if task == "season" {
			fmt.Fprint(w, trueskill.SeasonSummary(d, st.Base), "\n", trueskill.RankingMarkdown(trueskill.Ranking(d.Season, st.Base, d.True)))
			return nil
		}
		fmt.Fprintln(w, trueskill.ShuffleSummary(st))
		diff, sweeps, err := trueskill.EPOrderEffect(d.Season, trueskill.BasicModel(), cfg.Orders, cfg.Sweeps, cfg.Seed)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "EP over the whole season (at most %d sweeps): the posterior means differ by at most %.1e between the %d orders.\n", sweeps, diff, cfg.Orders)
		return save("shuffle")(trueskill.ShuffleFigure(st, "ADF: final ranks under random match orders"))
	case "extension":
		scores, err := trueskill.CompareModels(cfg)
		if err != nil {
			return err
		}
		fmt.Fprint(w, trueskill.ScoresTable(scores))
		return save("calibration")(trueskill.CalibrationFigure("Calibration of one-step-ahead win probabilities", 30,
			trueskill.CalibrationCurve{Name: "basic", Bins: scores[0].Calibration}, trueskill.CalibrationCurve{Name: "home + margin", Bins: scores[3].Calibration}))
	case "checks":
		checks, err := trueskill.RunChecks(cfg)
		if err != nil {
			return err
		}
		fmt.Fprint(w, trueskill.ChecksMarkdown(checks))
		return trueskill.AllOK(checks)
	}
	return nil
}

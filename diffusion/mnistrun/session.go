package mnistrun

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gomlx/compute"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/cell"
	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/imagediff"
	"github.com/godiffusion/notebooks/diffusion/mnisteval"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/progress"
	"github.com/godiffusion/notebooks/diffusion/workdir"
)

// Session is what the cells of notebooks 03-05 (and cmd/mnist) start from: the backend, the
// preset's configuration with the seed applied, and MNIST.
type Session struct {
	Backend     compute.Backend
	Config      Config
	Train, Test *mnist.Set
}

// Setup returns the session of a preset ("smoke", "cpu", "paper") and seed.
func Setup(presetName string, seed int64) (*Session, error) {
	p, err := preset.Parse(presetName)
	if err != nil {
		return nil, err
	}
	cfg, err := PresetConfig(p)
	if err != nil {
		return nil, err
	}
	cfg.Seed = seed
	train, test, err := LoadData()
	if err != nil {
		return nil, err
	}
	b, err := backend.New()
	if err != nil {
		return nil, err
	}
	return &Session{Backend: b, Config: cfg, Train: train, Test: test}, nil
}

// Override applies the training flags that are set (not 0) to a task. A negative (or NaN)
// value is applied too, so that Train and Ensure refuse it with an error naming the flag
// (Task.Validate) instead of silently training with the preset's value.
func Override(t *Task, steps, batch int, lr float64, width int) {
	if steps != 0 {
		t.Train.Steps = steps
	}
	if batch != 0 {
		t.Train.BatchSize = batch
	}
	if lr != 0 {
		t.Train.LR = lr
	}
	if width != 0 {
		t.Model.Net.Hidden = width
	}
}

// Load loads the trained model of a task from its checkpoint under outputs/checkpoints.
func (s *Session) Load(task string) (*imagediff.Model, *History, error) {
	dir, err := workdir.Checkpoint(task)
	if err != nil {
		return nil, nil, err
	}
	return Load(s.Backend, dir)
}

// TrainCell trains a task in a notebook cell: a line saying what it trains, a progress bar,
// then the loss curve and the snapshots saved during training, displayed inline.
func (s *Session) TrainCell(task Task) (*imagediff.Model, *History, error) {
	workers := ""
	if task.Train.Workers > 1 {
		workers = fmt.Sprintf(", %d concurrent shards", task.Train.Workers)
	}
	fmt.Printf("%s: UNet D=%d, %d steps (%.2g epochs), batch %d%s, lr %g (%s)\n", task.Name, task.Model.Net.Hidden, task.Train.Steps,
		float64(task.Train.Steps*task.Train.BatchSize)/TrainImages, task.Train.BatchSize, workers, task.Train.LR, task.Train.LRSchedule)
	dir, err := workdir.Checkpoint(task.Name)
	if err != nil {
		return nil, nil, err
	}
	bar := progress.New(task.Name, task.Train.Steps)
	m, h, err := Train(s.Backend, task, s.Train, dir, SnapshotFor(s.Config, task, s.Test), func(step int, loss float64) {
		bar.Update(step, fmt.Sprintf("loss %.4f", loss))
	})
	if err != nil {
		return nil, nil, err
	}
	bar.Done(fmt.Sprintf("%d parameters, final loss %.4f", m.NumParameters(), h.Loss[len(h.Loss)-1]))
	png, err := LossFigure(task.Name+": training loss", nil, h)
	if err != nil {
		return nil, nil, err
	}
	cell.Show(png, nil)
	for _, snap := range h.Snapshots {
		data, err := os.ReadFile(filepath.Join(dir, snap.File))
		if err != nil {
			return nil, nil, err
		}
		cell.Show(data, nil)
	}
	return m, h, nil
}

// Evaluator loads the MNIST evaluator of the session's preset from
// outputs/checkpoints/mnist_evaluator, training it once when there is none (and saying so).
func (s *Session) Evaluator() (*mnisteval.Evaluator, error) {
	dir, err := workdir.Checkpoint("mnist_evaluator")
	if err != nil {
		return nil, err
	}
	ev, trained, err := Evaluator(s.Backend, dir, s.Config.Preset)
	if err != nil {
		return nil, err
	}
	if trained {
		fmt.Println("trained the evaluator:", ev)
	}
	return ev, nil
}

// Scored is a set of generated digits with the evaluator's verdict on them.
type Scored struct {
	Samples *imagediff.Samples
	Report  *mnisteval.Report
	Took    time.Duration // sampling time
	Grid    []byte        // PNG: the first shown digits of every class
}

// SampleAndScore draws perClass digits of each class from m with sc, scores them with ev and
// draws a grid of the first shown (<= perClass) of each class, titled title. Notebooks 04 and
// 05 (ScoreCell) and cmd/mnist score use it.
func SampleAndScore(ev *mnisteval.Evaluator, m *imagediff.Model, sc imagediff.SampleConfig, perClass, shown int, title string) (*Scored, error) {
	if m.Net.NumClasses == 0 {
		return nil, fmt.Errorf("mnistrun: the model is not class-conditioned: nothing to score")
	}
	start := time.Now()
	s, err := m.Sample(10*perClass, ClassLabels(perClass), sc)
	if err != nil {
		return nil, err
	}
	out := &Scored{Samples: s, Took: time.Since(start)}
	shown = max(1, min(shown, perClass))
	first, err := FirstPerClass(s, perClass, shown)
	if err != nil {
		return nil, err
	}
	if out.Grid, err = SampleGrid(first, m.PixelLo, m.PixelHi, shown, title); err != nil {
		return nil, err
	}
	if out.Report, err = Score(ev, s, m.PixelLo, m.PixelHi); err != nil {
		return nil, err
	}
	return out, nil
}

// ScoreCell is SampleAndScore in a notebook cell: it shows four digits of each class, prints
// the sampling time and displays the evaluator's report.
func ScoreCell(ev *mnisteval.Evaluator, m *imagediff.Model, sc imagediff.SampleConfig, perClass int, title string) (*mnisteval.Report, error) {
	r, err := SampleAndScore(ev, m, sc, perClass, 4, title)
	if err != nil {
		return nil, err
	}
	cell.Show(r.Grid, nil)
	fmt.Printf("%s: %d digits in %s (%d steps, guidance %g)\n", title, r.Samples.N, r.Took.Round(time.Second), sc.Steps, sc.Guidance)
	cell.Markdown(r.Report.Markdown())
	return r.Report, nil
}

// SamplerScore is the evaluator's verdict on digits drawn with one sampler and number of steps.
type SamplerScore struct {
	Sampler string // a name of sampling.SamplerNames
	Steps   int
	Report  *mnisteval.Report
	Took    time.Duration
}

// ScoreSamplers draws perClass digits of each class from m with each named sampler of
// diffusion/sampling at each number of steps (sc's guidance and seed) and scores them.
func ScoreSamplers(ev *mnisteval.Evaluator, m *imagediff.Model, sc imagediff.SampleConfig, samplers []string, steps []int, perClass int) ([]SamplerScore, error) {
	var out []SamplerScore
	for _, name := range samplers {
		for _, s := range steps {
			c := sc
			c.Sampler, c.Steps = name, s
			r, err := SampleAndScore(ev, m, c, perClass, 1, "")
			if err != nil {
				return nil, fmt.Errorf("mnistrun: %s, %d steps: %w", name, s, err)
			}
			out = append(out, SamplerScore{Sampler: name, Steps: s, Report: r.Report, Took: r.Took})
		}
	}
	return out, nil
}

// SamplersMarkdown is the table of ScoreSamplers: sampler, steps, accuracy, mean confidence,
// FID and sampling time.
func SamplersMarkdown(scores []SamplerScore) string {
	var b strings.Builder
	b.WriteString("| sampler | steps | digits | accuracy | mean confidence | FID | time |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range scores {
		fmt.Fprintf(&b, "| %s | %d | %d | %.3f | %.3f | %.2f | %s |\n", s.Sampler, s.Steps, s.Report.N, s.Report.Accuracy, s.Report.MeanConfidence, s.Report.FID, s.Took.Round(100*time.Millisecond))
	}
	return b.String()
}

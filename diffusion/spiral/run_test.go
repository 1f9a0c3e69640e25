package spiral

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/savedmodel"
)

func TestOverridesAndValidation(t *testing.T) {
	c, err := Overrides{Preset: "smoke", Sigma: 0.2, Steps: 7, Fourier: -1}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if c.Mixture.Sigma != 0.2 || c.Train.Steps != 7 || c.Net.Fourier != 0 || c.Train.TMin != 1.0/200 {
		t.Errorf("overrides not applied: %+v", c)
	}
	p, err := Overrides{Preset: "paper"}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if p.Train.Steps != 8000 || p.Train.Weighting != Uniform || p.Net.Fourier != 0 || p.Net.ScaleBySigma || p.Train.TimeSkew != 1 || p.Net.TimeInput != TimeT {
		t.Errorf("paper is not the exam's training: %+v", p)
	}
	// At cpu the Hyvarinen score trains on batches of 512 with importance-sampled times, DSM
	// on 128; -batch sets both, and the exam's Hyvarinen training stays one flag away.
	cpu, err := Overrides{Preset: "cpu"}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if h, d := cpu.TrainFor(Hyvarinen), cpu.TrainFor(DSM); h.BatchSize != 512 || h.Weighting != Importance || h.TimeSkew != 1 || d.BatchSize != 128 || d.Weighting != Sigma2 {
		t.Errorf("cpu: Hyvarinen batch %d weighting %s skew %g, DSM batch %d weighting %s", h.BatchSize, h.Weighting, h.TimeSkew, d.BatchSize, d.Weighting)
	}
	exam, err := Overrides{Preset: "cpu", Batch: 128, Weighting: string(Uniform)}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if h := exam.TrainFor(Hyvarinen); h.BatchSize != 128 || h.Weighting != Uniform {
		t.Errorf("-batch 128 -weighting none: Hyvarinen batch %d weighting %s", h.BatchSize, h.Weighting)
	}
	if p.TrainFor(Hyvarinen).BatchSize != 128 {
		t.Errorf("paper: Hyvarinen batch %d, want the exam's 128", p.TrainFor(Hyvarinen).BatchSize)
	}
	// The Hyvarinen score damps its Fourier features at cpu, DSM does not; the flag sets it, a
	// network without Fourier features is never marked damped.
	if !cpu.NetFor(Hyvarinen).FourierDamped || cpu.NetFor(DSM).FourierDamped || cpu.Net.FourierDamped {
		t.Errorf("cpu: damped Hyvarinen %v, DSM %v", cpu.NetFor(Hyvarinen).FourierDamped, cpu.NetFor(DSM).FourierDamped)
	}
	all, err := Overrides{Preset: "cpu", FourierDamping: DampAll}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if !all.NetFor(DSM).FourierDamped || p.NetFor(Hyvarinen).FourierDamped {
		t.Errorf("-fourier_damping all: DSM damped %v; paper (no features) Hyvarinen damped %v", all.NetFor(DSM).FourierDamped, p.NetFor(Hyvarinen).FourierDamped)
	}
	if _, err := (Overrides{Preset: "cpu", FourierDamping: "some"}).Config(); err == nil || !strings.Contains(err.Error(), "Fourier damping") {
		t.Errorf("unknown Fourier damping: %v", err)
	}
	bad := cpu
	bad.HyvarinenBatch = -1
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "Hyvarinen batch") {
		t.Errorf("negative Hyvarinen batch: %v", err)
	}
	for name, o := range map[string]Overrides{
		"preset":    {Preset: "huge"},
		"sigma":     {Sigma: -1},
		"weighting": {Weighting: "cubic"},
		"skew":      {TimeSkew: 0.5},
		"schedule":  {LRSchedule: "zigzag"},
		"beta":      {BetaMin: 30},
	} {
		if _, err := o.Config(); err == nil {
			t.Errorf("%s: accepted %+v", name, o)
		}
	}
	if _, err := NewMixture(MixtureConfig{Components: 0, Sigma: 1, Turns: 1, Radius: 1}); err == nil {
		t.Error("a mixture without components accepted")
	}
	if _, err := Sample(Exact{Mixture: testMixture(t), Process: DefaultProcess()}, DefaultProcess(), SampleOptions{N: 4, K: 10, Sampler: "leapfrog"}); err == nil {
		t.Error("unknown sampler accepted")
	}
	if _, err := testMixture(t).MeanLogP0([]float32{0, float32(nanValue())}); err == nil {
		t.Error("NaN sample accepted")
	}
}

func nanValue() float64 { var z float64; return z / z }

// TrainOrLoad reuses a checkpoint trained with the same configuration, retrains on another,
// and Load refuses another model's checkpoint or another size with a clear error.
func TestTrainOrLoadAndCheckpoints(t *testing.T) {
	b := testBackend(t)
	cfg, err := Overrides{Preset: "smoke", Steps: 20, Width: 16, Layers: 1, Samples: 50}.Config()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStudy(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "dsm")
	n1, h1, loaded, err := s.TrainOrLoad(DSM, dir, nil)
	if err != nil || loaded || len(h1.TrainLoss) != 20 {
		t.Fatalf("first TrainOrLoad: loaded %v, err %v", loaded, err)
	}
	n2, _, loaded, err := s.TrainOrLoad(DSM, dir, nil)
	if err != nil || !loaded {
		t.Fatalf("second TrainOrLoad: loaded %v, err %v", loaded, err)
	}
	x, ts := []float32{0.5, -0.5}, []float64{0.3}
	a, _ := n1.Predict(x, ts, nil)
	c, _ := n2.Predict(x, ts, nil)
	if a[0] != c[0] || a[1] != c[1] {
		t.Errorf("the loaded network differs: %v vs %v", a, c)
	}
	s.Config.Train.Steps = 21
	if _, _, loaded, err := s.TrainOrLoad(DSM, dir, nil); err != nil || loaded {
		t.Errorf("another configuration reused the checkpoint (loaded %v, err %v)", loaded, err)
	}
	other := cfg.Net
	other.Width = 32
	if _, err := Load(b, dir, &Meta{Net: other, Process: cfg.Process}); err == nil || !strings.Contains(err.Error(), "expected") {
		t.Errorf("a checkpoint of another size: %v", err)
	}
	// Another model's checkpoint.
	foreign := filepath.Join(t.TempDir(), "foreign")
	if err := os.MkdirAll(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(foreign, savedmodel.MetaFile), []byte(`{"kind": "ddpm-denoiser", "format": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(b, foreign, nil); err == nil || !strings.Contains(err.Error(), "ddpm-denoiser") {
		t.Errorf("another model's checkpoint: %v", err)
	}
	if _, err := n1.Train(s.Mixture, TrainConfig{Objective: "adversarial", Steps: 3, BatchSize: 8, LR: 1e-3, TMin: 0.005}); err == nil {
		t.Error("unknown objective accepted")
	}
	if _, err := n1.Predict([]float32{1, 2, 3}, []float64{0.1}, nil); err == nil {
		t.Error("3 values for one time accepted")
	}
}

// The evaluation table puts the floor first and marks the targets.
func TestEvaluateTable(t *testing.T) {
	cfg, err := Overrides{Preset: "smoke", Samples: 400}.Config()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStudy(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	sets, err := s.StandardSets(Models{})
	if err != nil {
		t.Fatal(err)
	}
	table, err := s.Evaluate(sets)
	if err != nil {
		t.Fatal(err)
	}
	if len(table.Rows) != 5 || !table.Rows[0].IsFloor {
		t.Fatalf("rows: %+v", table.Rows)
	}
	for _, r := range table.Rows[1:] {
		if r.Target != "" && !r.TargetMet {
			t.Errorf("%s misses its target: SW ratio %.2f, delta log p0 %.3f", r.Name, r.RatioFloor, r.DeltaLogP0)
		}
	}
	if noScore := table.Rows[4]; noScore.RatioFloor < 10 {
		t.Errorf("the run without the score is close to p0: %+v", noScore)
	}
	if md := table.Markdown(); !strings.Contains(md, "fresh p0 (floor)") || strings.Count(md, "\n") != 7 {
		t.Errorf("markdown:\n%s", md)
	}
}

package metrics

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestReferenceEvaluate(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	real := ring(rng, 1000, 0, 2*math.Pi)
	labels := make([]int, len(real))
	for i, p := range real {
		if p[1] > 0 {
			labels[i] = 1
		}
	}
	ref, err := NewReference(real, labels, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o := ref.Options(); o.K != DefaultK || o.OffOutlineThreshold != DefaultOffOutlineThreshold {
		t.Errorf("default options %+v", o)
	}
	samples := append(ring(rng, 400, 0.3, math.Pi-0.3), randomCloud(rng, 100)...)
	rep, err := ref.Evaluate(samples)
	if err != nil {
		t.Fatal(err)
	}
	// Every field agrees with the standalone functions.
	nll, _ := ref.KDE().NLL(samples)
	p, r, _ := PrecisionRecall(real, samples, DefaultK)
	off, _ := OffOutlineShare(real, samples, DefaultOffOutlineThreshold)
	want := Report{Samples: 500, NLL: nll, Precision: p, Recall: r, OffOutline: off, OffOutlineThreshold: DefaultOffOutlineThreshold}
	if rep != want {
		t.Errorf("Evaluate = %+v, want %+v", rep, want)
	}
	cond, err := ref.EvaluateConditional(samples, 1)
	if err != nil {
		t.Fatal(err)
	}
	pur, _ := Purity(real, labels, samples, 1)
	want.Conditional, want.Label, want.Purity = true, 1, pur
	if cond != want {
		t.Errorf("EvaluateConditional = %+v, want %+v", cond, want)
	}
	if pur < 0.75 || pur > 0.95 {
		t.Errorf("purity %v: 4/5 of the samples are on the label-1 half", pur)
	}

	// Options are honoured.
	ref5, err := NewReference(real, nil, Options{K: 5, OffOutlineThreshold: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	rep5, err := ref5.Evaluate(samples)
	if err != nil {
		t.Fatal(err)
	}
	p5, r5, _ := PrecisionRecall(real, samples, 5)
	off5, _ := OffOutlineShare(real, samples, 0.2)
	if rep5.Precision != p5 || rep5.Recall != r5 || rep5.OffOutline != off5 || rep5.OffOutlineThreshold != 0.2 {
		t.Errorf("with K=5, threshold 0.2: %+v; want precision %v recall %v off %v", rep5, p5, r5, off5)
	}
	if _, err := ref5.EvaluateConditional(samples, 0); err == nil || !strings.Contains(err.Error(), "no labels") {
		t.Errorf("conditional evaluation without labels: error %v", err)
	}
	if _, err := ref.EvaluateConditional(samples, 7); err == nil || !strings.Contains(err.Error(), "label 7") {
		t.Errorf("unknown label: error %v", err)
	}
	if _, err := ref.Evaluate(samples[:2]); err == nil {
		t.Error("Evaluate with 2 samples (k = 3) gave no error")
	}
	if _, err := ref.Evaluate(nil); err == nil {
		t.Error("Evaluate(nil) gave no error")
	}
	if _, err := NewReference(real, labels[:10], Options{}); err == nil {
		t.Error("NewReference with too few labels gave no error")
	}
	if _, err := NewReference(real, nil, Options{K: -1}); err == nil {
		t.Error("NewReference with K=-1 gave no error")
	}
	if _, err := NewReference(real, nil, Options{OffOutlineThreshold: math.NaN()}); err == nil {
		t.Error("NewReference with a NaN threshold gave no error")
	}
}

func TestReportFormatting(t *testing.T) {
	unc := Report{Samples: 5000, NLL: 2.15249, Precision: 0.9871, Recall: 0.95, OffOutline: 0.0123, OffOutlineThreshold: 0.05}
	cond := unc
	cond.Conditional, cond.Label, cond.Purity = true, 3, 0.9976
	if got, want := unc.String(), "n=5000 NLL=2.152 precision=0.987 recall=0.950 off-outline(>0.05)=0.012"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := cond.String(); !strings.HasSuffix(got, " label=3 purity=0.998") {
		t.Errorf("conditional String() = %q", got)
	}
	table := MarkdownTable([]string{"DDPM"}, []Report{unc, cond})
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("table has %d lines, want header, rule and 2 rows:\n%s", len(lines), table)
	}
	if want := "| DDPM | 5000 | 2.152 | 0.987 | 0.950 | 0.012 | - |"; lines[2] != want {
		t.Errorf("row 1 = %q, want %q", lines[2], want)
	}
	if want := "|  | 5000 | 2.152 | 0.987 | 0.950 | 0.012 | 0.998 |"; lines[3] != want {
		t.Errorf("row 2 = %q, want %q", lines[3], want)
	}
	for _, l := range lines {
		if strings.Count(l, "|") != 8 {
			t.Errorf("line %q does not have 7 columns", l)
		}
	}
}

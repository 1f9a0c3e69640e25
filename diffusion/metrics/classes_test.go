package metrics

import (
	"math"
	"strings"
	"testing"
)

// oneHotish returns a probability row for numClasses classes with p on class c and the
// rest spread evenly.
func oneHotish(numClasses, c int, p float32) []float32 {
	row := make([]float32, numClasses)
	for j := range row {
		row[j] = (1 - p) / float32(numClasses-1)
	}
	row[c] = p
	return row
}

func TestEvaluateClasses(t *testing.T) {
	const k = 3
	var probs []float32
	var requested []int
	add := func(want, pred int, p float32) {
		probs = append(probs, oneHotish(k, pred, p)...)
		requested = append(requested, want)
	}
	// Class 0: 2 samples, both right (p 0.9, 0.7).
	add(0, 0, 0.9)
	add(0, 0, 0.7)
	// Class 1: 3 samples, one right (0.6), two taken for class 2 (p of class 1 = 0.1 each).
	add(1, 1, 0.6)
	add(1, 2, 0.8)
	add(1, 2, 0.8)
	// Class 2: none.
	rep, err := EvaluateClasses(probs, k, requested)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Samples != 5 || !near(rep.Accuracy, 3.0/5, 1e-12) {
		t.Errorf("samples %d accuracy %v", rep.Samples, rep.Accuracy)
	}
	wantConf := (0.9 + 0.7 + 0.6 + 0.1 + 0.1) / 5
	if !near(rep.MeanConfidence, wantConf, 1e-6) {
		t.Errorf("mean confidence %v, want %v", rep.MeanConfidence, wantConf)
	}
	c0, c1, c2 := rep.Classes[0], rep.Classes[1], rep.Classes[2]
	if c0.Samples != 2 || c0.Accuracy != 1 || !near(c0.MeanConfidence, 0.8, 1e-6) || c0.MostConfusedWith != -1 {
		t.Errorf("class 0: %+v", c0)
	}
	if c1.Samples != 3 || !near(c1.Accuracy, 1.0/3, 1e-12) || !near(c1.MeanConfidence, 0.8/3, 1e-6) ||
		c1.MostConfusedWith != 2 || c1.Confused != 2 {
		t.Errorf("class 1: %+v", c1)
	}
	if c2.Samples != 0 || !math.IsNaN(c2.Accuracy) {
		t.Errorf("class 2: %+v", c2)
	}
	if rep.Best != 0 || rep.Worst != 1 {
		t.Errorf("best %d worst %d, want 0 and 1", rep.Best, rep.Worst)
	}
	if rep.Confusion[1][2] != 2 || rep.Confusion[1][1] != 1 || rep.Confusion[0][0] != 2 {
		t.Errorf("confusion %v", rep.Confusion)
	}
	if s := rep.String(); s != "n=5 accuracy=0.600 confidence=0.480 best=0 (0.800) worst=1 (0.267)" {
		t.Errorf("String: %q", s)
	}
	table := ClassMarkdownTable(rep, []string{"zero", "one"})
	for _, want := range []string{
		"| zero (best) | 2 | 1.000 | 0.800 | - |",
		"| one (worst) | 3 | 0.333 | 0.267 | 2 (2) |",
		"| all | 5 | 0.600 | 0.480 | |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Count(table, "\n") != 5 {
		t.Errorf("table should have header, rule, 2 classes and all:\n%s", table)
	}
}

func TestEvaluateClassesErrors(t *testing.T) {
	ok := oneHotish(3, 1, 0.5)
	for _, tc := range []struct {
		name      string
		probs     []float32
		k         int
		requested []int
		want      string
	}{
		{"no samples", nil, 3, nil, "no samples"},
		{"one class", []float32{1}, 1, []int{0}, "at least 2"},
		{"size mismatch", ok, 3, []int{0, 1}, "3 probabilities for 2 samples"},
		{"bad class", ok, 3, []int{3}, "requests class 3"},
		{"negative class", ok, 3, []int{-1}, "requests class -1"},
		{"logits", []float32{2.5, -1, 0.3}, 3, []int{0}, "not logits"},
		{"unnormalised", []float32{0.5, 0.4, 0.3}, 3, []int{0}, "sum to"},
		{"NaN", []float32{float32(math.NaN()), 0.5, 0.5}, 3, []int{0}, "NaN"},
	} {
		_, err := EvaluateClasses(tc.probs, tc.k, tc.requested)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestPredictions(t *testing.T) {
	got, err := Predictions([]float32{0.1, 0.7, 0.2, 0.5, 0.5, 0}, 3)
	if err != nil || len(got) != 2 || got[0] != 1 || got[1] != 0 {
		t.Errorf("Predictions = %v, %v; want [1 0]", got, err)
	}
	if _, err := Predictions([]float32{2, -1, 0}, 3); err == nil {
		t.Error("logits accepted")
	}
	if _, err := Predictions([]float32{0.5, 0.5, 0}, 2); err == nil {
		t.Error("a ragged batch accepted")
	}
}

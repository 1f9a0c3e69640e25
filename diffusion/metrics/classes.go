package metrics

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// probabilitySumTolerance is how far a row of softmax probabilities may sum from 1.
const probabilitySumTolerance = 1e-3

// ClassScore is an evaluator's verdict on the samples generated for one class.
type ClassScore struct {
	// Class is the requested class.
	Class int
	// Samples is the number of samples requested for Class.
	Samples int
	// Accuracy is the share of those samples the evaluator classifies as Class (argmax).
	Accuracy float64
	// MeanConfidence is the mean probability the evaluator gives to Class.
	MeanConfidence float64
	// MostConfusedWith is the wrong class predicted most often (the smallest on a tie),
	// or -1 if every sample was classified as Class.
	MostConfusedWith int
	// Confused is how many samples were classified as MostConfusedWith.
	Confused int
}

// ClassReport scores a set of class-conditional samples with an evaluator classifier.
type ClassReport struct {
	// Samples is the number of samples scored.
	Samples int
	// Accuracy is the share of all samples classified as their requested class.
	Accuracy float64
	// MeanConfidence is the mean probability of the requested class over all samples.
	MeanConfidence float64
	// Classes holds one score per class, indexed by class; classes without samples
	// have Samples == 0 and NaN Accuracy and MeanConfidence.
	Classes []ClassScore
	// Confusion counts the samples by requested class (row) and predicted class (column).
	Confusion [][]int
	// Best and Worst are the classes with the highest and lowest mean confidence among
	// those with samples (the first such class on a tie).
	Best, Worst int
}

// EvaluateClasses scores generated samples from an evaluator's softmax probabilities:
// probs holds numClasses probabilities per sample, one sample after the other (the flat
// values of an [n, numClasses] tensor), and requested the class each sample was
// generated for. Every row must be finite, within [0, 1] and sum to 1 (within 1e-3):
// pass probabilities, not logits.
func EvaluateClasses(probs []float32, numClasses int, requested []int) (ClassReport, error) {
	if numClasses < 2 {
		return ClassReport{}, fmt.Errorf("metrics: EvaluateClasses: %d classes, want at least 2", numClasses)
	}
	n := len(requested)
	if n == 0 {
		return ClassReport{}, fmt.Errorf("metrics: EvaluateClasses: no samples")
	}
	if len(probs) != n*numClasses {
		return ClassReport{}, fmt.Errorf("metrics: EvaluateClasses: %d probabilities for %d samples of %d classes (want %d)",
			len(probs), n, numClasses, n*numClasses)
	}
	rep := ClassReport{Samples: n, Classes: make([]ClassScore, numClasses), Confusion: make([][]int, numClasses)}
	for c := range rep.Confusion {
		rep.Confusion[c] = make([]int, numClasses)
	}
	confidence := make([]float64, numClasses)
	var totalConfidence float64
	var correct int
	for i, want := range requested {
		if want < 0 || want >= numClasses {
			return ClassReport{}, fmt.Errorf("metrics: EvaluateClasses: sample %d requests class %d, want 0..%d", i, want, numClasses-1)
		}
		row := probs[i*numClasses : (i+1)*numClasses]
		pred, err := argmaxProbabilities(row)
		if err != nil {
			return ClassReport{}, fmt.Errorf("metrics: EvaluateClasses: sample %d: %w", i, err)
		}
		rep.Confusion[want][pred]++
		p := float64(row[want])
		confidence[want] += p
		totalConfidence += p
		if pred == want {
			correct++
		}
	}
	rep.Accuracy = float64(correct) / float64(n)
	rep.MeanConfidence = totalConfidence / float64(n)
	rep.Best, rep.Worst = -1, -1
	for c := range rep.Classes {
		s := ClassScore{Class: c, MostConfusedWith: -1, Accuracy: math.NaN(), MeanConfidence: math.NaN()}
		for _, k := range rep.Confusion[c] {
			s.Samples += k
		}
		if s.Samples > 0 {
			s.Accuracy = float64(rep.Confusion[c][c]) / float64(s.Samples)
			s.MeanConfidence = confidence[c] / float64(s.Samples)
			for p, k := range rep.Confusion[c] {
				if p != c && k > s.Confused {
					s.MostConfusedWith, s.Confused = p, k
				}
			}
			if rep.Best < 0 || s.MeanConfidence > rep.Classes[rep.Best].MeanConfidence {
				rep.Best = c
			}
			if rep.Worst < 0 || s.MeanConfidence < rep.Classes[rep.Worst].MeanConfidence {
				rep.Worst = c
			}
		}
		rep.Classes[c] = s
	}
	return rep, nil
}

// Predictions returns the most probable class of each sample (the first on a tie) from its
// numClasses softmax probabilities (the rows of probs), checking them as EvaluateClasses does.
func Predictions(probs []float32, numClasses int) ([]int, error) {
	if numClasses < 1 || len(probs)%numClasses != 0 {
		return nil, fmt.Errorf("metrics: Predictions: %d probabilities are not rows of %d classes", len(probs), numClasses)
	}
	out := make([]int, len(probs)/numClasses)
	for i := range out {
		c, err := argmaxProbabilities(probs[i*numClasses : (i+1)*numClasses])
		if err != nil {
			return nil, fmt.Errorf("metrics: Predictions: sample %d: %w", i, err)
		}
		out[i] = c
	}
	return out, nil
}

// argmaxProbabilities checks that row is a probability vector and returns the index of
// its largest entry (the first on a tie).
func argmaxProbabilities(row []float32) (int, error) {
	best := 0
	var sum float64
	for j, v := range row {
		p := float64(v)
		if math.IsNaN(p) || p < -probabilitySumTolerance || p > 1+probabilitySumTolerance {
			return 0, fmt.Errorf("probability of class %d is %v; pass softmax probabilities, not logits", j, v)
		}
		sum += p
		if v > row[best] {
			best = j
		}
	}
	if math.Abs(sum-1) > probabilitySumTolerance {
		return 0, fmt.Errorf("probabilities sum to %.6g, not 1; pass softmax probabilities, not logits", sum)
	}
	return best, nil
}

// String formats the report on one line, e.g.
// "n=1000 accuracy=0.962 confidence=0.951 best=1 (0.993) worst=8 (0.874)".
func (r ClassReport) String() string {
	s := fmt.Sprintf("n=%d accuracy=%.3f confidence=%.3f", r.Samples, r.Accuracy, r.MeanConfidence)
	if r.Best >= 0 && r.Best < len(r.Classes) && r.Worst >= 0 && r.Worst < len(r.Classes) {
		s += fmt.Sprintf(" best=%d (%.3f) worst=%d (%.3f)",
			r.Best, r.Classes[r.Best].MeanConfidence, r.Worst, r.Classes[r.Worst].MeanConfidence)
	}
	return s
}

// ClassMarkdownTable formats a ClassReport as a Markdown table: one row per class with
// samples (named by the matching entry of names, else by its number; the best and worst
// classes are marked), then a row for all samples. The last column gives the wrong
// class predicted most often and how many samples went there.
func ClassMarkdownTable(r ClassReport, names []string) string {
	var b strings.Builder
	b.WriteString("| class | n | accuracy | mean confidence | most confused with |\n")
	b.WriteString("|---|---:|---:|---:|---|\n")
	name := func(c int) string {
		if c < len(names) && names[c] != "" {
			return names[c]
		}
		return strconv.Itoa(c)
	}
	for _, s := range r.Classes {
		if s.Samples == 0 {
			continue
		}
		label := name(s.Class)
		switch s.Class {
		case r.Best:
			label += " (best)"
		case r.Worst:
			label += " (worst)"
		}
		confused := "-"
		if s.MostConfusedWith >= 0 {
			confused = fmt.Sprintf("%s (%d)", name(s.MostConfusedWith), s.Confused)
		}
		fmt.Fprintf(&b, "| %s | %d | %.3f | %.3f | %s |\n", label, s.Samples, s.Accuracy, s.MeanConfidence, confused)
	}
	fmt.Fprintf(&b, "| all | %d | %.3f | %.3f | |\n", r.Samples, r.Accuracy, r.MeanConfidence)
	return b.String()
}

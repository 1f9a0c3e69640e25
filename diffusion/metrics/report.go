package metrics

import (
	"fmt"

	"gonum.org/v1/gonum/spatial/kdtree"
)

// Options configures a Reference. Zero fields take the defaults.
type Options struct {
	// K is the neighbourhood size of the precision/recall manifolds (DefaultK if 0).
	K int
	// OffOutlineThreshold is the distance beyond which a sample is off the outline
	// (DefaultOffOutlineThreshold if 0).
	OffOutlineThreshold float64
}

// withDefaults returns o with zero fields replaced by the defaults.
func (o Options) withDefaults() Options {
	if o.K == 0 {
		o.K = DefaultK
	}
	if o.OffOutlineThreshold == 0 {
		o.OffOutlineThreshold = DefaultOffOutlineThreshold
	}
	return o
}

// Reference holds the real data with everything that scoring sample sets against it
// needs (the KDE, the k-NN manifold, a k-d tree), built once so that several sample
// sets can be evaluated cheaply. It is safe for concurrent use.
type Reference struct {
	points   [][2]float64
	labels   []int
	opts     Options
	kde      *KDE
	manifold *Manifold
	tree     *kdtree.Tree
}

// NewReference prepares the real points (and optionally their labels, nil if unknown;
// otherwise one per point) for evaluation with opts. The KDE is fitted on all points,
// as the course grades.
func NewReference(points [][2]float64, labels []int, opts Options) (*Reference, error) {
	opts = opts.withDefaults()
	if opts.K < 1 {
		return nil, fmt.Errorf("metrics: Options.K must be >= 1, got %d", opts.K)
	}
	if !(opts.OffOutlineThreshold > 0) {
		return nil, fmt.Errorf("metrics: Options.OffOutlineThreshold must be > 0, got %v", opts.OffOutlineThreshold)
	}
	if labels != nil && len(labels) != len(points) {
		return nil, fmt.Errorf("metrics: %d labels for %d real points", len(labels), len(points))
	}
	kde, err := NewKDE(points)
	if err != nil {
		return nil, err
	}
	manifold, err := NewManifold(points, opts.K)
	if err != nil {
		return nil, err
	}
	// Keep copies: the manifold and KDE were built from these values.
	points = append([][2]float64(nil), points...)
	if labels != nil {
		labels = append([]int(nil), labels...)
	}
	return &Reference{
		points:   points,
		labels:   labels,
		opts:     opts,
		kde:      kde,
		manifold: manifold,
		tree:     manifold.tree,
	}, nil
}

// KDE returns the KDE fitted on all real points.
func (r *Reference) KDE() *KDE { return r.kde }

// Options returns the options in use, defaults filled in.
func (r *Reference) Options() Options { return r.opts }

// Report holds all metrics of one sample set.
type Report struct {
	// Samples is the number of samples scored.
	Samples int
	// NLL is the negative mean log density of the samples under the KDE of all real
	// points, in nats (lower is better; the assignment's grade).
	NLL float64
	// Precision is the share of samples inside the k-NN manifold of the real points.
	Precision float64
	// Recall is the share of real points inside the k-NN manifold of the samples.
	Recall float64
	// OffOutline is the share of samples farther than OffOutlineThreshold from every
	// real point.
	OffOutline float64
	// OffOutlineThreshold is the threshold OffOutline was computed with.
	OffOutlineThreshold float64
	// Conditional is true when the samples were drawn for one label and Purity is set.
	Conditional bool
	// Label is the requested label (meaningful only if Conditional).
	Label int
	// Purity is the share of samples whose nearest real point has Label (only if
	// Conditional).
	Purity float64
}

// Evaluate computes NLL, precision, recall and the off-outline share of unconditional
// samples. Precision and recall need more than K samples.
func (r *Reference) Evaluate(samples [][2]float64) (Report, error) {
	rep := Report{Samples: len(samples), OffOutlineThreshold: r.opts.OffOutlineThreshold}
	var err error
	if rep.NLL, err = r.kde.NLL(samples); err != nil {
		return Report{}, err
	}
	if rep.Precision, rep.Recall, err = precisionRecall(r.manifold, r.points, samples, r.opts.K); err != nil {
		return Report{}, err
	}
	if rep.OffOutline, err = offOutlineShare(r.tree, samples, r.opts.OffOutlineThreshold); err != nil {
		return Report{}, err
	}
	return rep, nil
}

// EvaluateConditional is Evaluate for samples drawn for one label, adding their purity.
// As the course grades, NLL, precision and recall are still measured against all real
// points (so recall is at most about the label's share of the data). The Reference
// must have labels, and label must occur in them.
func (r *Reference) EvaluateConditional(samples [][2]float64, label int) (Report, error) {
	if r.labels == nil {
		return Report{}, fmt.Errorf("metrics: reference has no labels; cannot compute purity")
	}
	if err := checkLabels(r.labels, len(r.points), label); err != nil {
		return Report{}, err
	}
	rep, err := r.Evaluate(samples)
	if err != nil {
		return Report{}, err
	}
	if rep.Purity, err = purity(r.tree, r.labels, samples, label); err != nil {
		return Report{}, err
	}
	rep.Conditional, rep.Label = true, label
	return rep, nil
}

package trueskill

import (
	"fmt"
	"math"
	"time"
)

// Messages are the messages of one pass of message passing on the factor graph of one
// match (see FactorGraphFigure), in the order they are sent:
//
//	f_s1 -> s1, f_s2 -> s2      the priors
//	f_t  -> t                   N(t; mu1 - mu2, sigma1^2 + sigma2^2 + sigmaT^2)
//	q(t)                        the truncated Gaussian f_y * (f_t -> t), moment matched
//	f_y  -> t                   q(t) / (f_t -> t), a Gaussian (the EP step)
//	f_t  -> s1, f_t -> s2       integrals of N(t; s1 - s2, sigmaT^2) against the others
//	q(s1), q(s2)                the posteriors: prior times the message from f_t
//
// The factor graph of one match is a tree with one non-Gaussian factor, so a single pass
// converges: the posteriors are the exact posterior means and variances of s1 and s2.
type Messages struct {
	PriorS1, PriorS2 Gaussian
	FtToT            Gaussian
	Qt               Gaussian
	FyToT            Gaussian // precision 0 (Var = +Inf) when the outcome was certain
	FtToS1, FtToS2   Gaussian
	Post1, Post2     Gaussian
	Duration         time.Duration
}

// EP runs message passing on the factor graph of one match with outcome y and returns
// every message.
func EP(p Params, y int) (*Messages, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := checkOutcome(y); err != nil {
		return nil, err
	}
	start := time.Now()
	m := &Messages{PriorS1: p.Prior1(), PriorS2: p.Prior2()}
	post, msgs, qt, toT, fromY, err := linearUpdate([]Gaussian{m.PriorS1, m.PriorS2}, []float64{1, -1}, p.SigmaT*p.SigmaT, SignTruncated(Gaussian{}, y))
	if err != nil {
		return nil, err
	}
	m.FtToT, m.Qt, m.FyToT = toT, qt, fromY
	m.FtToS1, m.FtToS2 = msgs[0], msgs[1]
	m.Post1, m.Post2 = post[0], post[1]
	m.Duration = time.Since(start)
	return m, nil
}

// multiply returns the normalised product of two Gaussian densities (a Var of +Inf is
// the flat message).
func multiply(a, b Gaussian) Gaussian {
	pa, pb := 1/a.Var, 1/b.Var
	v := 1 / (pa + pb)
	return Gaussian{Mean: v * (a.Mean*pa + b.Mean*pb), Var: v}
}

// divide returns a / b as a Gaussian (possibly flat: Var = +Inf, or improper: Var < 0).
func divide(a, b Gaussian) Gaussian {
	prec := 1/a.Var - 1/b.Var
	if prec == 0 {
		return Gaussian{Mean: 0, Var: math.Inf(1)}
	}
	v := 1 / prec
	return Gaussian{Mean: v * (a.Mean/a.Var - b.Mean/b.Var), Var: v}
}

// linearUpdate is one moment-matching update of independent Gaussian variables x_k
// (priors) observed through t = sum_k w_k x_k + N(0, noiseVar) with t in the interval of
// obs (obs.Mean and obs.Var are ignored). It passes the messages of the factor graph:
// the message to t, the truncated q(t) and its moments, the EP message from the
// observation to t, and the messages back to each x_k; it returns the posteriors, the
// messages to the x_k, q(t), the message to t and the message from the observation.
func linearUpdate(priors []Gaussian, w []float64, noiseVar float64, obs Truncated) (post, toX []Gaussian, qt, toT, fromObs Gaussian, err error) {
	var mean, variance float64
	for k, g := range priors {
		mean += w[k] * g.Mean
		variance += w[k] * w[k] * g.Var
	}
	toT = Gaussian{Mean: mean, Var: variance + noiseVar}
	obs.Gaussian = toT
	qt, err = obs.Moments()
	if err != nil {
		return nil, nil, Gaussian{}, Gaussian{}, Gaussian{}, err
	}
	fromObs = divide(qt, toT)
	post = make([]Gaussian, len(priors))
	toX = make([]Gaussian, len(priors))
	for k, g := range priors {
		if math.IsInf(fromObs.Var, 1) {
			toX[k] = Gaussian{Mean: 0, Var: math.Inf(1)}
			post[k] = g
			continue
		}
		// x_k = (t - sum_{j != k} w_j x_j - noise) / w_k
		others, othersVar := 0.0, noiseVar
		for j, h := range priors {
			if j != k {
				others += w[j] * h.Mean
				othersVar += w[j] * w[j] * h.Var
			}
		}
		toX[k] = Gaussian{Mean: (fromObs.Mean - others) / w[k], Var: (fromObs.Var + othersVar) / (w[k] * w[k])}
		post[k] = multiply(g, toX[k])
		if !(post[k].Var > 0) || math.IsNaN(post[k].Mean) {
			return nil, nil, Gaussian{}, Gaussian{}, Gaussian{}, fmt.Errorf("trueskill: update of %v gave %v (numerically degenerate)", g, post[k])
		}
	}
	return post, toX, qt, toT, fromObs, nil
}

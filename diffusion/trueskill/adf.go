package trueskill

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Model is the observation model of a season: the basic TrueSkill model (the outcome is
// the sign of t = s1 - s2 + noise; draws skipped) or the exam's extension with a home
// (first-mover) advantage and the margin of victory.
type Model struct {
	Prior  Gaussian // prior skill of every team
	SigmaT float64  // performance noise
	// Home adds a latent home advantage h ~ HomePrior to the performance of team 1,
	// t = s1 + h - s2 + noise; it is learned along the season like a skill.
	Home      bool
	HomePrior Gaussian
	// Margin observes the margin of victory m = |score1 - score2| (capped at MaxMargin)
	// instead of the sign only: y t in (MarginStep (m-1), MarginStep m) for m < MaxMargin,
	// y t > MarginStep (MaxMargin - 1) for m = MaxMargin. MaxMargin = 1 is the basic model.
	Margin     bool
	MarginStep float64
	MaxMargin  int
}

// BasicModel is the exam's model with its hyperparameters: skills N(25, (25/3)^2),
// sigmaT = 25/6.
func BasicModel() Model {
	p := DefaultParams()
	return Model{Prior: p.Prior1(), SigmaT: p.SigmaT}
}

// ExtendedModel is the basic model with a home advantage (prior N(0, 5^2)) and margins
// of victory in steps of 3 skill points up to 3 goals.
func ExtendedModel() Model {
	m := BasicModel()
	m.Home, m.HomePrior = true, Gaussian{0, 25}
	m.Margin, m.MarginStep, m.MaxMargin = true, 3, 3
	return m
}

// Validate reports a non-finite or non-positive parameter.
func (m Model) Validate() error {
	bad := func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }
	if bad(m.Prior.Mean) || bad(m.Prior.Var) || m.Prior.Var <= 0 || bad(m.SigmaT) || m.SigmaT <= 0 {
		return fmt.Errorf("trueskill: model prior %v, sigmaT %g: want a finite mean, variance > 0 and sigmaT > 0", m.Prior, m.SigmaT)
	}
	if m.Home && (bad(m.HomePrior.Mean) || bad(m.HomePrior.Var) || m.HomePrior.Var <= 0) {
		return fmt.Errorf("trueskill: home advantage prior %v: want a finite mean and variance > 0", m.HomePrior)
	}
	if m.Margin && (bad(m.MarginStep) || m.MarginStep <= 0 || m.MaxMargin < 1 || m.MaxMargin > 100) {
		return fmt.Errorf("trueskill: margin step %g, max margin %d: want step > 0 and 1 <= max <= 100", m.MarginStep, m.MaxMargin)
	}
	return nil
}

// Name describes the model in a few words.
func (m Model) Name() string {
	switch {
	case m.Home && m.Margin:
		return "home advantage + margin"
	case m.Home:
		return "home advantage"
	case m.Margin:
		return "margin"
	}
	return "basic"
}

// observation returns the interval of t that match mt reveals; ok is false for a draw.
func (m Model) observation(mt Match) (Truncated, bool) {
	y := mt.Outcome()
	if y == 0 {
		return Truncated{}, false
	}
	if !m.Margin {
		return SignTruncated(Gaussian{}, y), true
	}
	margin := min(abs(mt.Score1-mt.Score2), m.MaxMargin)
	lo, hi := m.MarginStep*float64(margin-1), m.MarginStep*float64(margin)
	if margin == m.MaxMargin {
		hi = math.Inf(1)
	}
	if y < 0 {
		lo, hi = -hi, -lo
	}
	return Truncated{Lo: lo, Hi: hi}, true
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Prediction is the one-step-ahead prediction of one match, made before its result
// updates the skills.
type Prediction struct {
	Match   int     // index into Season.Matches
	PWin1   float64 // predicted probability that team 1 wins, given that it is not a draw
	Outcome int     // +1, -1, or 0 for a draw (not predicted)
	Correct float64 // 1 or 0; 0.5 for a tie in the prediction (PWin1 = 0.5)
}

// Rating is the result of filtering a season.
type Rating struct {
	Skills      []Gaussian // posterior of every team's skill
	Home        Gaussian   // posterior of the home advantage (Model.Home only)
	Predictions []Prediction
	Skipped     int // draws (no observation)
	Duration    time.Duration
}

// Rate returns the share of correct one-step-ahead predictions of the winner over the
// matches that had one.
func (r *Rating) Rate() float64 {
	n, c := 0, 0.0
	for _, p := range r.Predictions {
		if p.Outcome != 0 {
			n++
			c += p.Correct
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return c / float64(n)
}

// Means returns the posterior mean of every team's skill.
func (r *Rating) Means() []float64 {
	out := make([]float64, len(r.Skills))
	for i, g := range r.Skills {
		out[i] = g.Mean
	}
	return out
}

// predict returns p(team 1 wins | not a draw) = Phi(mean(t) / sd(t)) under the current
// posteriors.
func (m Model) predict(skills []Gaussian, home Gaussian, mt Match) float64 {
	a, b := skills[mt.Team1], skills[mt.Team2]
	mean, v := a.Mean-b.Mean, a.Var+b.Var+m.SigmaT*m.SigmaT
	if m.Home {
		mean += home.Mean
		v += home.Var
	}
	return Phi(mean / math.Sqrt(v))
}

// update applies the observation of one match to the posteriors (one ADF step).
func (m Model) update(skills []Gaussian, home *Gaussian, mt Match) (bool, error) {
	obs, ok := m.observation(mt)
	if !ok {
		return false, nil
	}
	priors := []Gaussian{skills[mt.Team1], skills[mt.Team2]}
	w := []float64{1, -1}
	if m.Home {
		priors = append(priors, *home)
		w = append(w, 1)
	}
	post, _, _, _, _, err := linearUpdate(priors, w, m.SigmaT*m.SigmaT, obs)
	if err != nil {
		return false, err
	}
	skills[mt.Team1], skills[mt.Team2] = post[0], post[1]
	if m.Home {
		*home = post[2]
	}
	return true, nil
}

// ADF runs assumed density filtering over the season: the matches in the given order
// (nil: as played), each updating the two skills (and the home advantage) by moment
// matching, after predicting its winner from the skills so far. Draws are skipped.
func ADF(s *Season, order []int, m Model) (*Rating, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if order == nil {
		order = make([]int, len(s.Matches))
		for i := range order {
			order[i] = i
		}
	}
	for _, i := range order {
		if i < 0 || i >= len(s.Matches) {
			return nil, fmt.Errorf("trueskill: match order names match %d of %d", i, len(s.Matches))
		}
	}
	start := time.Now()
	r := &Rating{Skills: make([]Gaussian, len(s.Teams)), Home: m.HomePrior, Predictions: make([]Prediction, 0, len(order))}
	for i := range r.Skills {
		r.Skills[i] = m.Prior
	}
	for _, i := range order {
		mt := s.Matches[i]
		p := m.predict(r.Skills, r.Home, mt)
		pr := Prediction{Match: i, PWin1: p, Outcome: mt.Outcome()}
		switch {
		case p == 0.5:
			pr.Correct = 0.5
		case (p > 0.5) == (pr.Outcome > 0):
			pr.Correct = 1
		}
		r.Predictions = append(r.Predictions, pr)
		ok, err := m.update(r.Skills, &r.Home, mt)
		if err != nil {
			return nil, fmt.Errorf("match %d (%s - %s): %w", i, s.Teams[mt.Team1], s.Teams[mt.Team2], err)
		}
		if !ok {
			r.Skipped++
		}
	}
	r.Duration = time.Since(start)
	return r, nil
}

// EPSeason runs expectation propagation on the factor graph of the whole season: it
// starts from ADF and then sweeps over the matches, replacing each match's message to
// its teams by one computed from the cavity (posterior without that message), until
// no mean moves more than 1e-6 or after sweeps sweeps. Unlike ADF its answer does not
// depend on the order of the matches. Predictions are those of the first (ADF) pass.
// Convergence is slow, because only differences of skills are observed and the overall
// level is held by the prior alone: on a synthetic 380-match season the means settle to
// 1e-3 after about 200 sweeps (about 50 microseconds each). It returns the sweeps done.
func EPSeason(s *Season, m Model, sweeps int) (*Rating, int, error) {
	r, err := ADF(s, nil, m)
	if err != nil {
		return nil, 0, err
	}
	if sweeps < 0 {
		return nil, 0, errors.New("trueskill: EP over a season with a negative number of sweeps")
	}
	start := time.Now()
	// Natural parameters of each match's messages to team1, team2, home.
	type nat struct{ prec, pm float64 }
	msgs := make([][3]nat, len(s.Matches))
	post := make([]nat, len(s.Teams))
	for i := range post {
		post[i] = nat{1 / m.Prior.Var, m.Prior.Mean / m.Prior.Var}
	}
	home := nat{1 / m.HomePrior.Var, m.HomePrior.Mean / m.HomePrior.Var}
	toG := func(n nat) Gaussian { return Gaussian{n.pm / n.prec, 1 / n.prec} }
	done := 0
	for sweep := 0; sweep <= sweeps; sweep++ {
		moved := 0.0
		for i, mt := range s.Matches {
			obs, ok := m.observation(mt)
			if !ok {
				continue
			}
			ids := []*nat{&post[mt.Team1], &post[mt.Team2]}
			w := []float64{1, -1}
			if m.Home {
				ids = append(ids, &home)
				w = append(w, 1)
			}
			cav := make([]Gaussian, len(ids))
			for k, id := range ids {
				c := nat{id.prec - msgs[i][k].prec, id.pm - msgs[i][k].pm}
				if c.prec <= 0 {
					return nil, 0, fmt.Errorf("trueskill: EP: improper cavity at match %d", i)
				}
				cav[k] = toG(c)
			}
			np, _, _, _, _, err := linearUpdate(cav, w, m.SigmaT*m.SigmaT, obs)
			if err != nil {
				return nil, 0, fmt.Errorf("trueskill: EP: match %d: %w", i, err)
			}
			for k, id := range ids {
				old := toG(*id)
				n := nat{1 / np[k].Var, np[k].Mean / np[k].Var}
				msgs[i][k] = nat{n.prec - 1/cav[k].Var, n.pm - cav[k].Mean/cav[k].Var}
				*id = n
				moved = math.Max(moved, math.Abs(np[k].Mean-old.Mean))
			}
		}
		done = sweep
		if sweep > 0 && moved < 1e-6 {
			break
		}
	}
	for i := range post {
		r.Skills[i] = toG(post[i])
	}
	if m.Home {
		r.Home = toG(home)
	}
	r.Duration += time.Since(start)
	return r, done, nil
}

// Shuffled returns a random order of n matches.
func Shuffled(n int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 0x6f72646572))
	return rng.Perm(n)
}

package trueskill

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"gonum.org/v1/gonum/stat"
)

// Ranks returns the rank of every value (1 = largest); ties get the mean of their ranks.
func Ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] > x[idx[b]] })
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		for k := i; k <= j; k++ {
			r[idx[k]] = float64(i+j)/2 + 1
		}
		i = j + 1
	}
	return r
}

// Spearman returns the rank correlation of x and y.
func Spearman(x, y []float64) float64 {
	return stat.Correlation(Ranks(x), Ranks(y), nil)
}

// RankRow is one row of a ranking table.
type RankRow struct {
	Rank       int
	Team       string
	Mean, Var  float64
	True       float64 // the true skill of a synthetic season (NaN otherwise)
	TrueRank   int     // its rank among the true skills (0 otherwise)
	Played     int
	Wins, Lost int
}

// Ranking sorts the teams by posterior mean skill. trueSkills may be nil.
func Ranking(s *Season, r *Rating, trueSkills []float64) []RankRow {
	rows := make([]RankRow, len(s.Teams))
	var trueRanks []float64
	if len(trueSkills) == len(s.Teams) {
		trueRanks = Ranks(trueSkills)
	}
	for i, name := range s.Teams {
		rows[i] = RankRow{Team: name, Mean: r.Skills[i].Mean, Var: r.Skills[i].Var, True: math.NaN()}
		if trueRanks != nil {
			rows[i].True, rows[i].TrueRank = trueSkills[i], int(trueRanks[i])
		}
	}
	for _, m := range s.Matches {
		rows[m.Team1].Played++
		rows[m.Team2].Played++
		switch m.Outcome() {
		case 1:
			rows[m.Team1].Wins++
			rows[m.Team2].Lost++
		case -1:
			rows[m.Team2].Wins++
			rows[m.Team1].Lost++
		}
	}
	sort.SliceStable(rows, func(a, b int) bool { return rows[a].Mean > rows[b].Mean })
	for i := range rows {
		rows[i].Rank = i + 1
	}
	return rows
}

// RankingMarkdown formats a ranking as a Markdown table.
func RankingMarkdown(rows []RankRow) string {
	var b strings.Builder
	withTrue := len(rows) > 0 && !math.IsNaN(rows[0].True)
	b.WriteString("| rank | team | mean | variance | W-D-L |")
	if withTrue {
		b.WriteString(" true skill | true rank |")
	}
	b.WriteString("\n|---:|---|---:|---:|---|")
	if withTrue {
		b.WriteString("---:|---:|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %s | %.2f | %.2f | %d-%d-%d |", r.Rank, r.Team, r.Mean, r.Var, r.Wins, r.Played-r.Wins-r.Lost, r.Lost)
		if withTrue {
			fmt.Fprintf(&b, " %.2f | %d |", r.True, r.TrueRank)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// CalibrationBin is one bin of a reliability diagram.
type CalibrationBin struct {
	Lo, Hi    float64 // range of predicted probabilities
	Predicted float64 // mean predicted probability that team 1 wins
	Observed  float64 // share of those matches team 1 won
	Count     int
}

// Calibration bins the predicted win probabilities of the decided matches of one or
// more ratings into bins equal-width bins and compares them with the outcomes. It also
// returns the Brier score (mean squared error of the probability, 0.25 for a coin).
func Calibration(bins int, ratings ...*Rating) ([]CalibrationBin, float64) {
	if bins < 1 {
		bins = 1
	}
	out := make([]CalibrationBin, bins)
	for i := range out {
		out[i].Lo, out[i].Hi = float64(i)/float64(bins), float64(i+1)/float64(bins)
	}
	brier, n := 0.0, 0
	for _, r := range ratings {
		for _, p := range r.Predictions {
			if p.Outcome == 0 {
				continue
			}
			won := 0.0
			if p.Outcome > 0 {
				won = 1
			}
			k := min(int(p.PWin1*float64(bins)), bins-1)
			out[k].Predicted += p.PWin1
			out[k].Observed += won
			out[k].Count++
			brier += (p.PWin1 - won) * (p.PWin1 - won)
			n++
		}
	}
	for i := range out {
		if out[i].Count > 0 {
			out[i].Predicted /= float64(out[i].Count)
			out[i].Observed /= float64(out[i].Count)
		}
	}
	if n == 0 {
		return out, math.NaN()
	}
	return out, brier / float64(n)
}

// ShuffleStudy is the effect of the order of the matches on ADF.
type ShuffleStudy struct {
	Base      *Rating     // in the order played
	Ranks     [][]float64 // [order][team] rank under each shuffled order
	BaseRanks []float64   // [team] rank in the order played
	Rates     []float64   // prediction rate under each order
	// MeanAbsRankChange is the mean over orders and teams of |rank - rank as played|;
	// MaxRankChange the largest; Spearman the mean rank correlation with the order
	// played; Changed the mean number of teams whose rank differs.
	MeanAbsRankChange float64
	MaxRankChange     int
	Spearman          float64
	Changed           float64
}

// StudyShuffles runs ADF in the order played and in orders random orders.
func StudyShuffles(s *Season, m Model, orders int, seed uint64) (*ShuffleStudy, error) {
	base, err := ADF(s, nil, m)
	if err != nil {
		return nil, err
	}
	st := &ShuffleStudy{Base: base, BaseRanks: Ranks(base.Means())}
	for k := range orders {
		r, err := ADF(s, Shuffled(len(s.Matches), seed+uint64(k)), m)
		if err != nil {
			return nil, err
		}
		rk := Ranks(r.Means())
		st.Ranks = append(st.Ranks, rk)
		st.Rates = append(st.Rates, r.Rate())
		st.Spearman += Spearman(rk, st.BaseRanks) / float64(orders)
		for i := range rk {
			d := math.Abs(rk[i] - st.BaseRanks[i])
			st.MeanAbsRankChange += d / float64(orders*len(rk))
			st.MaxRankChange = max(st.MaxRankChange, int(d))
			if d > 0 {
				st.Changed += 1 / float64(orders)
			}
		}
	}
	return st, nil
}

// EPOrderEffect runs EP over the season in the order played and in orders random orders
// and returns the largest difference of a posterior mean from the order played, and the
// largest number of sweeps any run needed.
func EPOrderEffect(s *Season, m Model, orders, sweeps int, seed uint64) (maxDiff float64, maxSweeps int, err error) {
	base, n, err := EPSeason(s, m, sweeps)
	if err != nil {
		return 0, 0, err
	}
	maxSweeps = n
	for k := range orders {
		sh := &Season{Teams: s.Teams, Matches: make([]Match, 0, len(s.Matches))}
		for _, i := range Shuffled(len(s.Matches), seed+uint64(k)) {
			sh.Matches = append(sh.Matches, s.Matches[i])
		}
		r, n, err := EPSeason(sh, m, sweeps)
		if err != nil {
			return 0, 0, err
		}
		maxSweeps = max(maxSweeps, n)
		for i := range r.Skills {
			maxDiff = math.Max(maxDiff, math.Abs(r.Skills[i].Mean-base.Skills[i].Mean))
		}
	}
	return maxDiff, maxSweeps, nil
}

package metrics

import (
	"fmt"
	"strings"
)

// String formats the report on one line, e.g.
// "n=5000 NLL=2.152 precision=0.998 recall=0.997 off-outline(>0.05)=0.001".
func (r Report) String() string {
	s := fmt.Sprintf("n=%d NLL=%.3f precision=%.3f recall=%.3f off-outline(>%g)=%.3f",
		r.Samples, r.NLL, r.Precision, r.Recall, r.OffOutlineThreshold, r.OffOutline)
	if r.Conditional {
		s += fmt.Sprintf(" label=%d purity=%.3f", r.Label, r.Purity)
	}
	return s
}

// MarkdownTable formats reports as a Markdown table, one row per report, named by the
// matching entry of names (missing names are left empty). Purity is "-" for
// unconditional reports.
func MarkdownTable(names []string, reports []Report) string {
	var b strings.Builder
	b.WriteString("| set | n | NLL (nats) | precision | recall | off-outline | purity |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for i, r := range reports {
		name := ""
		if i < len(names) {
			name = names[i]
		}
		purity := "-"
		if r.Conditional {
			purity = fmt.Sprintf("%.3f", r.Purity)
		}
		fmt.Fprintf(&b, "| %s | %d | %.3f | %.3f | %.3f | %.3f | %s |\n",
			name, r.Samples, r.NLL, r.Precision, r.Recall, r.OffOutline, purity)
	}
	return b.String()
}

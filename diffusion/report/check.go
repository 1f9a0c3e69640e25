package report

import (
	"fmt"
	"strings"
)

// Expect is what a finished report must contain.
type Expect struct {
	Titles    []string // every notebook's title must appear in the text
	MinImages int      // at least this many embedded images
	MinPages  int      // at least this many pages (at least 1)
}

// Check compares a report's Info with what it must contain and lists every shortfall.
func Check(info *Info, want Expect) error {
	var problems []string
	minPages := max(want.MinPages, 1)
	if info.Pages < minPages {
		problems = append(problems, fmt.Sprintf("%d pages, want at least %d", info.Pages, minPages))
	}
	if info.Images < want.MinImages {
		problems = append(problems, fmt.Sprintf("%d images embedded, want at least %d", info.Images, want.MinImages))
	}
	text := normalize(info.Text)
	for _, t := range want.Titles {
		if !strings.Contains(text, normalize(t)) {
			problems = append(problems, fmt.Sprintf("title %q not found in the text", t))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("report check failed: %s", strings.Join(problems, "; "))
	}
	return nil
}

// normalize folds whitespace so that line breaks chosen by the layout do not matter.
func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }

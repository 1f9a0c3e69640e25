// Package progress shows the progress of a long loop (training, sampling): an HTML
// progress bar updated in place in a GoNB notebook, or a few plain lines elsewhere.
package progress

import (
	"fmt"
	"html"
	"io"
	"os"
	"strings"
	"time"

	"github.com/janpfeifer/gonb/gonbui"
)

// Bar reports the progress of a loop of Total steps. Create it with New.
type Bar struct {
	Label    string
	Total    int
	Out      io.Writer     // plain-text output outside notebooks; os.Stdout by default
	Interval time.Duration // minimum time between two updates shown

	notebook  bool
	id        string
	start     time.Time
	lastShown time.Time
	lines     int
}

// New returns a bar for a loop of total steps. In a GoNB notebook it displays an HTML
// bar; otherwise it prints at most about ten lines to standard output.
func New(label string, total int) *Bar {
	return &Bar{
		Label: label, Total: total, Out: os.Stdout, Interval: 250 * time.Millisecond,
		notebook: gonbui.IsNotebook, id: "progress_" + gonbui.UniqueID(), start: time.Now(),
	}
}

// Update reports that step (1-based) is done; status is a short text such as
// "loss 0.123".
func (b *Bar) Update(step int, status string) {
	now := time.Now()
	last := step >= b.Total
	if b.notebook {
		if !last && now.Sub(b.lastShown) < b.Interval {
			return
		}
		b.lastShown = now
		gonbui.UpdateHTML(b.id, b.html(step, status))
		return
	}
	// Plain text: about ten lines over the whole loop.
	every := b.Total / 10
	if every < 1 {
		every = 1
	}
	if step%every == 0 || last || step == 1 {
		fmt.Fprintln(b.Out, b.text(step, status))
		b.lines++
	}
}

// Done finishes the bar, leaving its final state with the elapsed time and summary.
func (b *Bar) Done(summary string) {
	msg := fmt.Sprintf("%s: done in %s", b.Label, time.Since(b.start).Round(100*time.Millisecond))
	if summary != "" {
		msg += ", " + summary
	}
	if b.notebook {
		gonbui.UpdateHTML(b.id, b.html(b.Total, summary))
		gonbui.DisplayHTML("<pre>" + html.EscapeString(msg) + "</pre>")
		return
	}
	fmt.Fprintln(b.Out, msg)
}

// Elapsed returns the time since the bar was created.
func (b *Bar) Elapsed() time.Duration { return time.Since(b.start) }

func (b *Bar) eta(step int) string {
	if step <= 0 || step >= b.Total {
		return ""
	}
	el := time.Since(b.start)
	left := time.Duration(float64(el) / float64(step) * float64(b.Total-step))
	return "eta " + left.Round(time.Second).String()
}

func (b *Bar) text(step int, status string) string {
	parts := []string{fmt.Sprintf("%s %d/%d", b.Label, step, b.Total), time.Since(b.start).Round(100 * time.Millisecond).String()}
	if e := b.eta(step); e != "" {
		parts = append(parts, e)
	}
	if status != "" {
		parts = append(parts, status)
	}
	return strings.Join(parts, "  ")
}

func (b *Bar) html(step int, status string) string {
	return fmt.Sprintf(`<div style="font-family:monospace"><progress value="%d" max="%d" style="width:40%%"></progress> %s</div>`,
		step, b.Total, html.EscapeString(b.text(step, status)))
}

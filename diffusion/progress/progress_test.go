package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestPlainTextIsShortAndEndsWithSummary(t *testing.T) {
	var buf bytes.Buffer
	b := New("train", 1000)
	b.Out = &buf
	b.notebook = false
	for i := 1; i <= 1000; i++ {
		b.Update(i, "loss 0.5")
	}
	b.Done("final loss 0.1")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < 5 || len(lines) > 13 {
		t.Errorf("printed %d lines for 1000 steps, want about 10:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[len(lines)-2], "train 1000/1000") {
		t.Errorf("last update line = %q", lines[len(lines)-2])
	}
	if !strings.Contains(lines[len(lines)-1], "final loss 0.1") {
		t.Errorf("summary line = %q", lines[len(lines)-1])
	}
}

package cell

import (
	"errors"
	"strings"
	"testing"
)

func TestMustAndValue(t *testing.T) {
	defer func() {
		r := recover()
		if err, ok := r.(error); !ok || !strings.Contains(err.Error(), "boom") {
			t.Errorf("recovered %v, want the error", r)
		}
	}()
	if v := Value(3, nil); v != 3 {
		t.Errorf("Value = %d", v)
	}
	if a, b := Values("a", 2, nil); a != "a" || b != 2 {
		t.Errorf("Values = %q %d", a, b)
	}
	Must(nil)
	Value(0, errors.New("boom"))
	t.Error("Value did not stop on an error")
}

func TestCheckpoint(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DIFFUSION_OUTPUTS", dir)
	if got := Checkpoint("x"); !strings.HasPrefix(got, dir) || !strings.HasSuffix(got, "x") {
		t.Errorf("Checkpoint = %q", got)
	}
}

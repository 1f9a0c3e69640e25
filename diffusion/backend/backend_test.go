package backend

import (
	"strings"
	"testing"
)

func TestDefaultIsGoBackend(t *testing.T) {
	t.Setenv(EnvVar, "")
	if got := Config(); got != "go" {
		t.Fatalf("Config() with %s unset = %q, want \"go\"", EnvVar, got)
	}
	b, err := New()
	if err != nil {
		t.Fatalf("New(): %v", err)
	}
	defer b.Finalize()
	if !strings.Contains(strings.ToLower(b.Name()), "go") {
		t.Fatalf("default backend is %q, want the Go backend", b.Name())
	}
	if !IsGo(b) || IsGo(nil) {
		t.Errorf("IsGo(%q) = %v, IsGo(nil) = %v", b.Name(), IsGo(b), IsGo(nil))
	}
}

func TestUnknownBackendIsAnError(t *testing.T) {
	t.Setenv(EnvVar, "nosuchbackend:x")
	_, err := New()
	if err == nil || !strings.Contains(err.Error(), "nosuchbackend") {
		t.Fatalf("New() with an unknown backend: err = %v, want an error naming it", err)
	}
}

func TestGoBackendRunsOpsSequentiallyUnlessAsked(t *testing.T) {
	for cfg, want := range map[string]string{
		"go": "go:ops_sequential", "go:parallelism=2": "go:parallelism=2,ops_sequential",
		"go:ops_parallel": "go:ops_parallel", "xla:cuda": "xla:cuda",
	} {
		if got := Effective(cfg); got != want {
			t.Errorf("Effective(%q) = %q, want %q", cfg, got, want)
		}
	}
	b, err := NewWithConfig("go:parallelism=2")
	if err != nil {
		t.Fatalf("go:parallelism=2: %v", err)
	}
	b.Finalize()
}

func TestAsyncPreemptOff(t *testing.T) {
	for _, c := range []struct {
		env  string
		want bool
	}{{"", false}, {"asyncpreemptoff=1", true}, {"madvdontneed=1,asyncpreemptoff=1", true}, {"asyncpreemptoff=1,asyncpreemptoff=0", false}, {"asyncpreemptoff=0", false}} {
		t.Setenv("GODEBUG", c.env)
		if got := AsyncPreemptOff(); got != c.want {
			t.Errorf("GODEBUG=%q: AsyncPreemptOff() = %v, want %v", c.env, got, c.want)
		}
	}
}

package preset

import "testing"

func TestParse(t *testing.T) {
	for in, want := range map[string]Preset{"": CPU, "smoke": Smoke, " CPU ": CPU, "Paper": Paper} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Parse("fast"); err == nil {
		t.Error("Parse(\"fast\") gave no error")
	}
}

func TestFromEnvAndPick(t *testing.T) {
	t.Setenv(EnvVar, "smoke")
	p, err := FromEnv()
	if err != nil || p != Smoke {
		t.Fatalf("FromEnv() = %q, %v", p, err)
	}
	if got := Pick(p, 1, 2, 3); got != 1 {
		t.Errorf("Pick(smoke) = %d", got)
	}
	if got := Pick(Paper, 1, 2, 3); got != 3 {
		t.Errorf("Pick(paper) = %d", got)
	}
	t.Setenv(EnvVar, "bogus")
	if _, err := FromEnv(); err == nil {
		t.Error("FromEnv with a bogus value gave no error")
	}
	if Default() != "cpu" {
		t.Errorf("Default() with a bogus value = %q, want cpu", Default())
	}
}

func TestOverride(t *testing.T) {
	n, f, s := 3, 0.5, "a"
	Override(&n, 0)
	Override(&f, 0)
	Override(&s, "")
	if n != 3 || f != 0.5 || s != "a" {
		t.Errorf("zero values overrode: %d %g %q", n, f, s)
	}
	Override(&n, -2)
	Override(&f, 2.5)
	Override(&s, "b")
	if n != -2 || f != 2.5 || s != "b" {
		t.Errorf("values not set: %d %g %q", n, f, s)
	}
}

package godebug

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestEnviron(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want []string
	}{
		{[]string{"A=1"}, []string{"A=1", "GODEBUG=asyncpreemptoff=1", GuardVar + "=1"}},
		{[]string{"GODEBUG=", "B=2"}, []string{"GODEBUG=asyncpreemptoff=1", "B=2", GuardVar + "=1"}},
		{[]string{"GODEBUG=madvdontneed=1"}, []string{"GODEBUG=madvdontneed=1,asyncpreemptoff=1", GuardVar + "=1"}},
		{[]string{GuardVar + "=x", "GODEBUG=a=1"}, []string{"GODEBUG=a=1,asyncpreemptoff=1", GuardVar + "=1"}},
	} {
		if got := Environ(c.in); !slices.Equal(got, c.want) {
			t.Errorf("Environ(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNeeded(t *testing.T) {
	for _, c := range []struct {
		godebug, guard string
		want           bool
	}{
		{"", "", true},
		{"madvdontneed=1", "", true},
		{"asyncpreemptoff=1", "", false},
		{"x=1, asyncpreemptoff=0", "", false}, // the user's explicit choice
		{"", "1", false},                      // already re-executed once
	} {
		t.Setenv("GODEBUG", c.godebug)
		t.Setenv(GuardVar, c.guard)
		if got := Needed(); got != c.want {
			t.Errorf("Needed() with GODEBUG=%q %s=%q = %v, want %v", c.godebug, GuardVar, c.guard, got, c.want)
		}
	}
}

// TestEnsureReexecutes runs this test binary as a child without the setting: the child
// calls Ensure, which must restart it (same arguments) with the setting in GODEBUG, once.
func TestEnsureReexecutes(t *testing.T) {
	if os.Getenv("GODEBUG_TEST_CHILD") == "1" {
		if err := Ensure(); err != nil {
			t.Fatal(err)
		}
		// Only the re-executed process gets here.
		os.Stdout.WriteString("CHILD GODEBUG=" + os.Getenv("GODEBUG") + " GUARD=" + os.Getenv(GuardVar) + " ARGS=" + strings.Join(os.Args[1:], " ") + "\n")
		return
	}
	for _, c := range []struct{ godebug, want string }{
		{"", "CHILD GODEBUG=asyncpreemptoff=1 GUARD=1"},
		{"madvdontneed=1", "CHILD GODEBUG=madvdontneed=1,asyncpreemptoff=1 GUARD=1"},
		{"asyncpreemptoff=0", "CHILD GODEBUG=asyncpreemptoff=0 GUARD="},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEnsureReexecutes$", "-test.count=1")
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GODEBUG=") && !strings.HasPrefix(kv, GuardVar+"=") {
				env = append(env, kv)
			}
		}
		if c.godebug != "" {
			env = append(env, "GODEBUG="+c.godebug)
		}
		cmd.Env = append(env, "GODEBUG_TEST_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child with GODEBUG=%q: %v\n%s", c.godebug, err, out)
		}
		if !strings.Contains(string(out), c.want+" ARGS=-test.run=^TestEnsureReexecutes$ -test.count=1\n") {
			t.Errorf("child with GODEBUG=%q printed\n%s\nwant a line %q with the original arguments", c.godebug, out, c.want)
		}
		if n := strings.Count(string(out), "CHILD "); n != 1 {
			t.Errorf("child with GODEBUG=%q ran its body %d times, want 1", c.godebug, n)
		}
	}
}

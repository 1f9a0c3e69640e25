package backend

import (
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// independentMatmuls runs, reps times, a graph of n independent matrix products (each
// Saturates the worker pool) summed at the end, and reports whether it finished; it is hung
// when no run completes for stall.
func independentMatmuls(t *testing.T, config string, n, reps int, stall time.Duration) bool {
	t.Helper()
	b, err := NewWithConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	exec := MustNewExec(b, func(x *Node) *Node {
		var sum *Node
		for i := range n {
			y := MatMul(AddScalar(x, float64(i)), x)
			if sum == nil {
				sum = y
			} else {
				sum = Add(sum, y)
			}
		}
		return ReduceAllSum(sum)
	})
	x := tensors.FromShape(shapes.Make(dtypes.Float32, 256, 256))
	var runs atomic.Int64
	go func() {
		for range reps {
			exec.MustExec1(x).FinalizeAll()
			runs.Add(1)
		}
	}()
	last := int64(-1)
	for {
		time.Sleep(stall)
		r := runs.Load()
		if r == int64(reps) {
			return true
		}
		if r == last {
			return false
		}
		last = r
	}
}

// TestParallelSchedulerChild is the child process of TestParallelScheduler: it runs the
// configuration of DIFFUSION_SCHEDULER_CONFIG and prints "finished" or "hung".
func TestParallelSchedulerChild(t *testing.T) {
	config := os.Getenv("DIFFUSION_SCHEDULER_CONFIG")
	if config == "" {
		t.Skip("child of TestParallelScheduler")
	}
	if independentMatmuls(t, config, 16, 100, 10*time.Second) {
		os.Stdout.WriteString("finished\n")
	} else {
		os.Stdout.WriteString("hung\n")
	}
	os.Stdout.Sync()
	os.Exit(0) // a hung run leaves goroutines blocked forever
}

// TestParallelScheduler pins down the Go backend's parallel-scheduler deadlock and its
// work-around: with the default bounded pool, every pool slot can be held by a node whose
// matmul waits in workerspool.Saturate for a free slot, which none of them will give back.
// With an unbounded pool (parallelism=-1) node tasks and Saturate's tasks never wait for
// slots, and the same graph finishes.
func TestParallelScheduler(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	run := func(config string) string {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestParallelSchedulerChild$", "-test.v")
		cmd.Env = append(os.Environ(), "DIFFUSION_SCHEDULER_CONFIG="+config)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", config, err, out)
		}
		switch {
		case strings.Contains(string(out), "finished"):
			return "finished"
		case strings.Contains(string(out), "hung"):
			return "hung"
		}
		t.Fatalf("%s: no verdict in\n%s", config, out)
		return ""
	}
	t.Logf("go:ops_parallel (bounded pool): %s", run("go:ops_parallel"))
	if got := run("go:parallelism=-1,ops_parallel"); got != "finished" {
		t.Errorf("go:parallelism=-1,ops_parallel: %s, want finished", got)
	}
}

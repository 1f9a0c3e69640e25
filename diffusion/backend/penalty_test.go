package backend

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// expInputs are GELU-like arguments: -2u for z in [-4, 4].
func expInputs() []float64 {
	x := make([]float64, 1<<20)
	for i := range x {
		z := -4 + 8*float64(i)/float64(len(x))
		x[i] = -2 * 0.7978845608028654 * (z + 0.044715*z*z*z)
	}
	return x
}

var benchSink float64

// BenchmarkScalarExp times scalar exp per call over a 1M-element slice per iteration (long
// enough to be preempted): math.Exp, which mixes VEX (FMA) and legacy SSE instructions, and
// math.Expm1 + 1, which is pure Go (legacy SSE only) and the form diffusion/conv uses. Run
// alone it measures the process's own GODEBUG; BenchmarkExpPenalty runs it with and without
// asyncpreemptoff=1 and prints the ratios.
func BenchmarkScalarExp(b *testing.B) {
	x := expInputs()
	for _, c := range []struct {
		name string
		f    func(float64) float64
	}{{"exp", math.Exp}, {"expm1", func(v float64) float64 { return math.Expm1(v) + 1 }}} {
		b.Run(c.name, func(b *testing.B) {
			s := 0.0
			for b.Loop() {
				for _, v := range x {
					s += c.f(v)
				}
			}
			benchSink = s
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/call")
		})
	}
}

var nsPerCall = regexp.MustCompile(`BenchmarkScalarExp/(\w+)\S*\s.*\s([0-9.]+) ns/call`)

// BenchmarkExpPenalty measures the AVX-SSE transition penalty of this CPU: it runs
// BenchmarkScalarExp in two child processes of this test binary, one with GODEBUG
// asyncpreemptoff unset and one with asyncpreemptoff=1, and reports ns per call of each
// and the ratios (penalty-x: default / asyncpreemptoff=1 for math.Exp; expm1 is the
// replacement, whose ratio should stay near 1). On CPUs without the penalty (AMD, builds
// without GOEXPERIMENT=simd) both ratios are near 1.
func BenchmarkExpPenalty(b *testing.B) {
	results := map[string]float64{}
	for b.Loop() {
		for _, mode := range []string{"default", "asyncpreemptoff"} {
			var env []string
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "GODEBUG=") {
					env = append(env, kv)
				}
			}
			if mode == "asyncpreemptoff" {
				env = append(env, "GODEBUG=asyncpreemptoff=1")
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^BenchmarkScalarExp$", "-test.benchtime=20x", "-test.count=1")
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				b.Fatalf("child (%s): %v\n%s", mode, err, out)
			}
			for _, m := range nsPerCall.FindAllStringSubmatch(string(out), -1) {
				v, _ := strconv.ParseFloat(m[2], 64)
				results[m[1]+"-"+mode] = v
			}
		}
	}
	for _, k := range []string{"exp-default", "exp-asyncpreemptoff", "expm1-default", "expm1-asyncpreemptoff"} {
		v, ok := results[k]
		if !ok {
			b.Fatalf("no %s figure in the children's output (%v)", k, results)
		}
		b.ReportMetric(v, k+"-ns/call")
	}
	b.ReportMetric(results["exp-default"]/results["exp-asyncpreemptoff"], "exp-penalty-x")
	b.ReportMetric(results["expm1-default"]/results["expm1-asyncpreemptoff"], "expm1-penalty-x")
	b.Log(fmt.Sprintf("simd build %v", SIMDBuild()))
}

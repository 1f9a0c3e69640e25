package mnistrun

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/history"
	"github.com/godiffusion/notebooks/diffusion/imagediff"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// The child process of the kill-and-resume tests: with these variables set,
// TestResumeChild trains resumeTask into $MNISTRUN_RESUME_DIR, printing "step k" after every
// step, and exits (130 when interrupted, 1 on an error, 0 when done).
const (
	envChildDir   = "MNISTRUN_RESUME_DIR"
	envChildSleep = "MNISTRUN_RESUME_SLEEP_MS"   // pause after each step
	envChildLimit = "MNISTRUN_RESUME_FSIZE_STEP" // from this step on, files are limited to 64 bytes
)

// resumeTask is a tiny class-conditioned flow model (D = 4, 8x8 images) with the exponential
// schedule, class dropout and an EMA, trained for 30 steps (wrapping its 40-image epochs),
// with snapshots at steps 6 and 18, saving its state every 4 steps and never by time.
func resumeTask() Task {
	net := nets.DefaultUNetConfig(4)
	net.ImageSize, net.TimeConditioned, net.NumClasses = 8, true, 3
	return Task{Name: "tiny_flow", Model: imagediff.Config{Net: net, Objective: imagediff.Flow, PixelLo: 0, PixelHi: 1},
		Train: imagediff.TrainConfig{Steps: 30, BatchSize: 16, LR: 1e-2, LRSchedule: lrschedule.Exponential, FinalLRFraction: 0.1,
			PUncond: 0.2, Seed: 3, EMADecay: 0.9},
		SnapshotEpochs: []float64{0.0016, 0.0048}, CheckpointEvery: 4, CheckpointInterval: -1}
}

// resumeSet is 40 random 8x8 "digits" of 3 classes.
func resumeSet() *mnist.Set {
	r := rand.New(rand.NewPCG(4, 5))
	s := &mnist.Set{N: 40, Rows: 8, Cols: 8, Images: make([]float32, 40*64), Labels: make([]int, 40)}
	for i := range s.Images {
		s.Images[i] = r.Float32()
	}
	for i := range s.Labels {
		s.Labels[i] = i % 3
	}
	return s
}

// resumeSnapshot is a deterministic stand-in for a snapshot figure: the step and a checksum of
// the model's weights at that step.
func resumeSnapshot(m *imagediff.Model, step int, epoch float64) ([]byte, error) {
	h := crc32.NewIEEE()
	for v := range m.Store().Scope("/" + imagediff.Scope).IterVariables() {
		value, err := v.Value()
		if err != nil {
			return nil, err
		}
		flat, err := tensors.CopyFlatData[float32](value)
		if err != nil {
			return nil, err
		}
		for _, x := range flat {
			_, _ = fmt.Fprint(h, math.Float32bits(x))
		}
	}
	return fmt.Appendf(nil, "step %d epoch %g weights %08x", step, epoch, h.Sum32()), nil
}

func TestResumeChild(t *testing.T) {
	dir := os.Getenv(envChildDir)
	if dir == "" {
		t.Skip("the child process of TestKillAndResume")
	}
	b, err := backend.New()
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	sleep, _ := strconv.Atoi(os.Getenv(envChildSleep))
	limitAt, _ := strconv.Atoi(os.Getenv(envChildLimit))
	_, _, err = Train(b, resumeTask(), resumeSet(), dir, resumeSnapshot, func(step int, loss float64) {
		fmt.Printf("step %d\n", step)
		if limitAt > 0 && step == limitAt {
			// A full disk: no file can grow past 64 bytes any more.
			_ = syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 64, Max: 64})
		}
		time.Sleep(time.Duration(sleep) * time.Millisecond)
	})
	if err != nil {
		fmt.Println("error:", err)
		if trainstate.IsInterrupted(err) {
			os.Exit(130)
		}
		os.Exit(1)
	}
	fmt.Println("done")
	os.Exit(0)
}

// child starts the child process training into dir.
func child(t *testing.T, dir string, env ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestResumeChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), append([]string{envChildDir + "=" + dir}, env...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(out)
}

// trained loads the finished model of dir: its weights (every variable under /unet) and
// History.
func trained(t *testing.T, dir string) (map[string][]float32, *History) {
	t.Helper()
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	m, h, err := Load(b, dir)
	if err != nil {
		t.Fatal(err)
	}
	w := map[string][]float32{}
	for v := range m.Store().Scope("/" + imagediff.Scope).IterVariables() {
		value, err := v.Value()
		if err != nil {
			t.Fatal(err)
		}
		if flat, err := tensors.CopyFlatData[float32](value); err == nil {
			w[v.Path()] = flat
		}
	}
	return w, h
}

// sameRun checks that a resumed training ended exactly as the uninterrupted one: the same
// weights and losses bit for bit, the same snapshots.
func sameRun(t *testing.T, refDir, dir string) {
	t.Helper()
	wa, ha := trained(t, refDir)
	wb, hb := trained(t, dir)
	if len(wa) == 0 || len(wa) != len(wb) {
		t.Fatalf("%d vs %d variables", len(wa), len(wb))
	}
	for p, a := range wa {
		b := wb[p]
		for i := range a {
			if i >= len(b) || math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("variable %s differs at %d", p, i)
			}
		}
	}
	bits := func(xs []float64) []uint64 {
		var out []uint64
		for _, x := range xs {
			out = append(out, math.Float64bits(x))
		}
		return out
	}
	if !slices.Equal(bits(ha.Loss), bits(hb.Loss)) || !slices.Equal(bits(ha.LR), bits(hb.LR)) || ha.Epochs != hb.Epochs || !history.Same(ha.Train, hb.Train) || !slices.Equal(ha.Snapshots, hb.Snapshots) {
		t.Fatalf("histories differ:\n%+v\n%+v", ha, hb)
	}
	for _, s := range ha.Snapshots {
		a, errA := os.ReadFile(filepath.Join(refDir, s.File))
		b, errB := os.ReadFile(filepath.Join(dir, s.File))
		if errA != nil || errB != nil || string(a) != string(b) {
			t.Fatalf("snapshot %s: %q (%v) vs %q (%v)", s.File, a, errA, b, errB)
		}
	}
	if _, err := os.Stat(dir + ".training"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the workspace %s.training is left after the training finished (%v)", dir, err)
	}
}

// reference trains resumeTask without interruption, in this process.
func reference(t *testing.T) string {
	t.Helper()
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "ref")
	if _, _, err := Train(b, resumeTask(), resumeSet(), dir, resumeSnapshot, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

var resumedAt = regexp.MustCompile(`resuming from step (\d+) of 30`)

// A training killed (SIGKILL) or interrupted (SIGINT) at random steps, several times, and
// restarted each time, ends with the same weights, losses and snapshots as an uninterrupted
// run. After SIGINT it says "interrupted at step k of 30; saved" and exits 130, and the next
// run resumes from step k; after SIGKILL it resumes from the last periodic state (a multiple
// of 4). While a child trains, a second training into its directory fails with the lock's
// error naming the child.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	ref := reference(t)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(uint64(seed), 1))
	dir := filepath.Join(t.TempDir(), "tiny_flow")
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	expect := -1 // the step the next run must resume from (-1: after a kill, see below)
	// After a SIGKILL the next run resumes from the killed run's start or from a periodic save
	// (a multiple of 4) it made before the kill: in (prevFrom, prevReached + 1] (a save may land
	// between a step and its printed line).
	prevFrom, prevReached := 0, 0
	lockChecked := false
	for round := 0; ; round++ {
		cmd, out := child(t, dir, envChildSleep+"=40")
		kill := -1
		if round < 4 {
			kill = 1 + r.IntN(12) // steps after the resumed one
		}
		sig := []syscall.Signal{syscall.SIGKILL, syscall.SIGINT}[r.IntN(2)]
		if round < 2 {
			sig = []syscall.Signal{syscall.SIGKILL, syscall.SIGINT}[round]
		}
		var lines []string
		from, seen, reached := 0, 0, 0
		for out.Scan() {
			line := out.Text()
			lines = append(lines, line)
			if m := resumedAt.FindStringSubmatch(line); m != nil {
				from, _ = strconv.Atoi(m[1])
			}
			if !strings.HasPrefix(line, "step ") {
				continue
			}
			reached, _ = strconv.Atoi(strings.TrimPrefix(line, "step "))
			seen++
			if !lockChecked {
				lockChecked = true
				_, _, err := Train(b, resumeTask(), resumeSet(), dir, nil, nil)
				var le *trainstate.LockedError
				if !errors.As(err, &le) || le.PID != cmd.Process.Pid || !strings.Contains(err.Error(), "is training into the same checkpoint") {
					t.Errorf("a second training while process %d trains: %v", cmd.Process.Pid, err)
				}
			}
			if seen == kill {
				_ = cmd.Process.Signal(sig)
			}
		}
		err := cmd.Wait()
		code := cmd.ProcessState.ExitCode()
		t.Logf("round %d: resumed from %d, signal %v after %d steps: exit %d (%v), last line %q", round, from, sig, kill, code, err, lines[len(lines)-1])
		if expect >= 0 && from != expect {
			t.Fatalf("round %d resumed from step %d, want %d\n%s", round, from, expect, strings.Join(lines, "\n"))
		}
		if expect < 0 && from != prevFrom && !(from%4 == 0 && from > prevFrom && from <= prevReached+1) {
			t.Fatalf("round %d resumed from step %d after a kill of a run from %d that reached %d: not a saved step", round, from, prevFrom, prevReached)
		}
		prevFrom, prevReached = from, reached
		if code == 0 {
			if kill > 0 && from+kill < 30 {
				t.Fatalf("round %d finished although it was signalled", round)
			}
			break
		}
		last := lines[len(lines)-1]
		switch {
		case sig == syscall.SIGINT && code == 130:
			m := regexp.MustCompile(`interrupted at step (\d+) of 30; saved, re-run to resume`).FindStringSubmatch(last)
			if m == nil {
				t.Fatalf("round %d: SIGINT ended with %q", round, last)
			}
			expect, _ = strconv.Atoi(m[1])
		case sig == syscall.SIGKILL && code == -1:
			expect = -1
		default:
			t.Fatalf("round %d: signal %v, exit code %d, output\n%s", round, sig, code, strings.Join(lines, "\n"))
		}
		if round > 10 {
			t.Fatal("too many rounds")
		}
	}
	sameRun(t, ref, dir)
	if !lockChecked {
		t.Error("the lock was not checked")
	}
}

// A save that fails (the disk full from step 6 on: no file may exceed 64 bytes) stops the
// training with an error naming the failed save; the state of step 4 is intact (it loads,
// and no temporary directory is left), and a re-run resumes from it and ends as an
// uninterrupted run.
func TestFailedSaveKeepsPreviousState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	ref := reference(t)
	dir := filepath.Join(t.TempDir(), "tiny_flow")
	cmd, out := child(t, dir, envChildLimit+"=6")
	var lines []string
	for out.Scan() {
		lines = append(lines, out.Text())
	}
	_ = cmd.Wait()
	last := lines[len(lines)-1]
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(last, "saving the training state at step 8") || !strings.Contains(last, "file too large") || !strings.Contains(last, "the previous state, if any, is intact") {
		t.Fatalf("exit %d, output\n%s", cmd.ProcessState.ExitCode(), strings.Join(lines, "\n"))
	}
	state := filepath.Join(dir+".training", "state")
	var st trainstate.State
	if err := savedmodel.ReadMeta(state, &st); err != nil || st.Step != 4 {
		t.Fatalf("the previous state: step %d, %v", st.Step, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir+".training", ".state.tmp-*"))
	if len(left) > 0 {
		t.Errorf("left over: %v", left)
	}
	raw, _ := json.Marshal(st.Loss)
	t.Logf("state of step %d, losses %s", st.Step, raw)
	cmd, out = child(t, dir)
	lines = nil
	for out.Scan() {
		lines = append(lines, out.Text())
	}
	if err := cmd.Wait(); err != nil || !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "resuming from step 4 of 30") }) {
		t.Fatalf("re-run: %v\n%s", err, strings.Join(lines, "\n"))
	}
	sameRun(t, ref, dir)
}

// A checkpoint written by the code before resumable training (testdata/today: `mnist train
// -task mnist_denoiser -preset smoke` at 2e5fc53, snapshot figures left out) is still
// recognised as finished with the same configuration: Ensure does not retrain it. Training the
// same task now gives the same losses to float rounding: bit for bit on the CPU that wrote
// testdata, within 1e-4 relative elsewhere (the AMD EPYC of session 9 differs by 2e-6 after two
// steps; a changed configuration or batch moves the loss by far more).
func TestEnsureReusesCheckpointsOfBefore(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := PresetConfig("smoke")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "mnist_denoiser")
	if err := os.CopyFS(dir, os.DirFS("testdata/today/mnist_denoiser")); err != nil {
		t.Fatal(err)
	}
	train, _, err := LoadData()
	if err != nil {
		t.Fatal(err)
	}
	task := cfg.Denoiser
	task.CheckpointEvery = 1 // checkpointing options do not count
	// The checkpoint was trained with one worker (the smoke preset has two since session 12:
	// a changed configuration, which retrains).
	task.Train.Workers = 0
	_, old, trained, err := Ensure(b, task, train, dir, nil, nil)
	if err != nil || trained {
		t.Fatalf("Ensure retrained (%v) a finished checkpoint of before: %v", trained, err)
	}
	_, h, err := Train(b, task, train, filepath.Join(t.TempDir(), "again"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	exact := slices.Equal(h.Loss, old.Loss)
	for i, l := range old.Loss {
		if math.Abs(h.Loss[i]-l) > 1e-4*l {
			t.Errorf("step %d: loss %v now, %v before", i+1, h.Loss[i], l)
		}
	}
	t.Logf("losses bit-identical to the code of before: %v", exact)
}

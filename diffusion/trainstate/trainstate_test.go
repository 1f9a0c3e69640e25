package trainstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/savedmodel"
)

// A second lock of a held workspace (from this or another process) is a LockedError naming
// the holder; after Close it can be taken again, and Finish removes the workspace.
func TestWorkspaceLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	ws, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir)
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() || !strings.Contains(err.Error(), "is training into the same checkpoint") {
		t.Fatalf("second Open: %v", err)
	}
	if err := ws.Close(); err != nil {
		t.Fatal(err)
	}
	ws, err = Open(dir)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := os.WriteFile(ws.File("snapshot.png"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ws.Finish(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ws.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("workspace left after Finish: %v", err)
	}
	if ws, err = Open(dir); err != nil {
		t.Fatalf("Open after Finish: %v", err)
	}
	_ = ws.Close()
}

// smallStore is a store with one variable of value v.
func smallStore(v float32) *model.Store {
	s := model.NewStore()
	s.VariableWithValue("/net/w", tensors.FromValue([]float32{v, 2 * v}))
	return s
}

// Start resumes a state of the same kind and identity and starts fresh otherwise, saying why;
// Restore loads the variables; a damaged state starts fresh instead of failing.
func TestStartRestoreAndStartFresh(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	var notes []string
	opts := Options{Dir: dir, Logf: func(f string, a ...any) { notes = append(notes, strings.TrimSpace(sprintf(f, a...))) }}
	type id struct {
		LR    float64 `json:"lr"`
		Steps int     `json:"steps"`
	}
	run, st, err := opts.Start("test", id{1e-3, 10}, 10)
	if err != nil || st != nil {
		t.Fatalf("fresh: %v %v", st, err)
	}
	if err := run.Save(smallStore(3), &State{Step: 4, Loss: []float64{1, 2, 3, 4}, RNG: map[string][]byte{"main": {1, 2}}}); err != nil {
		t.Fatal(err)
	}
	run, st, err = opts.Start("test", id{1e-3, 10}, 10)
	if err != nil || st == nil || st.Step != 4 || len(st.Loss) != 4 || string(st.RNG["main"]) != "\x01\x02" {
		t.Fatalf("resume: %+v %v", st, err)
	}
	target := smallStore(0)
	if !run.Restore(target) {
		t.Fatalf("Restore failed: %q", notes)
	}
	if v, _ := target.GetVariable("/net/w").Value(); tensors.MustCopyFlatData[float32](v)[1] != 6 {
		t.Errorf("restored %v", v)
	}
	other := model.NewStore()
	other.VariableWithValue("/net/w", tensors.FromValue([]float32{0, 0, 0}))
	notes = nil
	if run.Restore(other) || len(notes) != 1 || !strings.Contains(notes[0], "starting fresh: the saved training state cannot be loaded") || !strings.Contains(notes[0], "shape") {
		t.Errorf("restore into another shape: notes %q", notes)
	}
	notes = nil
	if _, st, _ := opts.Start("test", id{2e-3, 10}, 10); st != nil || len(notes) != 1 || !strings.Contains(notes[0], "starting fresh: the configuration changed") || !strings.Contains(notes[0], "lr: 0.001 -> 0.002") {
		t.Errorf("changed lr: %v, notes %q", st, notes)
	}
	notes = nil
	if _, st, _ := opts.Start("other", id{1e-3, 10}, 10); st != nil || len(notes) != 1 || !strings.Contains(notes[0], `"test", not a "other"`) {
		t.Errorf("other kind: %v, notes %q", st, notes)
	}
	// Damage the state's weights: Restore notes that it starts fresh.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".bin") {
			if err := os.WriteFile(filepath.Join(dir, e.Name()), []byte("garbage"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	run, st, _ = opts.Start("test", id{1e-3, 10}, 10)
	if st == nil {
		t.Fatal("a state with intact metadata was not found")
	}
	notes = nil
	fresh := smallStore(5)
	if run.Restore(fresh) || len(notes) != 1 || !strings.Contains(notes[0], "(truncated)") {
		t.Errorf("restore of a damaged state: notes %q", notes)
	}
	if v, _ := fresh.GetVariable("/net/w").Value(); tensors.MustCopyFlatData[float32](v)[0] != 5 {
		t.Errorf("a failed restore changed the store: %v", v)
	}
	if err := os.WriteFile(filepath.Join(dir, savedmodel.MetaFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	notes = nil
	if _, st, _ := opts.Start("test", id{1e-3, 10}, 10); st != nil || len(notes) != 1 || !strings.Contains(notes[0], "cannot be read") {
		t.Errorf("damaged metadata: %v, notes %q", st, notes)
	}
}

// A process killed between the two renames of a save leaves the previous state aside in
// .state.tmp-*.old: Start puts it back; the temporary directories of unfinished saves are
// removed.
func TestStartRecoversAnInterruptedReplace(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "state")
	opts := Options{Dir: dir, Logf: func(string, ...any) {}}
	run, _, _ := opts.Start("test", 1, 10)
	if err := run.Save(smallStore(1), &State{Step: 2, Loss: []float64{1, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir, filepath.Join(root, ".state.tmp-123.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, ".state.tmp-456"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, st, _ := opts.Start("test", 1, 10); st == nil || st.Step != 2 {
		t.Fatalf("the previous state was not recovered: %+v", st)
	}
	if left, _ := filepath.Glob(filepath.Join(root, ".state.tmp-*")); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
}

// Due follows Every and Interval; Interrupted saves and says where, or that nothing was saved.
func TestDueAndInterrupted(t *testing.T) {
	r := &Run{opts: Options{Dir: "x", Every: 3, Interval: -1}, steps: 10, last: time.Now()}
	var due []int
	for s := 1; s <= 10; s++ {
		if r.Due(s) {
			due = append(due, s)
		}
	}
	if len(due) != 3 || due[0] != 3 || due[2] != 9 {
		t.Errorf("due at %v", due)
	}
	r = &Run{opts: Options{Dir: "x", Interval: time.Nanosecond}, steps: 10, last: time.Now().Add(-time.Second)}
	if !r.Due(1) {
		t.Error("not due after the interval")
	}
	if (&Run{opts: Options{Every: 1}, steps: 10}).Due(1) {
		t.Error("due without a directory")
	}
	ctx, cancel := context.WithCancel(context.Background())
	r = &Run{opts: Options{Dir: "d", Context: ctx}, steps: 10}
	saved := -1
	save := func(step int) error { saved = step; return nil }
	if err := r.Interrupted(3, save); err != nil {
		t.Fatal(err)
	}
	cancel()
	err := r.Interrupted(3, save)
	if !IsInterrupted(err) || saved != 3 || err.Error() != "interrupted at step 3 of 10; saved, re-run to resume (state in d)" {
		t.Errorf("%v (saved %d)", err, saved)
	}
	if err := r.Interrupted(0, save); err == nil || !strings.Contains(err.Error(), "nothing saved") {
		t.Errorf("interrupt before the first step: %v", err)
	}
	failing := func(int) error { return errors.New("disk full") }
	if err := r.Interrupted(5, failing); err == nil || !strings.Contains(err.Error(), "saving failed (disk full)") {
		t.Errorf("failed save: %v", err)
	}
}

// Diff names the changed, added and removed fields.
func TestDiff(t *testing.T) {
	a := json.RawMessage(`{"train":{"lr":0.001,"steps":10},"net":{"d":[1,2]}}`)
	b := json.RawMessage(`{"train":{"lr":0.002,"steps":10},"net":{"d":[1,3]},"seed":1}`)
	if got := Diff(a, b); got != "net.d.1: 2 -> 3, seed: (none) -> 1, train.lr: 0.001 -> 0.002" {
		t.Errorf("Diff = %q", got)
	}
	if got := Diff(a, a); got != "" {
		t.Errorf("Diff of equal = %q", got)
	}
}

// Fingerprint changes with any value, label or order.
func TestFingerprint(t *testing.T) {
	x := []float32{1, 2, 3, 4}
	base := Fingerprint(x, []int{0, 1})
	for _, f := range []Data{Fingerprint([]float32{1, 2, 3, 5}, []int{0, 1}), Fingerprint(x, []int{1, 0}), Fingerprint(x[:2], []int{0, 1}), Fingerprint(x, nil)} {
		if f == base {
			t.Errorf("%+v equals %+v", f, base)
		}
	}
	if Fingerprint(x, []int{0, 1}) != base {
		t.Error("not deterministic")
	}
}

func sprintf(f string, a ...any) string { return fmt.Sprintf(f, a...) }

// A save into a directory that became unwritable fails with an error that names the step and
// the cause, and the previous state stays intact. (Root ignores permissions: skipped then;
// mnistrun's TestFailedSaveKeepsPreviousState fails the write with a full "disk" instead.)
func TestSaveIntoAnUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write into a read-only directory")
	}
	parent := t.TempDir()
	dir := filepath.Join(parent, "state")
	run, _, _ := Options{Dir: dir, Logf: func(string, ...any) {}}.Start("test", 1, 10)
	if err := run.Save(smallStore(1), &State{Step: 1, Loss: []float64{1}}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o555); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.Chmod(parent, 0o755) }()
	err := run.Save(smallStore(2), &State{Step: 2, Loss: []float64{1, 1}})
	if err == nil || !strings.Contains(err.Error(), "at step 2") || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("save into a read-only directory: %v", err)
	}
	var st State
	if err := savedmodel.ReadMeta(dir, &st); err != nil || st.Step != 1 {
		t.Errorf("previous state: step %d, %v", st.Step, err)
	}
}

// Diverged is nil for a finite step and else names the step, the learning rate, what was not
// finite and the state kept (the last saved one).
func TestDiverged(t *testing.T) {
	dir := t.TempDir()
	run, _, err := Options{Dir: dir}.Start("test", 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Diverged(3, 0.1, 2.5, true); err != nil {
		t.Fatal(err)
	}
	err = run.Diverged(3, 0.1, math.Inf(1), true)
	if err == nil || err.Error() != "training diverged at step 3 of 10 (learning rate 0.1): the loss is +Inf; nothing was saved; lower the learning rate" {
		t.Fatalf("%v", err)
	}
	run.saved = 2 // as after Save at step 2
	err = run.Diverged(3, 0.1, 1, false)
	var de *DivergedError
	if !errors.As(err, &de) || !de.Gradient || de.Saved != 2 || !strings.Contains(err.Error(), "a gradient is not finite (loss 1); nothing was saved after step 2 (the training state of step 2 in "+dir+" is kept)") {
		t.Fatalf("%v", err)
	}
}

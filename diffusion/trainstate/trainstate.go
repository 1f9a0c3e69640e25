// Package trainstate is the one home of what makes a training loop survive an interruption:
// a resumable state saved every few steps and at an interrupt (all the variables of a
// model's store — weights, optimizer moments, EMA averages, batch-norm statistics — plus the
// step, the random generators' states and the loss history so far), a lock so that two
// processes never train into the same checkpoint, and the interrupt context (SIGINT from
// Ctrl-C or Jupyter's stop button, SIGTERM).
//
// A training that writes its finished model to a checkpoint directory dir keeps its
// unfinished work in the Workspace dir + ".training" (see Open): the lock file, the
// resumable state (a savedmodel directory, replaced atomically: the previous state stays
// valid until the new one is complete) and any file the trainer wants to keep until the end
// (snapshot figures). The trainer deletes the workspace once the finished model is saved.
//
// A loop uses it as (imagediff, mnisteval and ddpm do)
//
//	run, st, err := opts.Start(kind, identity, steps) // st != nil: a state to resume
//	first := 0
//	if st != nil {
//		compile the training step (its variables must exist), then
//		if run.Restore(store) { restore st.RNG, st.Extra, st.Loss; first = st.Step }
//	}
//	save := func(step int) error { return run.Save(store, &State{Step: step, ...}) }
//	for step := first; step < steps; step++ {
//		if err := run.Interrupted(step, save); err != nil { return err }
//		... one step ...
//		if run.Due(step + 1) { if err := save(step + 1); err != nil { return err } }
//	}
//
// and its caller (mnistrun, statesrun, mnisteval.LoadOrTrain) holds the workspace and the
// interrupt context around it:
//
//	ws, err := trainstate.Open(dir) // a *LockedError if another process trains into dir
//	defer ws.Close()
//	ctx, stop := trainstate.WithInterrupt(context.Background())
//	defer stop()
//	... train with Options{Dir: ws.StateDir(), Context: ctx} ...
//	... save the finished model into dir, then ws.Finish()
//
// Resuming is bit-identical to an uninterrupted run when the loop's random draws come from
// generators whose state is saved (State.RNG) and its steps are deterministic.
package trainstate

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/savedmodel"
)

// DefaultInterval is how much training time passes between two saves of the resumable state
// when Options.Interval is 0.
const DefaultInterval = time.Minute

// Options makes a training loop resumable. With Dir empty the loop runs as before: no state
// is saved and an interrupt (Context) still stops it, with nothing saved.
type Options struct {
	// Dir is the directory of the resumable state (Workspace.StateDir).
	Dir string
	// Every, if > 0, saves the state after every Every steps.
	Every int
	// Interval saves the state when Interval of training has passed since the last save
	// (0: DefaultInterval; < 0: never by time).
	Interval time.Duration
	// Context stops training at the next step once it is done (nil: never); see
	// WithInterrupt.
	Context context.Context
	// OnStart, if set, is called by Start with the step training starts at (0 when it starts
	// fresh), e.g. to drop the records a trainer kept of steps after it.
	OnStart func(step int)
	// Logf receives the notes "resuming from step k of n" and "starting fresh: why" (nil:
	// standard error).
	Logf func(format string, args ...any)
}

// State is the JSON part of a resumable state (its MetaFile); the variables are saved next to
// it.
type State struct {
	Kind string `json:"kind"` // which loop wrote it, e.g. "imagediff.Train"
	// Identity is the JSON of everything that defines the run (model and training
	// configuration, data fingerprint): a state is resumed only by a run with the same one.
	Identity json.RawMessage `json:"identity"`
	Step     int             `json:"step"`  // steps completed
	Steps    int             `json:"steps"` // steps of the whole run
	Loss     []float64       `json:"loss"`  // loss of every completed step
	LR       []float64       `json:"lr,omitempty"`
	Seconds  float64         `json:"seconds"` // training time so far, over every run
	// RNG holds the states of the loop's random generators (e.g. rand.PCG.MarshalBinary).
	RNG map[string][]byte `json:"rng,omitempty"`
	// Extra is the loop's own data (e.g. the position in the current epoch).
	Extra json.RawMessage `json:"extra,omitempty"`
}

// Run is the resumable side of one training loop, made by Options.Start.
type Run struct {
	opts     Options
	identity json.RawMessage
	kind     string
	steps    int
	last     time.Time
	first    int  // the step this run started at
	resumed  bool // from a saved state
	saved    int  // the step of the state on disk (-1: none)
}

// Start begins a run of steps steps of the loop kind whose configuration is identity (any
// JSON-encodable value). If the state directory holds a state of the same kind and identity
// it returns that state (the caller resumes from it: Restore, then continue after
// State.Step), else nil, after noting why a saved state is not used ("starting fresh: ...").
func (o Options) Start(kind string, identity any, steps int) (*Run, *State, error) {
	raw, err := json.Marshal(identity)
	if err != nil {
		return nil, nil, fmt.Errorf("trainstate: encoding the run's identity: %w", err)
	}
	r := &Run{opts: o, identity: raw, kind: kind, steps: steps, last: time.Now(), saved: -1}
	if o.Dir != "" {
		recoverOld(o.Dir)
	}
	if o.OnStart != nil {
		defer func() {
			if !r.resumed {
				o.OnStart(0)
			}
		}()
	}
	if o.Dir == "" || !savedmodel.Exists(o.Dir) {
		return r, nil, nil
	}
	var st State
	if err := savedmodel.ReadMeta(o.Dir, &st); err != nil {
		r.logf("starting fresh: the saved training state cannot be read (%v)", err)
		return r, nil, nil
	}
	if st.Kind != kind {
		r.logf("starting fresh: the saved training state in %s is of a %q, not a %q", o.Dir, st.Kind, kind)
		return r, nil, nil
	}
	if why := Diff(st.Identity, raw); why != "" {
		r.logf("starting fresh: the configuration changed since the saved training state in %s (%s)", o.Dir, why)
		return r, nil, nil
	}
	if st.Step < 0 || st.Step > steps || len(st.Loss) != st.Step {
		r.logf("starting fresh: the saved training state in %s is inconsistent (step %d of %d, %d losses)", o.Dir, st.Step, steps, len(st.Loss))
		return r, nil, nil
	}
	r.logf("resuming from step %d of %d (saved training state in %s)", st.Step, steps, o.Dir)
	r.first, r.resumed, r.saved = st.Step, true, st.Step
	if o.OnStart != nil {
		o.OnStart(st.Step)
	}
	return r, &st, nil
}

// recoverOld puts back the previous state of dir when a process died between the two renames
// of savedmodel.Save (dir missing, the previous state in a sibling .<name>.tmp-*.old), and
// removes the temporary directories of saves that did not complete.
func recoverOld(dir string) {
	dir = filepath.Clean(dir)
	pattern := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-*")
	left, _ := filepath.Glob(pattern)
	for _, p := range left {
		if strings.HasSuffix(p, ".old") && !savedmodel.Exists(dir) && savedmodel.Exists(p) {
			if os.Rename(p, dir) == nil {
				continue
			}
		}
		_ = os.RemoveAll(p)
	}
}

func (r *Run) logf(format string, args ...any) {
	if r.opts.Logf != nil {
		r.opts.Logf(format, args...)
		return
	}
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// Restore loads the variables of the saved state into store, which must already hold every
// variable of the training step (build and compile it first), and reports true. If the
// state's variables cannot be loaded (a damaged file, another set of variables) store is
// unchanged, Restore notes "starting fresh: ..." (calling Options.OnStart(0)) and reports
// false: the caller then trains from step 0 as if there had been no state.
func (r *Run) Restore(store *model.Store) bool {
	if err := savedmodel.LoadVariables(r.opts.Dir, store, "/"); err != nil {
		r.logf("starting fresh: the saved training state cannot be loaded (%v)", err)
		r.first, r.resumed, r.saved = 0, false, -1
		if r.opts.OnStart != nil {
			r.opts.OnStart(0)
		}
		return false
	}
	return true
}

// Due reports whether the state should be saved after step (1-based) completed steps: every
// Options.Every steps or when Options.Interval passed since the last save. A run without a
// state directory is never due.
func (r *Run) Due(step int) bool {
	if r.opts.Dir == "" || step >= r.steps {
		return false
	}
	if r.opts.Every > 0 && step%r.opts.Every == 0 {
		return true
	}
	iv := r.opts.Interval
	if iv == 0 {
		iv = DefaultInterval
	}
	return iv > 0 && time.Since(r.last) >= iv
}

// Save writes the variables of store and st (its Kind, Identity and Steps are filled in)
// into the state directory, atomically. A run without a state directory saves nothing.
func (r *Run) Save(store *model.Store, st *State) error {
	if r.opts.Dir == "" {
		return nil
	}
	st.Kind, st.Identity, st.Steps = r.kind, r.identity, r.steps
	if err := savedmodel.Save(r.opts.Dir, store, "/", st); err != nil {
		return fmt.Errorf("trainstate: saving the training state at step %d: %w (the previous state, if any, is intact)", st.Step, err)
	}
	r.last, r.saved = time.Now(), st.Step
	return nil
}

// Diverged returns nil when the loss of step (1-based) and its gradient are finite, and else
// a *DivergedError naming the step, its learning rate lr and the state kept on disk. The
// loop returns that error at once, without saving: the state saved before (if any) stays the
// last one, and nothing non-finite is written (savedmodel.Save refuses such weights anyway).
// gradFinite reports whether every gradient value of the step was finite.
func (r *Run) Diverged(step int, lr, loss float64, gradFinite bool) error {
	if gradFinite && !math.IsNaN(loss) && !math.IsInf(loss, 0) {
		return nil
	}
	e := &DivergedError{Kind: r.kind, Step: step, Steps: r.steps, LR: lr, Loss: loss, Gradient: !math.IsNaN(loss) && !math.IsInf(loss, 0), Saved: -1}
	if r.opts.Dir != "" && r.saved >= 0 {
		e.Saved, e.Dir = r.saved, r.opts.Dir
	}
	return e
}

// DivergedError is returned by a training loop whose loss or gradient became NaN or
// infinite.
type DivergedError struct {
	Kind        string  // the loop, e.g. "imagediff.Train"
	Step, Steps int     // the failed step (1-based), steps of the run
	LR          float64 // the failed step's learning rate
	Loss        float64 // its loss (finite when only the gradient was not)
	Gradient    bool    // the loss was finite but a gradient value was not
	// Saved is the step of the resumable state kept in Dir (-1 and Dir "": none).
	Saved int
	Dir   string
}

// Error names the step, the learning rate, what was not finite and the state that is kept.
func (e *DivergedError) Error() string {
	what := fmt.Sprintf("the loss is %v", e.Loss)
	if e.Gradient {
		what = fmt.Sprintf("a gradient is not finite (loss %v)", e.Loss)
	}
	kept := "nothing was saved"
	if e.Dir != "" {
		kept = fmt.Sprintf("nothing was saved after step %d (the training state of step %d in %s is kept)", e.Saved, e.Saved, e.Dir)
	}
	return fmt.Sprintf("training diverged at step %d of %d (learning rate %g): %s; %s; lower the learning rate", e.Step, e.Steps, e.LR, what, kept)
}

// AllFinite returns a boolean scalar node that is true when every value of the given float
// nodes (e.g. a step's gradients) is finite: a training step outputs it next to its loss and
// passes it to Run.Diverged.
func AllFinite(nodes []*graph.Node) *graph.Node {
	var all *graph.Node
	for _, n := range nodes {
		ok := graph.LogicalAll(graph.IsFinite(n))
		if all == nil {
			all = ok
		} else {
			all = graph.LogicalAnd(all, ok)
		}
	}
	return all
}

// Interrupted returns nil while the run's Context is not done. Once it is done (before
// step, 0-based: step steps are complete) it saves the state with save(step) when steps were
// made since the start (else the state on disk, if any, is already that of step), and
// returns the *InterruptedError, which records a failed save.
func (r *Run) Interrupted(step int, save func(step int) error) error {
	if r.opts.Context == nil || r.opts.Context.Err() == nil {
		return nil
	}
	ie := &InterruptedError{Step: step, Steps: r.steps, Dir: r.opts.Dir}
	switch {
	case r.opts.Dir == "":
	case step > r.first:
		ie.SaveErr = save(step)
	case !r.resumed:
		ie.Dir = "" // nothing saved
	}
	return ie
}

// InterruptedError is returned by a training stopped by an interrupt.
type InterruptedError struct {
	Step, Steps int    // completed steps, steps of the run
	Dir         string // where the state was saved ("" if nowhere)
	// SaveErr is the error of saving the state at the interrupt, if it failed.
	SaveErr error
}

// Error says at which step training stopped and whether and where its state was saved.
func (e *InterruptedError) Error() string {
	switch {
	case e.Dir == "":
		return fmt.Sprintf("interrupted at step %d of %d (not resumable: nothing saved)", e.Step, e.Steps)
	case e.SaveErr != nil:
		return fmt.Sprintf("interrupted at step %d of %d; saving failed (%v): re-running resumes from the previous saved state, if any", e.Step, e.Steps, e.SaveErr)
	}
	return fmt.Sprintf("interrupted at step %d of %d; saved, re-run to resume (state in %s)", e.Step, e.Steps, e.Dir)
}

// IsInterrupted reports whether err is (or wraps) an *InterruptedError.
func IsInterrupted(err error) bool {
	var ie *InterruptedError
	return errors.As(err, &ie)
}

// WithInterrupt returns a context that is cancelled at the first SIGINT (Ctrl-C; Jupyter's
// stop button reaches a GoNB cell as SIGINT) or SIGTERM, and its stop function, which the
// caller must call when training ends (it restores the default handling). After the first
// signal the default handling is restored at once, so a second Ctrl-C kills the process.
func WithInterrupt(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// Diff describes the differences between two JSON documents as "key: old -> new" items
// (at most 6), or returns "" when they are equal.
func Diff(old, new json.RawMessage) string {
	var a, b any
	if json.Unmarshal(old, &a) != nil || json.Unmarshal(new, &b) != nil {
		if string(old) == string(new) {
			return ""
		}
		return "unreadable configuration"
	}
	fa, fb := map[string]string{}, map[string]string{}
	flatten("", a, fa)
	flatten("", b, fb)
	var diffs []string
	for k, va := range fa {
		if vb, ok := fb[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: %s -> (none)", k, va))
		} else if va != vb {
			diffs = append(diffs, fmt.Sprintf("%s: %s -> %s", k, va, vb))
		}
	}
	for k, vb := range fb {
		if _, ok := fa[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: (none) -> %s", k, vb))
		}
	}
	sort.Strings(diffs)
	if n := len(diffs); n > 6 {
		diffs = append(diffs[:6], fmt.Sprintf("and %d more", n-6))
	}
	return strings.Join(diffs, ", ")
}

// flatten writes the leaves of a decoded JSON value into out, keyed by dotted paths.
func flatten(prefix string, v any, out map[string]string) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flatten(join(k), e, out)
		}
	case []any:
		for i, e := range x {
			flatten(join(fmt.Sprint(i)), e, out)
		}
	default:
		raw, _ := json.Marshal(x)
		if prefix == "" {
			prefix = "."
		}
		out[prefix] = string(raw)
	}
}

// Workspace is the directory dir + ".training" next to a checkpoint directory dir, where an
// unfinished training keeps its lock, its resumable state and the files it writes into the
// checkpoint at the end. It is held (locked) by one process at a time.
type Workspace struct {
	Dir  string // dir + ".training"
	lock *Lock
}

// Open creates (if needed) and locks the workspace of the checkpoint directory dir. If
// another process holds it, the error (a *LockedError) names the process.
func Open(dir string) (*Workspace, error) {
	ws := &Workspace{Dir: filepath.Clean(dir) + ".training"}
	l, err := Acquire(filepath.Join(ws.Dir, "lock"))
	if err != nil {
		return nil, err
	}
	ws.lock = l
	return ws, nil
}

// StateDir is the resumable state's directory (Options.Dir).
func (w *Workspace) StateDir() string { return filepath.Join(w.Dir, "state") }

// File returns the path of a file the trainer keeps in the workspace (e.g. a snapshot
// figure; not "lock" or "state").
func (w *Workspace) File(name string) string { return filepath.Join(w.Dir, name) }

// Close releases the lock and keeps the workspace (an unfinished training resumes from it).
func (w *Workspace) Close() error {
	if w.lock == nil {
		return nil
	}
	err := w.lock.Release(false)
	w.lock = nil
	return err
}

// Finish deletes the workspace (call it once the finished model is saved) and releases the
// lock.
func (w *Workspace) Finish() error {
	if w.lock == nil {
		return fmt.Errorf("trainstate: workspace %s is not held", w.Dir)
	}
	entries, err := os.ReadDir(w.Dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != "lock" {
			if err := os.RemoveAll(filepath.Join(w.Dir, e.Name())); err != nil {
				return fmt.Errorf("trainstate: removing the finished training's workspace: %w", err)
			}
		}
	}
	err = w.lock.Release(true)
	w.lock = nil
	_ = os.Remove(w.Dir) // fails harmlessly if another process just recreated its lock
	return err
}

// Data fingerprints a training set for a run's identity: a changed data set (other images,
// other labels, another order) does not resume a state saved on the old one.
type Data struct {
	Values int    `json:"values"`
	Labels int    `json:"labels"`
	CRC32  uint32 `json:"crc32"` // of the values' float32 bits and the labels (int64, little-endian)
}

// Fingerprint returns the Data of a training set of float32 values and int labels (either may
// be nil). It reads every value (about 0.1 s for MNIST's 47M).
func Fingerprint(values []float32, labels []int) Data {
	h := crc32.NewIEEE()
	if len(values) > 0 {
		_, _ = h.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(values))), 4*len(values)))
	}
	buf := make([]byte, 8*min(len(labels), 4096))
	for lo := 0; lo < len(labels); lo += 4096 {
		chunk := labels[lo:min(lo+4096, len(labels))]
		for i, y := range chunk {
			binary.LittleEndian.PutUint64(buf[8*i:], uint64(int64(y)))
		}
		_, _ = h.Write(buf[:8*len(chunk)])
	}
	return Data{Values: len(values), Labels: len(labels), CRC32: h.Sum32()}
}

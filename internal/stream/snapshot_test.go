package stream

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/pipeline"
)

// snapshotFixture is an oracle run with allowed lateness: session windows,
// windows retained after firing, updated finals, retractions, and every
// aggregate function.
type snapshotFixture struct {
	plan *pipeline.Plan
	run  *oracleRun
	// batches is what each advance of the run returned, normalized.
	batches [][]Result
}

func newSnapshotFixture(t testing.TB, events int) *snapshotFixture {
	t.Helper()
	rng := rand.New(rand.NewPCG(42, 7))
	plan := oraclePlan(t, 30*time.Second)
	dec := NewDecoder(plan)
	cfg := oracleConfig{events: events, keys: max(10, events/30), users: max(10, events/25), lateness: 30_000, step: 400, within: 0.05, beyond: 0.01}
	run := runOracle(t, NewEngine(plan, dec), dec, rng, cfg)
	f := &snapshotFixture{plan: plan, run: run}
	f.batches = f.replay(t, -1, nil)
	return f
}

// normalize orders the results of one advance, which come from maps in no
// particular order, without changing what they do to a sink: by output,
// retractions first, then by key and start.
func normalize(plan *pipeline.Plan, rs []Result) []Result {
	idx := map[string]int{}
	for i, o := range plan.Outputs {
		idx[o.Name] = i
	}
	rs = slices.Clone(rs)
	slices.SortStableFunc(rs, func(a, b Result) int {
		if c := cmp.Compare(idx[a.Output], idx[b.Output]); c != 0 {
			return c
		}
		if a.Retract != b.Retract {
			if a.Retract {
				return -1
			}
			return 1
		}
		return cmp.Or(slices.Compare(a.Key, b.Key), cmp.Compare(a.Start, b.Start))
	})
	return rs
}

// replay feeds the run's steps to a new engine. Before step cut (after the
// last one when cut == len(steps)) it replaces the engine with one
// restored from its snapshot, as a restarted processor would. hook, if
// not nil, sees the engine before each step and at the end. It returns
// the normalized batches of every advance, then the open windows of each
// output.
func (f *snapshotFixture) replay(t testing.TB, cut int, hook func(i int, e *Engine)) [][]Result {
	t.Helper()
	dec := NewDecoder(f.plan)
	e := NewEngine(f.plan, dec)
	var batches [][]Result
	var rec Record
	steps := f.run.steps
	for i := 0; i <= len(steps); i++ {
		if hook != nil {
			hook(i, e)
		}
		if i == cut {
			data := e.Snapshot()
			r := NewEngine(f.plan, NewDecoder(f.plan))
			// Restored right after the snapshot: at the time of the
			// last step before it.
			if err := r.Restore(data, time.UnixMilli(steps[max(i-1, 0)].now)); err != nil {
				t.Fatalf("Restore at step %d: %v", cut, err)
			}
			if r.OpenWindows() != e.OpenWindows() || r.Watermark() != e.Watermark() || pendingRetracts(r) != pendingRetracts(e) {
				t.Fatalf("restored at step %d: %d open windows, watermark %d, %d retractions; original %d, %d, %d", cut,
					r.OpenWindows(), r.Watermark(), pendingRetracts(r), e.OpenWindows(), e.Watermark(), pendingRetracts(e))
			}
			e = r
		}
		if i == len(steps) {
			break
		}
		if s := steps[i]; s.ev == nil {
			batches = append(batches, normalize(f.plan, e.Advance(s.now, nil)))
		} else {
			if err := dec.Decode(s.ev.json(), &rec); err != nil {
				t.Fatal(err)
			}
			e.Add(s.ev.part, &rec, s.now)
		}
	}
	batches = append(batches, normalize(f.plan, e.Advance(steps[len(steps)-1].now, nil)))
	for i := range f.plan.Outputs {
		batches = append(batches, normalize(f.plan, e.Partials(i, nil)))
	}
	return batches
}

// snapshotAt returns the snapshot of the engine before step i.
func (f *snapshotFixture) snapshotAt(t testing.TB, i int) []byte {
	var data []byte
	f.replay(t, -1, func(j int, e *Engine) {
		if j == i {
			data = e.Snapshot()
		}
	})
	return data
}

// interestingCuts returns the first steps before which the engine holds a
// fired session retained for the lateness, retractions not returned yet
// (between Add and Advance), and a window whose final is due but not
// emitted yet.
func (f *snapshotFixture) interestingCuts(t testing.TB) map[string]int {
	cuts := map[string]int{}
	names := []string{"retained session", "pending retraction", "pending final"}
	f.replay(t, -1, func(i int, e *Engine) {
		var has [3]bool
		has[1] = pendingRetracts(e) > 0
		for _, o := range e.outs {
			for _, ks := range o.keys {
				for _, w := range ks.wins {
					has[0] = has[0] || (w.fired && w.emitted && o.gap > 0)
					has[2] = has[2] || (w.fired && !w.emitted)
				}
			}
		}
		for j, ok := range has {
			if _, seen := cuts[names[j]]; ok && !seen {
				cuts[names[j]] = i
			}
		}
	})
	return cuts
}

func pendingRetracts(e *Engine) int {
	n := 0
	for _, o := range e.outs {
		n += len(o.retracts)
	}
	return n
}

// TestSnapshotRestore checks that an engine restored from a snapshot taken
// at any point returns the same results, advance by advance, and holds the
// same open windows at the end, as one that ran uninterrupted.
func TestSnapshotRestore(t *testing.T) {
	f := newSnapshotFixture(t, 4000)
	steps := f.run.steps
	firstAdvance := slices.IndexFunc(steps, func(s oStep) bool { return s.ev == nil })
	cuts := map[string]int{
		"start": 0, "after one event": 1, "before the first advance": firstAdvance, "after the first advance": firstAdvance + 1,
		"middle": len(steps) / 2, "before the sentinel": len(steps) - 2, "before the last advance": len(steps) - 1, "end": len(steps),
	}
	more := f.interestingCuts(t)
	if len(more) != 3 {
		t.Fatalf("the run lacks some cut points: %v", more)
	}
	for name, cut := range more {
		cuts[name] = cut
	}
	for name, cut := range cuts {
		t.Run(fmt.Sprintf("%s (step %d)", name, cut), func(t *testing.T) {
			got := f.replay(t, cut, nil)
			if len(got) != len(f.batches) {
				t.Fatalf("%d batches, want %d", len(got), len(f.batches))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], f.batches[i]) {
					t.Fatalf("batch %d of %d differs: %d results, uninterrupted %d", i, len(got), len(got[i]), len(f.batches[i]))
				}
			}
		})
	}
}

func TestSnapshotEmptyEngine(t *testing.T) {
	plan := oraclePlan(t, 0)
	data := NewEngine(plan, NewDecoder(plan)).Snapshot()
	r := NewEngine(plan, NewDecoder(plan))
	if err := r.Restore(data, time.UnixMilli(0)); err != nil {
		t.Fatal(err)
	}
	if r.Watermark() != NoWatermark || r.OpenWindows() != 0 {
		t.Fatalf("restored empty engine: watermark %d, %d open", r.Watermark(), r.OpenWindows())
	}
	if out := r.Advance(1e9, nil); len(out) != 0 {
		t.Fatalf("restored empty engine fired %v", out)
	}
}

// TestRestoreDropsUnknownOutputs restores a snapshot of three outputs into
// an engine whose pipeline only has one of them.
func TestRestoreDropsUnknownOutputs(t *testing.T) {
	f := newSnapshotFixture(t, 4000)
	var data []byte
	var hopWindows int
	f.replay(t, -1, func(i int, e *Engine) {
		if i == len(f.run.steps)/2 {
			data, hopWindows = e.Snapshot(), e.outs[1].open
		}
	})
	plan := oraclePlan(t, 30*time.Second)
	plan.Outputs = plan.Outputs[1:2]
	e := NewEngine(plan, NewDecoder(plan))
	if err := e.Restore(data, time.UnixMilli(0)); err != nil {
		t.Fatal(err)
	}
	if hopWindows == 0 || e.OpenWindows() != hopWindows {
		t.Fatalf("%d open windows after restore, want the %d of hop", e.OpenWindows(), hopWindows)
	}
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	f := newSnapshotFixture(t, 4000)
	good := f.snapshotAt(t, len(f.run.steps)/2)
	fewer := oraclePlan(t, 30*time.Second)
	fewer.Outputs[0].Aggregates = fewer.Outputs[0].Aggregates[:3]
	tests := []struct {
		name string
		plan *pipeline.Plan
		data []byte
		err  string
	}{
		{"empty", nil, nil, "snapshot is truncated"},
		{"garbage", nil, []byte("not a snapshot"), "version 110 is not supported"},
		{"newer version", nil, []byte{snapshotVersion + 1}, fmt.Sprintf("version %d is not supported", snapshotVersion+1)},
		{"truncated", nil, good[:len(good)/2], "decode engine snapshot"},
		{"trailing bytes", nil, append(slices.Clone(good), 1, 0), "decode engine snapshot"},
		{"other aggregates", fewer, good, "the checkpoint has 16 aggregates, the pipeline file 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := cmp.Or(tt.plan, f.plan)
			err := NewEngine(plan, NewDecoder(plan)).Restore(tt.data, time.UnixMilli(0))
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Restore = %v, want an error containing %q", err, tt.err)
			}
		})
	}
}

// TestRestoreTruncated restores prefixes of snapshots: each fails cleanly,
// except the one that ends where the pending retractions start (a
// snapshot without any).
func TestRestoreTruncated(t *testing.T) {
	f := newSnapshotFixture(t, 4000)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, data := range snapshotSeeds(t, f) {
		valid := retractionsStart(t, f, data)
		var sizes []int
		for n := range min(len(data), 48) {
			sizes = append(sizes, n, len(data)-1-n)
		}
		for range 50 {
			sizes = append(sizes, rng.IntN(len(data)))
		}
		for _, n := range sizes {
			err := NewEngine(f.plan, NewDecoder(f.plan)).Restore(data[:n], time.UnixMilli(0))
			if (err == nil) != (n == valid) {
				t.Fatalf("Restore of %d of %d bytes: %v (a snapshot without retractions is %d bytes)", n, len(data), err, valid)
			}
		}
	}
}

// retractionsStart returns where the pending retractions of data start,
// or -1 if it has none.
func retractionsStart(t *testing.T, f *snapshotFixture, data []byte) int {
	e := NewEngine(f.plan, NewDecoder(f.plan))
	if err := e.Restore(data, time.UnixMilli(0)); err != nil {
		t.Fatal(err)
	}
	if pendingRetracts(e) == 0 {
		return -1
	}
	for _, o := range e.outs {
		o.retracts = nil
	}
	return len(e.Snapshot())
}

// snapshotSeeds returns snapshots with retained windows, pending finals and
// pending retractions.
func snapshotSeeds(t testing.TB, f *snapshotFixture) [][]byte {
	var seeds [][]byte
	cuts := f.interestingCuts(t)
	if len(cuts) != 3 {
		t.Fatalf("the run lacks some cut points: %v", cuts)
	}
	for _, cut := range cuts {
		seeds = append(seeds, f.snapshotAt(t, cut))
	}
	return seeds
}

// FuzzRestore checks that Restore never panics: it returns an error or
// leaves an engine that works and snapshots again.
func FuzzRestore(f *testing.F) {
	// Small snapshots, which the fuzzer mutates faster, of a short run.
	fix := newSnapshotFixture(f, 300)
	for _, i := range fix.interestingCuts(f) {
		f.Add(fix.snapshotAt(f, i))
	}
	f.Add(fix.snapshotAt(f, len(fix.run.steps)-1))
	f.Add([]byte{snapshotVersion})
	f.Add([]byte{snapshotVersion, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := NewDecoder(fix.plan)
		e := NewEngine(fix.plan, dec)
		if err := e.Restore(data, time.UnixMilli(0)); err != nil {
			return
		}
		var rec Record
		if err := dec.Decode(fix.run.steps[0].ev.json(), &rec); err != nil {
			t.Fatal(err)
		}
		e.Add(0, &rec, 1)
		e.Advance(2, nil)
		for i := range fix.plan.Outputs {
			e.Partials(i, nil)
		}
		again := NewEngine(fix.plan, NewDecoder(fix.plan))
		if err := again.Restore(e.Snapshot(), time.UnixMilli(3)); err != nil {
			t.Fatalf("restoring the snapshot of a restored engine: %v", err)
		}
	})
}

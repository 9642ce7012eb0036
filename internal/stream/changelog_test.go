package stream

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
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
	f.batches = f.replay(t, -1, 1, nil)
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
		if a.Deleted() != b.Deleted() {
			if a.Deleted() {
				return -1
			}
			return 1
		}
		return cmp.Or(slices.Compare(a.Key, b.Key), cmp.Compare(a.Start, b.Start))
	})
	return rs
}

// replay feeds the run's steps to a new engine that writes its changes to
// a changelog table (a compacted topic: the latest value per key) after
// every flushEvery-th advance, as a window task does when it commits.
// Before step cut it crashes: the results since the last flush are lost
// with their aborted transaction, and an engine restored from the table
// processes the steps again from the one after that flush. hook, if not
// nil, sees the engine before each step. It returns the normalized batches
// of every committed advance, then the open windows of each output.
func (f *snapshotFixture) replay(t testing.TB, cut, flushEvery int, hook func(i int, e *Engine)) [][]Result {
	t.Helper()
	return f.replayInto(t, cut, flushEvery, &tableLog{table: changelogTable{}}, hook)
}

// replaySnapshots is replay where every snapEvery-th flush (if not 0)
// writes a snapshot of the whole state instead of the changes. With
// truncate, the records before a snapshot are deleted once it is written,
// as the window stage does after the commit; without, the table keeps
// them (a changelog whose records could not be deleted).
func (f *snapshotFixture) replaySnapshots(t testing.TB, cut, flushEvery, snapEvery int, truncate bool, hook func(i int, e *Engine)) [][]Result {
	t.Helper()
	return f.replayInto(t, cut, flushEvery, &tableLog{table: changelogTable{}, snapEvery: snapEvery, truncate: truncate}, hook)
}

// replayLog is where a replay's engine writes its changelog, and what it
// restores from.
type replayLog interface {
	flush(t testing.TB, e *Engine)
	restore(t testing.TB, plan *pipeline.Plan, now int64) *Engine
}

// replayInto is replay writing to and restoring from log.
func (f *snapshotFixture) replayInto(t testing.TB, cut, flushEvery int, log replayLog, hook func(i int, e *Engine)) [][]Result {
	t.Helper()
	dec := NewDecoder(f.plan)
	e := NewEngine(f.plan, dec)
	e.EnableChangelog()
	var batches [][]Result
	var rec Record
	steps := f.run.steps
	committed, resume, advances := 0, 0, 0
	crashed := false
	for i := 0; i < len(steps); i++ {
		if hook != nil {
			hook(i, e)
		}
		if i == cut && !crashed {
			crashed = true
			batches = batches[:committed]
			e = log.restore(t, f.plan, steps[max(resume-1, 0)].now)
			i = resume - 1
			continue
		}
		if s := steps[i]; s.ev == nil {
			batches = append(batches, normalize(f.plan, e.Advance(s.now, nil, 0)))
			if advances++; advances%flushEvery == 0 {
				log.flush(t, e)
				committed, resume = len(batches), i+1
			}
		} else {
			if err := dec.Decode(s.ev.json(), &rec); err != nil {
				t.Fatal(err)
			}
			e.Add(s.ev.part, &rec, s.now)
		}
	}
	batches = append(batches, normalize(f.plan, e.Advance(steps[len(steps)-1].now, nil, 0)))
	for i := range f.plan.Outputs {
		batches = append(batches, normalize(f.plan, e.Partials(i, nil)))
	}
	return batches
}

// tableLog is a compacted changelog, written with a snapshot every
// snapEvery-th flush (0: never); with truncate, a snapshot deletes what
// was before it.
type tableLog struct {
	table              changelogTable
	snapEvery, flushes int
	truncate           bool
}

func (l *tableLog) flush(_ testing.TB, e *Engine) {
	l.flushes++
	switch {
	case l.snapEvery > 0 && l.flushes%l.snapEvery == 0 && l.truncate:
		l.table = changelogTable{}
		l.table.apply(appendSnapshot(e, nil))
	case l.snapEvery > 0 && l.flushes%l.snapEvery == 0:
		l.table.apply(appendSnapshot(e, nil))
	default:
		l.table.apply(appendChanges(e, nil))
	}
}

func (l *tableLog) restore(t testing.TB, plan *pipeline.Plan, now int64) *Engine {
	return l.table.restore(t, plan, now)
}

// sameAsUninterrupted fails unless a replay's batches equal those of the
// uninterrupted run.
func (f *snapshotFixture) sameAsUninterrupted(t *testing.T, got [][]Result) {
	t.Helper()
	if len(got) != len(f.batches) {
		t.Fatalf("%d batches, want %d", len(got), len(f.batches))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], f.batches[i]) {
			t.Fatalf("batch %d of %d differs: %d results, uninterrupted %d", i, len(got), len(got[i]), len(f.batches[i]))
		}
	}
}

// changelogTable is a compacted changelog: the latest value of each key.
type changelogTable map[string][]byte

func (c changelogTable) apply(changes []Change) {
	for _, ch := range changes {
		if ch.Value == nil {
			delete(c, string(ch.Key))
		} else {
			c[string(ch.Key)] = ch.Value
		}
	}
}

// restore returns an engine of plan restored from the table at now.
func (c changelogTable) restore(t testing.TB, plan *pipeline.Plan, now int64) *Engine {
	t.Helper()
	e := NewEngine(plan, NewDecoder(plan))
	e.EnableChangelog()
	for _, k := range slices.Sorted(maps.Keys(c)) {
		if err := e.RestoreChange([]byte(k), c[k], now); err != nil {
			t.Fatalf("RestoreChange(%q): %v", k, err)
		}
	}
	return e
}

// tableAt returns the changelog table of an engine flushed at every
// advance before step i.
func (f *snapshotFixture) tableAt(t testing.TB, i int) changelogTable {
	t.Helper()
	dec := NewDecoder(f.plan)
	e := NewEngine(f.plan, dec)
	e.EnableChangelog()
	table := changelogTable{}
	var rec Record
	for _, s := range f.run.steps[:i] {
		if s.ev == nil {
			e.Advance(s.now, nil, 0)
			table.apply(appendChanges(e, nil))
			continue
		}
		if err := dec.Decode(s.ev.json(), &rec); err != nil {
			t.Fatal(err)
		}
		e.Add(s.ev.part, &rec, s.now)
	}
	return table
}

// interestingCuts returns the first steps before which the engine holds a
// fired session retained for the lateness, a dirty final (a late event
// updated it within the lateness), and a window whose final is due but not
// emitted yet.
func (f *snapshotFixture) interestingCuts(t testing.TB) map[string]int {
	cuts := map[string]int{}
	names := []string{"retained session", "updated final", "pending final"}
	f.replay(t, -1, 1, func(i int, e *Engine) {
		var has [3]bool
		for _, o := range e.outs {
			o.keys.Each(func(ks *keyState) {
				for _, w := range ks.wins {
					has[0] = has[0] || (w.fired && w.emitted && o.gap > 0)
					has[1] = has[1] || w.dirty
					has[2] = has[2] || (w.fired && !w.emitted)
				}
			})
		}
		for j, ok := range has {
			if _, seen := cuts[names[j]]; ok && !seen {
				cuts[names[j]] = i
			}
		}
	})
	return cuts
}

// TestChangelogRestore crashes an engine before many steps and restores
// it from its changelog: the committed results, advance by advance, and
// the open windows at the end equal those of an engine that ran
// uninterrupted, whether the changelog was flushed at every advance or at
// every third.
func TestChangelogRestore(t *testing.T) {
	f := newSnapshotFixture(t, 4000)
	steps := f.run.steps
	firstAdvance := slices.IndexFunc(steps, func(s oStep) bool { return s.ev == nil })
	cuts := map[string]int{
		"start": 0, "after one event": 1, "before the first advance": firstAdvance, "after the first advance": firstAdvance + 1,
		"middle": len(steps) / 2, "before the sentinel": len(steps) - 2, "before the last advance": len(steps) - 1,
	}
	more := f.interestingCuts(t)
	if len(more) != 3 {
		t.Fatalf("the run lacks some cut points: %v", more)
	}
	for name, cut := range more {
		cuts[name] = cut
	}
	for _, every := range []int{1, 3} {
		for name, cut := range cuts {
			t.Run(fmt.Sprintf("%s (step %d, flush every %d)", name, cut, every), func(t *testing.T) {
				f.sameAsUninterrupted(t, f.replay(t, cut, every, nil))
			})
		}
	}
}

// TestSnapshotRestore crashes an engine that writes snapshots of its
// state every few flushes: restored from a changelog truncated before
// each snapshot, or from one that kept everything, the committed results
// and the open windows equal an uninterrupted run's.
func TestSnapshotRestore(t *testing.T) {
	f := newSnapshotFixture(t, 4000)
	steps := f.run.steps
	cuts := f.interestingCuts(t)
	cuts["middle"] = len(steps) / 2
	cuts["before the last advance"] = len(steps) - 1
	for _, truncate := range []bool{true, false} {
		for _, snapEvery := range []int{1, 4} {
			for name, cut := range cuts {
				t.Run(fmt.Sprintf("%s (step %d), snapshot every %d, truncate %v", name, cut, snapEvery, truncate), func(t *testing.T) {
					f.sameAsUninterrupted(t, f.replaySnapshots(t, cut, 1, snapEvery, truncate, nil))
				})
			}
		}
	}
}

// TestSnapshotHoldsState checks that a snapshot alone restores the state:
// its marker, one record per group and the meta record, the keys of the compacted
// changes it replaces, and an engine restored from it holds the same open
// windows. (Sketch states may encode their bins in another order after a
// restore, so records are compared by what they restore, not byte by
// byte.)
func TestSnapshotHoldsState(t *testing.T) {
	f := newSnapshotFixture(t, 4000)
	mid := len(f.run.steps) / 2
	changes := f.tableAt(t, mid)
	e := changes.restore(t, f.plan, 0)
	snap := changelogTable{}
	snap.apply(appendSnapshot(e, nil))
	if len(snap) != e.Groups()+2 {
		t.Fatalf("snapshot has %d records for %d groups (want the marker, the groups and the meta record)", len(snap), e.Groups())
	}
	delete(snap, string([]byte{snapshotKey}))
	if !slices.Equal(slices.Sorted(maps.Keys(snap)), slices.Sorted(maps.Keys(changes))) {
		t.Fatal("the snapshot's keys differ from the compacted changes'")
	}
	again := snap.restore(t, f.plan, 0)
	for i := range f.plan.Outputs {
		want, got := normalize(f.plan, e.Partials(i, nil)), normalize(f.plan, again.Partials(i, nil))
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("output %d: restored from the snapshot %d windows, from the changes %d", i, len(got), len(want))
		}
	}
}

// TestRestoreJumpsToSnapshot reads a changelog in offset order as a
// window task restores it, with a snapshot in the middle, and simulates
// the records before the snapshot being deleted while the restore reads
// them: after any prefix, the read jumps to the snapshot. The restored
// windows equal those of a restore that read everything.
func TestRestoreJumpsToSnapshot(t *testing.T) {
	f := newSnapshotFixture(t, 4000)
	plan := f.plan
	dec := NewDecoder(plan)
	e := NewEngine(plan, dec)
	e.EnableChangelog()
	var log []Change
	var rec Record
	steps := f.run.steps
	snapAt, advances := -1, 0
	for i, s := range steps {
		if s.ev != nil {
			if err := dec.Decode(s.ev.json(), &rec); err != nil {
				t.Fatal(err)
			}
			e.Add(s.ev.part, &rec, s.now)
			continue
		}
		e.Advance(s.now, nil, 0)
		if advances++; i > len(steps)/2 && snapAt < 0 {
			snapAt = len(log)
			log = appendSnapshot(e, log)
		} else {
			log = appendChanges(e, log)
		}
	}
	if snapAt < 0 || !isSnapshotStart(log[snapAt].Key) {
		t.Fatalf("no snapshot in the log (%d advances)", advances)
	}
	// A window task's engine holds one output: restore each output's
	// task and compare it with the whole run's engine.
	w := NewWindower(StageConfig{Plan: plan})
	restore := func(out, prefix int) *Engine {
		tk := w.newTask(out, 0)
		for j := range log {
			if j >= prefix && j < snapAt {
				continue // deleted while the restore read
			}
			if err := w.restoreRecord(tk, log[j].Key, log[j].Value, 0); err != nil {
				t.Fatalf("record %d: %v", j, err)
			}
		}
		if tk.sinceSnap != len(log)-snapAt {
			t.Fatalf("prefix %d: %d records since the snapshot, want %d", prefix, tk.sinceSnap, len(log)-snapAt)
		}
		return tk.op.(taskEngine).Engine
	}
	for i := range plan.Outputs {
		want := normalize(plan, e.Partials(i, nil))
		for _, prefix := range []int{0, 1, snapAt / 3, snapAt / 2, snapAt - 1, snapAt} {
			got := normalize(plan, restore(i, prefix).Partials(0, nil))
			if len(want) == 0 || !reflect.DeepEqual(got, want) {
				t.Fatalf("output %d, prefix %d: %d open windows, want %d", i, prefix, len(got), len(want))
			}
		}
	}
}

// TestChangelogBounded checks that the changelog does not grow with the
// stream: after the run, the table holds one record per group with state
// plus the meta record.
func TestChangelogBounded(t *testing.T) {
	f := newSnapshotFixture(t, 4000)
	table := f.tableAt(t, len(f.run.steps))
	e := table.restore(t, f.plan, 0)
	groups := 0
	for _, o := range e.outs {
		groups += o.keys.Len()
	}
	if len(table) != groups+1 {
		t.Fatalf("changelog table holds %d records for %d groups", len(table), groups)
	}
}

func TestChangelogEmptyEngine(t *testing.T) {
	plan := oraclePlan(t, 0)
	e := NewEngine(plan, NewDecoder(plan))
	e.EnableChangelog()
	table := changelogTable{}
	table.apply(appendChanges(e, nil))
	if len(table) != 1 {
		t.Fatalf("empty engine wrote %d records, want the meta record", len(table))
	}
	r := table.restore(t, plan, 0)
	if r.Watermark() != NoWatermark || r.OpenWindows() != 0 {
		t.Fatalf("restored empty engine: watermark %d, %d open", r.Watermark(), r.OpenWindows())
	}
	if out := r.Advance(1e9, nil, 0); len(out) != 0 {
		t.Fatalf("restored empty engine fired %v", out)
	}
}

// TestRestoreDropsUnknownOutputs restores the changelog of three outputs
// into an engine whose pipeline only has one of them.
func TestRestoreDropsUnknownOutputs(t *testing.T) {
	f := newSnapshotFixture(t, 4000)
	table := f.tableAt(t, len(f.run.steps)/2)
	hopWindows := table.restore(t, f.plan, 0).outs[1].open
	plan := oraclePlan(t, 30*time.Second)
	plan.Outputs = plan.Outputs[1:2]
	e := table.restore(t, plan, 0)
	if hopWindows == 0 || e.OpenWindows() != hopWindows {
		t.Fatalf("%d open windows after restore, want the %d of hop", e.OpenWindows(), hopWindows)
	}
}

// groupRecord returns a changelog record of a group with windows.
func groupRecord(t testing.TB, table changelogTable) (key, value []byte) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(table)) {
		if k[0] == groupKey && len(table[k]) > 40 {
			return []byte(k), table[k]
		}
	}
	t.Fatal("no group record with windows")
	return nil, nil
}

func TestRestoreRejectsBadRecords(t *testing.T) {
	f := newSnapshotFixture(t, 4000)
	table := f.tableAt(t, len(f.run.steps)/2)
	key, good := groupRecord(t, table)
	meta := table[string([]byte{metaKey})]
	fewer := oraclePlan(t, 30*time.Second)
	for i := range fewer.Outputs {
		fewer.Outputs[i].Aggregates = fewer.Outputs[i].Aggregates[:3]
	}
	tests := []struct {
		name       string
		plan       *pipeline.Plan
		key, value []byte
		err        string
	}{
		{"no key", nil, nil, good, "without a key"},
		{"unknown key type", nil, []byte{7, 1}, good, "unknown type 7"},
		{"truncated key", nil, []byte{groupKey, 9, 'a'}, good, "decode changelog key"},
		{"garbage", nil, key, []byte("not a record"), "version 110 is not supported"},
		{"newer version", nil, key, []byte{changelogVersion + 1}, fmt.Sprintf("version %d is not supported", changelogVersion+1)},
		{"truncated", nil, key, good[:len(good)/2], "decode group state"},
		{"trailing bytes", nil, key, append(slices.Clone(good), 1, 0), "trailing bytes"},
		{"meta truncated", nil, []byte{metaKey}, meta[:len(meta)-1], "decode changelog meta record"},
		{"meta trailing", nil, []byte{metaKey}, append(slices.Clone(meta), 0), "trailing bytes"},
		{"other aggregates", fewer, key, good, "the pipeline file 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := cmp.Or(tt.plan, f.plan)
			e := NewEngine(plan, NewDecoder(plan))
			err := e.RestoreChange(tt.key, tt.value, 0)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("RestoreChange = %v, want an error containing %q", err, tt.err)
			}
			if e.OpenWindows() != 0 {
				t.Fatalf("a failed restore left %d open windows", e.OpenWindows())
			}
		})
	}
}

// TestRestoreTruncated restores prefixes of group records: each fails
// cleanly.
func TestRestoreTruncated(t *testing.T) {
	f := newSnapshotFixture(t, 4000)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, cut := range f.interestingCuts(t) {
		key, data := groupRecord(t, f.tableAt(t, cut))
		var sizes []int
		for n := range min(len(data), 48) {
			sizes = append(sizes, n, len(data)-1-n)
		}
		for range 50 {
			sizes = append(sizes, rng.IntN(len(data)))
		}
		for _, n := range sizes {
			if err := NewEngine(f.plan, NewDecoder(f.plan)).RestoreChange(key, data[:n], 0); err == nil {
				t.Fatalf("RestoreChange of %d of %d bytes succeeded", n, len(data))
			}
		}
	}
}

// FuzzRestore checks that RestoreChange never panics: it returns an error
// or leaves an engine that works and writes its changelog again.
func FuzzRestore(f *testing.F) {
	// Small records, which the fuzzer mutates faster, of a short run.
	fix := newSnapshotFixture(f, 300)
	for _, i := range fix.interestingCuts(f) {
		table := fix.tableAt(f, i)
		keys := slices.Sorted(maps.Keys(table))
		for _, k := range keys[:min(3, len(keys))] {
			f.Add([]byte(k), table[k])
		}
	}
	f.Add([]byte{metaKey}, []byte{changelogVersion, 0, 0})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		dec := NewDecoder(fix.plan)
		e := NewEngine(fix.plan, dec)
		e.EnableChangelog()
		if err := e.RestoreChange(key, value, 0); err != nil {
			return
		}
		var rec Record
		if err := dec.Decode(fix.run.steps[0].ev.json(), &rec); err != nil {
			t.Fatal(err)
		}
		e.Add(0, &rec, 1)
		e.Advance(2, nil, 0)
		for i := range fix.plan.Outputs {
			e.Partials(i, nil)
		}
		table := changelogTable{}
		table.apply(appendChanges(e, nil))
		table.restore(t, fix.plan, 3)
	})
}

// TestTimersBounded checks that the timers Advance uses to find due groups
// stay proportional to the state, not to the events: each group has one
// live timer, and superseded ones expire with the windows they were set for.
func TestTimersBounded(t *testing.T) {
	f := newSnapshotFixture(t, 4000)
	maxRatio := 0.0
	f.replay(t, -1, 1, func(i int, e *Engine) {
		for _, o := range e.outs {
			state := o.open + o.keys.Len()
			if state == 0 {
				continue
			}
			if r := float64(o.keys.Timers()) / float64(state); r > maxRatio {
				maxRatio = r
			}
			live := 0
			o.keys.Each(func(ks *keyState) {
				if ks.sched != noTimer {
					live++
				}
			})
			if live != o.keys.Len() {
				t.Fatalf("step %d, output %s: %d of %d groups have a timer", i, o.def.Name, live, o.keys.Len())
			}
		}
	})
	if maxRatio > 2 {
		t.Fatalf("up to %.1f timers per window or group", maxRatio)
	}
	t.Logf("at most %.2f timers per open window or group", maxRatio)
}

// TestArena: slices kept from an arena hold what was appended to them
// after many more were taken, also ones larger than a block, and appending
// to a kept slice cannot write into the next one.
func TestArena(t *testing.T) {
	var a arena
	var kept [][]byte
	var want [][]byte
	for i := range 2000 {
		n := i % 300
		if i%500 == 7 {
			n = arenaBlock + 10 // outgrows any block
		}
		v := bytes.Repeat([]byte{byte(i)}, n)
		kept = append(kept, a.keep(append(a.free(), v...)))
		want = append(want, v)
	}
	for i, k := range kept {
		_ = append(k, 0xff) // must not land in kept[i+1]
		if !bytes.Equal(k, want[i]) {
			t.Fatalf("slice %d: %d bytes differ from what was appended", i, len(k))
		}
	}
	for i, k := range kept {
		if !bytes.Equal(k, want[i]) {
			t.Fatalf("slice %d changed after appending to another", i)
		}
	}
}

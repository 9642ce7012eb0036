package stream

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/internal/pipeline"
)

// cleanLog is a changelog partition as the window stage keeps it for the
// engine: the records in offset order, never compacted, with those
// before the generation a restore needs (Engine.LogStart) deleted after
// every flush.
type cleanLog struct {
	recs []Change
	base int // the offset of recs[0]
	// gens holds the offset of each generation written since the
	// engine started or was restored.
	gens        map[uint64]int
	truncations int
	// most is the most records the log held beyond its bound.
	most int
	// last is what the last flush wrote.
	last []Change
}

func (l *cleanLog) flush(t testing.TB, e *Engine) {
	t.Helper()
	if l.gens == nil {
		l.gens = map[uint64]int{}
	}
	l.gens[e.LogGen()] = l.base + len(l.recs)
	changes := appendChanges(e, nil)
	l.recs, l.last = append(l.recs, changes...), changes
	start := e.LogStart()
	if at, ok := l.gens[start]; ok && at > l.base {
		l.recs = slices.Clone(l.recs[at-l.base:])
		l.base = at
		l.truncations++
	}
	for g := range l.gens {
		if g < start {
			delete(l.gens, g)
		}
	}
	// A flush rewrites every stale group here (the sweep reaches them
	// all): what stays beyond the bound is at most that flush's records.
	bound := max(snapshotRatio*e.Groups(), snapshotMin)
	if over := len(l.recs) - bound; over > len(changes) {
		t.Errorf("the changelog holds %d records for %d groups, over the bound %d by more than the last flush's %d", len(l.recs), e.Groups(), bound, len(changes))
	}
	l.most = max(l.most, len(l.recs)-bound)
}

func (l *cleanLog) restore(t testing.TB, plan *pipeline.Plan, now int64) *Engine {
	t.Helper()
	e := NewEngine(plan, NewDecoder(plan))
	e.EnableChangelog()
	for _, c := range l.recs {
		if err := e.RestoreChange(c.Key, c.Value, now); err != nil {
			t.Fatalf("RestoreChange(%q): %v", c.Key, err)
		}
	}
	clear(l.gens) // the restored engine counts its generations anew
	return e
}

// TestCleanedChangelogRestore crashes an engine whose changelog is
// cleaned as the window stage cleans it (records before the oldest
// generation a restore needs are deleted after every flush, nothing is
// compacted): the changelog stays within its bound, and the engine
// restored from it at any of the interesting points gives the committed
// results and open windows of an uninterrupted run.
func TestCleanedChangelogRestore(t *testing.T) {
	f := newSnapshotFixture(t, 4000)
	steps := f.run.steps
	cuts := f.interestingCuts(t)
	cuts["middle"] = len(steps) / 2
	cuts["late"] = len(steps) * 9 / 10
	cuts["before the last advance"] = len(steps) - 1
	for _, every := range []int{1, 3} {
		for name, cut := range cuts {
			t.Run(fmt.Sprintf("%s (step %d, flush every %d)", name, cut, every), func(t *testing.T) {
				log := &cleanLog{}
				f.sameAsUninterrupted(t, f.replayInto(t, cut, every, log, nil))
				if log.truncations == 0 {
					t.Fatal("the changelog was never truncated: the test does not clean")
				}
			})
		}
	}
}

// TestCleaningRewritesOnlyStale checks what cleaning writes: groups that
// change at every flush are never rewritten by it, and a group no event
// changes is rewritten about once each time the changelog grows by its
// bound, not at every flush.
func TestCleaningRewritesOnlyStale(t *testing.T) {
	plan := testPlan(t, `
name: clean
source: {topic: t, key: id, time: {field: ts}}
outputs:
  - name: per_id
    group_by: [id]
    window: {tumbling: 1h}
    aggregates: {n: count()}
`)
	dec := NewDecoder(plan)
	e := NewEngine(plan, dec)
	e.EnableChangelog()
	e.Assign(0, 0)
	add := func(id string) {
		var r Record
		if err := dec.Decode(fmt.Appendf(nil, `{"id":%q,"ts":"2026-03-01T12:00:00Z"}`, id), &r); err != nil {
			t.Fatal(err)
		}
		e.Add(0, &r, 0)
	}
	const cold, hot, flushes = 1000, 10, 400
	for i := range cold {
		add(fmt.Sprint("cold", i))
	}
	log := &cleanLog{}
	log.flush(t, e)
	written := map[string]int{} // group records per group after the first flush
	for range flushes {
		for i := range hot {
			add(fmt.Sprint("hot", i))
		}
		log.flush(t, e)
		for _, c := range log.last {
			if c.Key[0] == groupKey && c.Value != nil {
				written[string(c.Key)]++
			}
		}
	}
	if log.truncations == 0 {
		t.Fatal("never truncated")
	}
	// The first flush wrote 1,001 records; then the log grows by 11 a
	// flush (10 groups and the meta record), bounded at 2 × 1,010: the
	// cold groups are stale every ~92 flushes, 4 times in 400.
	var coldMost, coldLeast, hotMost int
	coldLeast = flushes
	for k, n := range written {
		if strings.Contains(k, "hot") {
			hotMost = max(hotMost, n)
			continue
		}
		coldMost, coldLeast = max(coldMost, n), min(coldLeast, n)
	}
	if hotMost != flushes {
		t.Errorf("a hot group has %d records over %d flushes: cleaning rewrote it (or a change was not written)", hotMost, flushes)
	}
	if coldLeast < 3 || coldMost > 5 {
		t.Errorf("cold groups were rewritten %d to %d times over %d flushes, want about once every 92", coldLeast, coldMost, flushes)
	}
}

// TestLogGens follows the generation counts through a restore, two
// flushes and a drop: the oldest generation a restore needs moves on once
// no live group's latest record is in it, and the records beyond a bound
// name the generations whose groups are stale.
func TestLogGens(t *testing.T) {
	g := newLogGens()
	for range 5 {
		g.restored() // a restore read 5 records, holding groups a and b
	}
	a, b := &keyState{gen: restoredGen}, &keyState{gen: restoredGen}
	g.add(a.gen)
	g.add(b.gen)
	if g.cur() != 1 || g.start() != restoredGen {
		t.Fatalf("after the restore: cur %d, start %d; want 1, 0", g.cur(), g.start())
	}
	g.move(a)
	g.next(2) // a and the meta record
	if g.start() != restoredGen {
		t.Fatalf("b is still in the restored generation: start %d", g.start())
	}
	if got := g.staleBelow(6, 0); got != 1 {
		t.Errorf("bound 6 over 5 + 2 records: stale below %d, want 1", got)
	}
	if got := g.staleBelow(10, 0); got != g.start() {
		t.Errorf("bound 10 over 7 records: stale below %d, want none (%d)", got, g.start())
	}
	g.move(b) // rewritten by the cleaning
	g.next(2)
	if g.start() != 1 {
		t.Fatalf("the restored generation holds no group: start %d, want 1", g.start())
	}
	g.remove(a.gen) // a dropped: its tombstone is in generation 3
	g.next(2)
	if g.start() != 2 || g.cur() != 4 {
		t.Fatalf("generation 1 held only a: start %d, cur %d; want 2, 4", g.start(), g.cur())
	}
}

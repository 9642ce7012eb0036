package stream

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// detectPlan is a detect output over two fields of keyed events.
func detectPlan(t testing.TB, disorderMs int64, warmUp int) *pipeline.Plan {
	t.Helper()
	return testPlan(t, fmt.Sprintf(`name: d
source: {topic: t, key: k, time: {field: ts, format: epoch_ms}}
event_time: {max_out_of_orderness: %dms}
outputs:
  - name: spikes
    group_by: [k]
    detect: {detector: zscore, fields: [v, w], alpha: 0.3, threshold: 1.5, warm_up: %d}
`, disorderMs, warmUp))
}

// dEvent is one event of a detect feed, as a source partition holds it.
type dEvent struct {
	key    string
	ts     int64
	pid    int32
	offset int64
	v, w   float64 // NaN: absent
}

func (e *dEvent) json() []byte {
	b := fmt.Appendf(nil, `{"k":%q,"ts":%d`, e.key, e.ts)
	if !math.IsNaN(e.v) {
		b = fmt.Appendf(b, `,"v":%s`, strconv.FormatFloat(e.v, 'g', -1, 64))
	}
	if !math.IsNaN(e.w) {
		b = fmt.Appendf(b, `,"w":%s`, strconv.FormatFloat(e.w, 'g', -1, 64))
	}
	return append(b, '}')
}

// dStep is one record a detect task reads (an event or a watermark
// marker, after which the task advances), or a commit.
type dStep struct {
	ev     *dEvent
	marks  []mark
	commit bool
	snap   bool // the commit writes a snapshot
}

// detectFeed returns a random run: series per key spread over partitions,
// each partition's events out of order within the disorder bound, a few
// events far behind (late unless the watermark is still behind them),
// the partitions interleaved at random, markers and commits at random,
// and at the end a marker past every event and a commit.
func detectFeed(rng *rand.Rand, events, keys, parts int, disorder int64) []dStep {
	up := Watermarks{}
	for p := range int32(parts) {
		up.Assign(p, 0)
	}
	queues := make([][]*dEvent, parts)
	offsets := make([]int64, parts)
	for i := range events {
		p := rng.IntN(parts)
		nominal := int64(i) * 50
		e := &dEvent{key: "k" + strconv.Itoa(rng.IntN(keys)), pid: int32(p), offset: offsets[p], v: math.NaN(), w: math.NaN()}
		offsets[p]++
		switch r := rng.Float64(); {
		case r < 0.02:
			e.ts = nominal - disorder - rng.Int64N(20*disorder+1) // far behind
		default:
			e.ts = nominal - rng.Int64N(disorder+1)
			e.ts -= e.ts % 10 // equal times happen
		}
		if rng.Float64() < 0.9 {
			e.v = math.Round(rng.NormFloat64()*10+100) / 4
			if rng.Float64() < 0.05 {
				e.v += 200 // a spike
			}
		}
		if rng.Float64() < 0.5 {
			e.w = float64(rng.IntN(5))
		}
		queues[p] = append(queues[p], e)
	}
	var steps []dStep
	emitMarks := func() {
		var ms []mark
		for _, p := range slices.Sorted(slices.Values(up.Partitions())) {
			ts, seen, idle := up.Max(p, 0)
			ms = append(ms, mark{pid: p, maxTS: ts, seen: seen, idle: idle})
		}
		steps = append(steps, dStep{marks: ms})
	}
	for {
		var live []int
		for p, q := range queues {
			if len(q) > 0 {
				live = append(live, p)
			}
		}
		if len(live) == 0 {
			break
		}
		p := live[rng.IntN(len(live))]
		e := queues[p][0]
		queues[p] = queues[p][1:]
		steps = append(steps, dStep{ev: e})
		up.Observe(e.pid, e.ts, 0)
		if rng.Float64() < 0.2 {
			emitMarks()
		}
		if rng.Float64() < 0.03 {
			steps = append(steps, dStep{commit: true, snap: rng.Float64() < 0.2})
		}
	}
	end := int64(events)*50 + disorder + 1
	for p := range int32(parts) {
		up.Observe(p, end, 0)
	}
	emitMarks()
	return append(steps, dStep{commit: true})
}

// detectRun is what a run of a detect task committed.
type detectRun struct {
	results []Result
	late    map[[2]int64]bool // by partition, offset
	log     []Change          // the changelog, in offset order
}

// runDetect feeds the steps to a detect task. Before each step in crashes
// (by index) it loses what it did since its last commit and restores from
// its changelog, then reads on from the step after that commit, as a
// window task does after an aborted transaction. check, if set, is called
// after every commit with the operator.
func runDetect(t testing.TB, plan *pipeline.Plan, steps []dStep, crashes map[int]bool, check func(op *detectOp, log []Change)) *detectRun {
	t.Helper()
	dec := NewDecoder(plan)
	fresh := func() *detectOp {
		op, err := newDetectOp(plan, dec)
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	op := fresh()
	run := &detectRun{late: map[[2]int64]bool{}}
	var pending []Result
	var rec Record
	resume := 0
	crashed := map[int]bool{}
	for i := 0; i < len(steps); i++ {
		if crashes[i] && !crashed[i] {
			crashed[i] = true
			pending = pending[:0]
			op = restoreDetect(t, fresh, run.log)
			i = resume - 1
			continue
		}
		s := steps[i]
		switch {
		case s.ev != nil:
			if err := dec.Decode(s.ev.json(), &rec); err != nil {
				t.Fatal(err)
			}
			late := op.Add(s.ev.pid, &rec, 0) != 0
			if err := op.Rejected(); err != nil {
				t.Fatalf("step %d: rejected: %v", i, err)
			}
			run.late[[2]int64{int64(s.ev.pid), s.ev.offset}] = late
		case s.marks != nil:
			for _, m := range s.marks {
				op.Mark(m.pid, m.maxTS, m.seen, m.idle)
			}
			pending = op.Advance(0, pending, 0)
		case s.commit:
			pending = op.Advance(0, pending, 0)
			if s.snap {
				run.log = appendSnapshot(op, run.log)
			} else {
				run.log = appendChanges(op, run.log)
			}
			run.results = append(run.results, pending...)
			pending = pending[:0]
			resume = i + 1
			if check != nil {
				check(op, run.log)
			}
		}
	}
	return run
}

// restoreDetect rebuilds a detect operator from its changelog in offset
// order, starting over at each snapshot, as the window stage does.
func restoreDetect(t testing.TB, fresh func() *detectOp, log []Change) *detectOp {
	t.Helper()
	op := fresh()
	for _, c := range log {
		if isSnapshotStart(c.Key) {
			op = fresh()
		}
		if err := op.RestoreChange(c.Key, c.Value, 0); err != nil {
			t.Fatalf("RestoreChange: %v", err)
		}
	}
	return op
}

// detectState is the whole state of op as changelog records by key.
func detectState(op *detectOp) map[string]string {
	m := map[string]string{}
	for _, c := range appendSnapshot(op, nil)[1:] {
		m[string(c.Key)] = string(c.Value)
	}
	return m
}

// batchDetect is the oracle: per key, the events not reported late sorted
// by event time, then source partition and offset, fed to the EWMA
// z-score of each field.
func batchDetect(plan *pipeline.Plan, steps []dStep, late map[[2]int64]bool) []string {
	d := plan.Outputs[0].Detect
	byKey := map[string][]*dEvent{}
	for _, s := range steps {
		if e := s.ev; e != nil && !late[[2]int64{int64(e.pid), e.offset}] {
			byKey[e.key] = append(byKey[e.key], e)
		}
	}
	var out []string
	for key, evs := range byKey {
		slices.SortFunc(evs, func(a, b *dEvent) int {
			return cmp.Or(cmp.Compare(a.ts, b.ts), cmp.Compare(a.pid, b.pid), cmp.Compare(a.offset, b.offset))
		})
		for f, field := range d.Fields {
			var n, mean, variance float64
			for _, e := range evs {
				x := e.v
				if f == 1 {
					x = e.w
				}
				if math.IsNaN(x) {
					continue
				}
				if n >= float64(d.WarmUp) && n > 0 && variance > 0 {
					if z := (x - mean) / math.Sqrt(variance); math.Abs(z) >= d.Threshold {
						out = append(out, fmt.Sprintf("%s@%d/%s value=%v mean=%v stddev=%v z=%v", key, e.ts, field, x, mean, math.Sqrt(variance), z))
					}
				} else if n >= float64(d.WarmUp) && n > 0 && x != mean {
					out = append(out, fmt.Sprintf("%s@%d/%s value=%v mean=%v stddev=%v z=%v", key, e.ts, field, x, mean, 0.0, 0.0))
				}
				if n == 0 {
					mean, variance = x, 0
				} else {
					dx := x - mean
					mean += d.Alpha * dx
					variance = (1 - d.Alpha) * (variance + d.Alpha*dx*dx)
				}
				n++
			}
		}
	}
	slices.Sort(out)
	return out
}

func rowsOf(rs []Result) []string {
	var out []string
	for _, r := range rs {
		v := r.Values
		out = append(out, fmt.Sprintf("%s@%d/%s value=%v mean=%v stddev=%v z=%v", r.Key[0], r.Start, r.Key[1], v[0].Num, v[1].Num, v[2].Num, v[3].Num))
	}
	slices.Sort(out)
	return out
}

// TestDetectMatchesBatch is the randomized oracle: random series per key,
// delivered out of order within the disorder bound over several
// partitions, random markers, commits and crashes with restores; what the
// task committed equals a batch computation over the same series sorted
// by event time, per key.
func TestDetectMatchesBatch(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			disorder := int64(100 + rng.IntN(1500))
			plan := detectPlan(t, disorder, rng.IntN(6))
			steps := detectFeed(rng, 1500, 1+rng.IntN(12), 1+rng.IntN(4), disorder)
			crashes := map[int]bool{}
			for range rng.IntN(6) {
				crashes[rng.IntN(len(steps))] = true
			}
			run := runDetect(t, plan, steps, crashes, nil)
			got, want := rowsOf(run.results), batchDetect(plan, steps, run.late)
			if len(want) == 0 {
				t.Fatal("the feed has no anomalies: the test checks nothing")
			}
			nlate := 0
			for _, l := range run.late {
				if l {
					nlate++
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%d rows, batch %d (%d late events); first difference:\n%s", len(got), len(want), nlate, firstDiff(got, want))
			}
			t.Logf("%d anomalies, %d late events, %d crashes", len(got), nlate, len(crashes))
		})
	}
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return "got  " + got[i] + "\nwant " + want[i]
		}
	}
	if len(got) > len(want) {
		return "extra " + got[len(want)]
	}
	return "missing " + want[len(got)]
}

// TestDetectChangelogRoundTrip restores a detect task from every prefix
// of its changelog that ends at a commit, changes and snapshots mixed:
// the restored state equals the live one, buffered events and EWMA state
// exactly, and so do the results of a task that crashes there and goes
// on.
func TestDetectChangelogRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	plan := detectPlan(t, 800, 2)
	steps := detectFeed(rng, 2000, 8, 3, 800)
	dec := NewDecoder(plan)
	fresh := func() *detectOp {
		op, err := newDetectOp(plan, dec)
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	commits, buffered, snaps := 0, 0, 0
	live := runDetect(t, plan, steps, nil, func(op *detectOp, log []Change) {
		commits++
		for _, c := range log {
			if isSnapshotStart(c.Key) {
				snaps++
			}
		}
		buffered = max(buffered, op.OpenWindows())
		restored := restoreDetect(t, fresh, log)
		if got, want := detectState(restored), detectState(op); !maps.Equal(got, want) {
			t.Fatalf("commit %d: restored state (%d records) differs from the live one (%d)", commits, len(got), len(want))
		}
		if restored.OpenWindows() != op.OpenWindows() || restored.Groups() != op.Groups() || restored.Watermark() != op.Watermark() {
			t.Fatalf("commit %d: restored %d waiting, %d keys, watermark %d; live %d, %d, %d", commits,
				restored.OpenWindows(), restored.Groups(), restored.Watermark(), op.OpenWindows(), op.Groups(), op.Watermark())
		}
	})
	if commits < 10 || buffered == 0 || snaps == 0 {
		t.Fatalf("%d commits, at most %d keys waiting, %d snapshots: the run restores too little", commits, buffered, snaps)
	}
	// Crash before every commit in turn.
	var at []int
	for i, s := range steps {
		if s.commit {
			at = append(at, i)
		}
	}
	want := rowsOf(live.results)
	for _, i := range at[:min(len(at), 40)] {
		run := runDetect(t, plan, steps, map[int]bool{i: true}, nil)
		if got := rowsOf(run.results); !slices.Equal(got, want) {
			t.Fatalf("crash before step %d: %d rows, uninterrupted %d:\n%s", i, len(got), len(want), firstDiff(got, want))
		}
	}
}

func TestDetectRestoreRejectsChangedFields(t *testing.T) {
	plan := detectPlan(t, 0, 0)
	dec := NewDecoder(plan)
	op, _ := newDetectOp(plan, dec)
	var rec Record
	if err := dec.Decode([]byte(`{"k":"a","ts":1,"v":1}`), &rec); err != nil {
		t.Fatal(err)
	}
	op.Add(0, &rec, 0)
	log := appendChanges(op, nil)
	one := testPlan(t, "name: d\nsource: {topic: t, key: k, time: {field: ts, format: epoch_ms}}\noutputs:\n  - name: spikes\n    group_by: [k]\n    detect: {detector: zscore, fields: [v]}\n")
	other, _ := newDetectOp(one, NewDecoder(one))
	var err error
	for _, c := range log {
		if err == nil {
			err = other.RestoreChange(c.Key, c.Value, 0)
		}
	}
	if err == nil {
		t.Fatal("a changelog of two fields restored into an output of one")
	}
	t.Log(err)
	for _, c := range log {
		for cut := range len(c.Value) {
			fresh, _ := newDetectOp(plan, dec)
			if fresh.RestoreChange(c.Key, c.Value[:cut], 0) == nil {
				t.Fatalf("record %q truncated to %d bytes restored", c.Key, cut)
			}
		}
	}
}

// TestDetectorColumns checks that the zscore detector writes the columns
// the pipeline compiles into its outputs' schema.
func TestDetectorColumns(t *testing.T) {
	det, err := newDetector(&pipeline.Detect{Detector: "zscore", Alpha: 0.5, Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range pipeline.DetectColumns("zscore") {
		names = append(names, c.Name)
	}
	if got := append([]string{"value"}, det.Columns()...); !slices.Equal(got, names) {
		t.Fatalf("the detector writes %v, the pipeline declares %v", got, names)
	}
	st := make([]float64, det.StateLen())
	var row []event.Value
	for _, x := range []float64{10, 10} {
		if row, _ = det.Step(st, x, row[:0]); len(row) != 0 {
			t.Fatalf("reported %v during the first points", row)
		}
	}
	// A flat series that moves: an anomaly without a z.
	row, ok := det.Step(st, 12, row[:0])
	if !ok || len(row) != len(det.Columns()) || row[0].Num != 10 || row[1].Num != 0 || !row[2].IsNull() {
		t.Fatalf("12 after 10, 10: %v %v, want mean 10, stddev 0, no z", row, ok)
	}
	row, ok = det.Step(st, 20, row[:0])
	if !ok || len(row) != len(det.Columns()) || row[2].Num != 9 {
		t.Fatalf("20 after 10, 10, 12: %v %v, want z 9", row, ok)
	}
	if _, err := newDetector(&pipeline.Detect{Detector: "seasonal"}); err == nil {
		t.Fatal("an unknown detector was accepted")
	}
}

package stream

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

const (
	oracleDisorder = 5_000
	oracleIdle     = 30_000
	oracleBase     = 1772366400000 // 2026-03-01T12:00:00Z
	// oracleMargin is the longest window or gap of the oracle pipeline.
	oracleMargin = 2 * 60_000
	// oracleOpen is how many windows the sentinel event opens: one
	// tumbling, size/slide hopping and one session.
	oracleOpen = 1 + 4 + 1
)

// oracleAggregates uses every aggregate function on a number field that is
// sometimes absent (v) and on a field of mixed kinds (tag).
const oracleAggregates = `
      count: count()
      n: count(v)
      total: sum(v)
      mean: avg(v)
      low: min(v)
      high: max(v)
      sd: stddev(v)
      first_v: first(v)
      last_v: last(v)
      first_tag: first(tag)
      last_tag: last(tag)
      median: p50(v)
      p90: p90(v)
      p95: p95(v)
      p99: p99(v)
      tags: count_distinct(tag)`

// oraclePlan has an output of each window kind, over different groupings
// (one field, two fields).
func oraclePlan(t testing.TB, lateness time.Duration) *pipeline.Plan {
	return testPlan(t, fmt.Sprintf(`
name: oracle
source:
  topic: readings
  key: sensor
  time: {field: ts, format: epoch_ms}
event_time:
  max_out_of_orderness: %dms
  idle_timeout: %dms
  allowed_lateness: %dms
outputs:
  - name: tum
    group_by: [sensor]
    window: {tumbling: 1m}
    aggregates:%s
  - name: hop
    group_by: [zone, kind]
    window: {hopping: {size: 2m, slide: 30s}}
    aggregates:%s
  - name: ses
    group_by: [user]
    window: {session: {gap: 20s}}
    aggregates:%s
`, oracleDisorder, oracleIdle, lateness.Milliseconds(), oracleAggregates, oracleAggregates, oracleAggregates))
}

type oracleConfig struct {
	// markers runs the engine as a window task does: partition
	// watermarks come from markers built by a tracker that observes every
	// event, as the shuffle stage does.
	markers             bool
	events, keys, users int
	lateness            int64 // ms
	step                int64 // a partition's event time advances up to step-1 ms per event
	// within and beyond are the chances, per event, of also sending an
	// event behind the watermark but within the allowed lateness, and one
	// beyond it.
	within, beyond float64
	// cut, when set, makes every advance but the last one call Advance
	// once with that max, leaving the rest of the round to the events
	// that follow (as the window stage does when a round's finals span
	// transactions); restore is then the chance, per advance, of
	// restoring the engine from its changelog there.
	cut     int
	restore float64
}

// normalFeed returns events of cfg.keys sensors over 4 partitions (a
// sensor always on the same one), in a random interleaving of the
// partitions that keeps each partition's order. Within a partition an
// event is never more than disorder-1 ms behind the latest before it, so
// none is late.
func normalFeed(rng *rand.Rand, cfg oracleConfig) []*oEvent {
	const parts = 4
	perPart := make([][]*oEvent, parts)
	var cursor [parts]int64
	for p := range cursor {
		cursor[p] = oracleBase + rng.Int64N(10_000)
	}
	for range cfg.events {
		id := rng.IntN(cfg.keys)
		ev := sensorEvent(rng, id, cfg.users)
		cursor[ev.part] += rng.Int64N(cfg.step)
		ev.ts = cursor[ev.part] - rng.Int64N(oracleDisorder)
		perPart[ev.part] = append(perPart[ev.part], ev)
	}
	out := make([]*oEvent, 0, cfg.events)
	for len(out) < cfg.events {
		p := rng.IntN(parts)
		if len(perPart[p]) > 0 {
			out = append(out, perPart[p][0])
			perPart[p] = perPart[p][1:]
		}
	}
	return out
}

// sensorEvent returns an event of sensor id without a time: v is a
// multiple of 1/4 (sums are exact in any order) or absent, tag one of 25
// strings or 25 numbers or absent.
func sensorEvent(rng *rand.Rand, id, users int) *oEvent {
	ev := &oEvent{
		part:   int32(id % 4),
		sensor: fmt.Sprintf("s-%04d", id),
		zone:   fmt.Sprintf("z-%02d", id%13),
		kind:   []string{"air", "traffic"}[rng.IntN(2)],
		user:   fmt.Sprintf("u-%d", id%users),
	}
	if rng.IntN(10) > 0 {
		ev.v = event.NumberValue(float64(rng.IntN(400_000)-100_000) / 4)
	}
	switch k := rng.IntN(20); {
	case k < 12:
		ev.tag = event.StringValue(fmt.Sprintf("t-%d", rng.IntN(25)))
	case k < 17:
		ev.tag = event.NumberValue(float64(rng.IntN(25)))
	}
	return ev
}

// oStep is one step of an oracle run: an event, or an advance when ev is
// nil.
type oStep struct {
	now int64
	ev  *oEvent
}

type oracleRun struct {
	steps    []oStep
	results  []Result // every result Advance returned, in order
	accepted []*oEvent
	sentinel *oEvent
}

// runOracle feeds e the normal events interleaved with late ones, one per
// ms of processing time, advancing every few events; then a sentinel event
// a day after the others and an advance with every partition idle, which
// closes every window but the sentinel's. It checks that Add reports
// exactly the events beyond the allowed lateness as late (for every
// output: their times are far behind every window and gap) and that every
// result is final for a window the watermark has passed.
func runOracle(t testing.TB, e *Engine, dec *Decoder, rng *rand.Rand, cfg oracleConfig) *oracleRun {
	t.Helper()
	run := &oracleRun{}
	all := uint64(1)<<len(e.outs) - 1
	var rec Record
	now, maxTS := int64(0), int64(NoWatermark)
	up := Watermarks{IdleTimeout: e.plan.Time.IdleTimeout.Milliseconds()}
	if cfg.markers {
		e.UseMarkers()
	}
	table := changelogTable{}
	if cfg.cut > 0 {
		e.EnableChangelog()
	}
	final := int64(-1) // the processing time of the last advance, once known
	feed := func(ev *oEvent, wantLate uint64) {
		t.Helper()
		ev.seq = len(run.steps)
		if err := dec.Decode(ev.json(), &rec); err != nil {
			t.Fatalf("decode %s: %v", ev.json(), err)
		}
		if late := e.Add(ev.part, &rec, now); late != wantLate {
			t.Fatalf("event %s (watermark %d): late %b, want %b", ev.json(), e.Watermark(), late, wantLate)
		}
		up.Observe(ev.part, rec.TS, now)
		if wantLate == 0 {
			run.accepted = append(run.accepted, ev)
			maxTS = max(maxTS, ev.ts)
		}
		run.steps = append(run.steps, oStep{now: now, ev: ev})
		now++
	}
	advance := func(at int64) {
		t.Helper()
		if cfg.markers {
			for _, p := range up.Partitions() {
				ts, seen, idle := up.Max(p, at)
				e.Mark(p, ts, seen, idle)
			}
		}
		out := e.Advance(at, nil, cfg.cut)
		if cfg.cut > 0 && at == final {
			for n := len(out); n >= cfg.cut; n = len(out) - n {
				n = len(out)
				out = e.Advance(at, out, cfg.cut)
			}
		}
		if cfg.cut > 0 {
			table.apply(appendChanges(e, nil))
			if rng.Float64() < cfg.restore {
				e = table.restore(t, e.plan, at)
				if cfg.markers {
					e.UseMarkers()
				}
			}
		}
		for _, r := range out {
			if !r.Deleted() && (!r.Final || r.End > e.Watermark()) {
				t.Fatalf("result %s final %v ends at %d, after the watermark %d", windowID(r.Output, r.Key, r.Start), r.Final, r.End, e.Watermark())
			}
		}
		run.results = append(run.results, out...)
		run.steps = append(run.steps, oStep{now: at})
	}
	advanceEvery := 1 + rng.IntN(300)
	for i, ev := range normalFeed(rng, cfg) {
		if fired := e.Watermark(); fired != NoWatermark {
			if cfg.lateness > 0 && rng.Float64() < cfg.within {
				late := sensorEvent(rng, rng.IntN(cfg.keys), cfg.users)
				late.ts = fired - rng.Int64N(cfg.lateness) // in (fired-lateness, fired]
				feed(late, 0)
			}
			if rng.Float64() < cfg.beyond {
				late := sensorEvent(rng, rng.IntN(cfg.keys), cfg.users)
				late.user = fmt.Sprintf("ghost-%d", i) // a session of its own
				late.ts = fired - cfg.lateness - oracleMargin - rng.Int64N(60_000)
				feed(late, all)
			}
		}
		feed(ev, 0)
		if i%advanceEvery == advanceEvery-1 {
			advance(now - 1)
		}
	}
	run.sentinel = &oEvent{sensor: "sentinel", zone: "sentinel", kind: "air", user: "sentinel", ts: maxTS + 86_400_000}
	feed(run.sentinel, 0)
	run.accepted = run.accepted[:len(run.accepted)-1]
	final = now + oracleIdle
	advance(final)
	if wm := run.sentinel.ts - oracleDisorder; e.Watermark() != wm {
		t.Fatalf("final watermark %d, want %d", e.Watermark(), wm)
	}
	if e.OpenWindows() != oracleOpen {
		t.Fatalf("%d open windows at the end, want the sentinel's %d: state was not dropped", e.OpenWindows(), oracleOpen)
	}
	return run
}

// sinkView applies results in order as a sink does: a result replaces the
// row of its window, a retraction deletes it.
func sinkView(results []Result) map[string]Result {
	view := map[string]Result{}
	for _, r := range results {
		id := windowID(r.Output, r.Key, r.Start)
		if r.Deleted() {
			delete(view, id)
		} else {
			view[id] = r
		}
	}
	return view
}

// oracleSeeds is how many random runs each oracle test makes.
func oracleSeeds() uint64 {
	if testing.Short() || oneSeed {
		return 1
	}
	return 4
}

func randomConfig(rng *rand.Rand, lateness int64) oracleConfig {
	return oracleConfig{events: 12_000, keys: 50 + rng.IntN(500), users: 20 + rng.IntN(600), lateness: lateness, step: 400,
		within: 0.03, beyond: 0.005}
}

// TestEngineMatchesBatch checks the engine against a batch computation of
// every window from scratch, for tumbling, hopping and session windows
// and every aggregate, with bounded disorder and no allowed lateness:
// every window fires exactly once, nothing is retracted, and events
// beyond the lateness are late and change nothing.
func TestEngineMatchesBatch(t *testing.T) {
	for seed := uint64(1); seed <= oracleSeeds(); seed++ {
		for _, markers := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed=%d/markers=%v", seed, markers), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 0x9e3779b9))
				plan := oraclePlan(t, 0)
				dec := NewDecoder(plan)
				cfg := randomConfig(rng, 0)
				cfg.markers = markers
				run := runOracle(t, NewEngine(plan, dec), dec, rng, cfg)
				seen := map[string]bool{}
				for _, r := range run.results {
					id := windowID(r.Output, r.Key, r.Start)
					if r.Deleted() || seen[id] {
						t.Fatalf("result %s (retract %v) emitted twice or retracted without allowed lateness", id, r.Deleted())
					}
					seen[id] = true
				}
				compareWithBatch(t, plan, sinkView(run.results), run.accepted)
			})
		}
	}
}

// TestEngineMatchesBatchWithLateness adds events behind the watermark but
// within the allowed lateness, which update fired windows (and merge or
// extend sessions, retracting what was emitted for them), and events
// beyond it, which are late: what a sink holds at the end equals the
// batch computation over the events that were not late.
func TestEngineMatchesBatchWithLateness(t *testing.T) {
	for seed := uint64(1); seed <= oracleSeeds(); seed++ {
		for _, markers := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed=%d/markers=%v", seed, markers), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 0x85ebca6b))
				lateness := 10_000 + rng.Int64N(80_000)
				plan := oraclePlan(t, time.Duration(lateness)*time.Millisecond)
				dec := NewDecoder(plan)
				cfg := randomConfig(rng, lateness)
				cfg.markers = markers
				run := runOracle(t, NewEngine(plan, dec), dec, rng, cfg)
				updates, retracts := 0, 0
				seen := map[string]bool{}
				for _, r := range run.results {
					id := windowID(r.Output, r.Key, r.Start)
					switch {
					case r.Deleted():
						retracts++
					case seen[id]:
						updates++
					}
					seen[id] = true
				}
				if updates == 0 || retracts == 0 {
					t.Errorf("degenerate run: %d updated finals, %d retractions", updates, retracts)
				}
				t.Logf("lateness %dms: %d updated finals, %d retractions", lateness, updates, retracts)
				compareWithBatch(t, plan, sinkView(run.results), run.accepted)
			})
		}
	}
}

// TestEngineMatchesBatchCutRounds runs the oracle with every round of
// finals cut after a few results and the rest left to the events that
// follow, and the engine now and then restored from its changelog in the
// middle of a round: what a sink holds at the end still equals the batch
// computation, with lateness, retractions and late events.
func TestEngineMatchesBatchCutRounds(t *testing.T) {
	for seed := uint64(1); seed <= oracleSeeds(); seed++ {
		for _, markers := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed=%d/markers=%v", seed, markers), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 0x27d4eb2f))
				lateness := 10_000 + rng.Int64N(80_000)
				plan := oraclePlan(t, time.Duration(lateness)*time.Millisecond)
				dec := NewDecoder(plan)
				cfg := randomConfig(rng, lateness)
				cfg.markers, cfg.cut, cfg.restore = markers, 1+rng.IntN(8), 0.2
				run := runOracle(t, NewEngine(plan, dec), dec, rng, cfg)
				compareWithBatch(t, plan, sinkView(run.results), run.accepted)
			})
		}
	}
}

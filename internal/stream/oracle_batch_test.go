package stream

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// oEvent is one event of an oracle run. The JSON sent to the decoder is
// built from it; the batch computation reads it directly.
type oEvent struct {
	part                     int32
	seq                      int // arrival order, for ties of first and last
	sensor, zone, kind, user string
	ts                       int64
	v                        event.Value // a number, or null (absent)
	tag                      event.Value // a string, a number or null
}

func (ev *oEvent) json() []byte {
	b := fmt.Appendf(nil, `{"sensor":%q,"zone":%q,"kind":%q,"user":%q,"ts":%d`, ev.sensor, ev.zone, ev.kind, ev.user, ev.ts)
	if !ev.v.IsNull() {
		b = ev.v.AppendJSON(append(b, `,"v":`...))
	}
	if !ev.tag.IsNull() {
		b = ev.tag.AppendJSON(append(b, `,"tag":`...))
	}
	return append(b, '}')
}

func (ev *oEvent) field(name string) event.Value {
	switch name {
	case "sensor":
		return event.StringValue(ev.sensor)
	case "zone":
		return event.StringValue(ev.zone)
	case "kind":
		return event.StringValue(ev.kind)
	case "user":
		return event.StringValue(ev.user)
	case "v":
		return ev.v
	case "tag":
		return ev.tag
	}
	panic("oracle events have no field " + name)
}

// batchWindow is a window of the batch computation: its end and its
// events in arrival order.
type batchWindow struct {
	end    int64
	events []*oEvent
}

func windowID(output string, key []string, start int64) string {
	return output + "/" + strings.Join(key, "\x1f") + "@" + strconv.FormatInt(start, 10)
}

// batchWindows computes from scratch every window of every output of plan
// over events (in arrival order): tumbling and hopping windows are the
// aligned [start, start+size) intervals holding an event; a session of a
// group is a maximal run of its events, by time, in which consecutive
// events are less than gap apart, and spans [first, last+gap).
func batchWindows(plan *pipeline.Plan, events []*oEvent) map[string]*batchWindow {
	out := map[string]*batchWindow{}
	for _, o := range plan.Outputs {
		groups := map[string][]*oEvent{}
		keys := map[string][]string{}
		for _, ev := range events {
			var key []string
			for _, g := range o.GroupBy {
				key = append(key, string(ev.field(g).AppendText(nil)))
			}
			k := strings.Join(key, "\x1f")
			groups[k] = append(groups[k], ev)
			keys[k] = key
		}
		size, slide, gap := o.Window.Size.Milliseconds(), o.Window.Slide.Milliseconds(), o.Window.Gap.Milliseconds()
		for k, evs := range groups {
			add := func(start, end int64, ev *oEvent) {
				id := windowID(o.Name, keys[k], start)
				w := out[id]
				if w == nil {
					w = &batchWindow{end: end}
					out[id] = w
				}
				w.events = append(w.events, ev)
			}
			switch o.Window.Kind {
			case pipeline.Tumbling, pipeline.Hopping:
				step := cmp.Or(slide, size)
				for _, ev := range evs {
					// The latest window holding ts starts at the last
					// multiple of step at or before it.
					last := ev.ts - ((ev.ts%step)+step)%step
					for s := last; s > ev.ts-size; s -= step {
						add(s, s+size, ev)
					}
				}
			case pipeline.Session:
				byTime := slices.Clone(evs)
				slices.SortStableFunc(byTime, func(a, b *oEvent) int { return cmp.Compare(a.ts, b.ts) })
				for i := 0; i < len(byTime); {
					j := i + 1
					for j < len(byTime) && byTime[j].ts-byTime[j-1].ts < gap {
						j++
					}
					run := slices.Clone(byTime[i:j])
					slices.SortFunc(run, func(a, b *oEvent) int { return cmp.Compare(a.seq, b.seq) })
					for _, ev := range run {
						add(byTime[i].ts, byTime[j-1].ts+gap, ev)
					}
					i = j
				}
			}
		}
	}
	return out
}

// checkAggregate compares the engine's value of aggregate a with the value
// computed from the window's events: counts, sum, avg, min, max, first,
// last and count_distinct exactly (the test's numbers are multiples of
// 1/4, so sums are exact in any order), stddev within 1e-9 relative, and
// percentiles within the sketch's 1% of the exact quantile the aggregate
// package documents: an element of rank q·(n−1), rounded down or up.
func checkAggregate(a pipeline.Aggregate, got event.Value, events []*oEvent) error {
	var vals []event.Value
	for _, ev := range events {
		if a.Field == "" {
			vals = append(vals, event.Value{})
		} else if v := ev.field(a.Field); !v.IsNull() {
			vals = append(vals, v)
		}
	}
	var nums []float64
	for _, v := range vals {
		if v.Kind == event.Number {
			nums = append(nums, v.Num)
		}
	}
	want := event.Value{}
	tol := 0.0
	switch fn := a.Func.Name(); fn {
	case "count":
		n := len(vals)
		if a.Field == "" {
			n = len(events)
		}
		want = event.NumberValue(float64(n))
	case "sum", "avg":
		if len(nums) > 0 {
			s := 0.0
			for _, x := range nums {
				s += x
			}
			if fn == "avg" {
				s /= float64(len(nums))
			}
			want = event.NumberValue(s)
		}
	case "min", "max":
		if len(nums) > 0 {
			want = event.NumberValue(slices.Min(nums))
			if fn == "max" {
				want = event.NumberValue(slices.Max(nums))
			}
		}
	case "stddev":
		if len(nums) > 0 {
			mean := 0.0
			for _, x := range nums {
				mean += x
			}
			mean /= float64(len(nums))
			ss := 0.0
			for _, x := range nums {
				ss += (x - mean) * (x - mean)
			}
			want, tol = event.NumberValue(math.Sqrt(ss/float64(len(nums)))), 1e-9
		}
	case "first", "last":
		// The smallest (largest) time; on ties the earliest (latest)
		// arrival. events are in arrival order.
		var best *oEvent
		for _, ev := range events {
			if ev.field(a.Field).IsNull() {
				continue
			}
			if best == nil || (fn == "first" && ev.ts < best.ts) || (fn == "last" && ev.ts >= best.ts) {
				best = ev
			}
		}
		if best != nil {
			want = best.field(a.Field)
		}
	case "p50", "p90", "p95", "p99":
		if len(nums) == 0 {
			break
		}
		q, _ := strconv.ParseFloat(fn[1:], 64)
		sorted := slices.Sorted(slices.Values(nums))
		r := q / 100 * float64(len(sorted)-1)
		lo, hi := sorted[int(math.Floor(r))], sorted[int(math.Ceil(r))]
		if got.Kind != event.Number || got.Num < lo-0.01*math.Abs(lo) || got.Num > hi+0.01*math.Abs(hi) {
			return fmt.Errorf("%s = %v, want within 1%% of [%v, %v] (n=%d)", a.Name, got.AppendJSON(nil), lo, hi, len(nums))
		}
		return nil
	case "count_distinct":
		seen := map[string]bool{}
		for _, v := range vals {
			seen[string(v.AppendText([]byte{byte(v.Kind)}))] = true
		}
		want = event.NumberValue(float64(len(seen)))
	default:
		return fmt.Errorf("the oracle does not know %s", fn)
	}
	if got.Kind != want.Kind || got.Str != want.Str || got.B != want.B ||
		(tol == 0 && got.Num != want.Num) || (tol > 0 && !closeTo(got.Num, want.Num)) {
		return fmt.Errorf("%s = %s, want %s", a.Name, got.AppendJSON(nil), want.AppendJSON(nil))
	}
	return nil
}

// compareWithBatch checks that the results a sink holds (view) are exactly
// the batch computation's windows, with the same bounds and aggregates.
func compareWithBatch(t *testing.T, plan *pipeline.Plan, view map[string]Result, events []*oEvent) {
	t.Helper()
	want := batchWindows(plan, events)
	defs := map[string]*pipeline.Output{}
	for i := range plan.Outputs {
		defs[plan.Outputs[i].Name] = &plan.Outputs[i]
	}
	kinds := map[string]int{}
	for id, w := range want {
		r, ok := view[id]
		if !ok {
			t.Errorf("window %s (%d events) was not emitted", id, len(w.events))
			continue
		}
		kinds[r.Output]++
		if r.End != w.end {
			t.Errorf("window %s ends at %d, want %d", id, r.End, w.end)
		}
		for i, a := range defs[r.Output].Aggregates {
			if err := checkAggregate(a, r.Values[i], w.events); err != nil {
				t.Errorf("window %s: %v", id, err)
			}
		}
	}
	for id := range view {
		if want[id] == nil {
			t.Errorf("the engine emitted window %s, the batch has none", id)
		}
	}
	for _, o := range plan.Outputs {
		if kinds[o.Name] < 10 {
			t.Errorf("degenerate run: %d windows of %s", kinds[o.Name], o.Name)
		}
	}
	t.Logf("%d events, %d windows %v", len(events), len(want), kinds)
}

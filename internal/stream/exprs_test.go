package stream

import (
	"slices"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/event"
)

const exprsPipeline = `
name: p
source: {topic: in, key: id, time: {field: ts}}
outputs:
  - name: o
    group_by: [zone]
    window: {tumbling: 1m}
    aggregates: {errors: count(err), total: count(), lat: avg(latency_ms), last_status: last(status)}
    computed:
      duration_s: 'window_end - window_start'
      error_ratio: 'errors / total'
      pct: 'error_ratio * 100'
      lat_s: 'lat / 1000'
      label: 'zone + ":" + string(last_status)'
    having: 'errors > 1'
`

// result returns a final of zone z for [0, 60s) with the aggregates
// errors, total, lat (nil: none) and last_status.
func result(z string, errors, total float64, lat *float64, status string) Result {
	vals := []event.Value{event.NumberValue(errors), event.NumberValue(total), {}, event.StringValue(status)}
	if lat != nil {
		vals[2] = event.NumberValue(*lat)
	}
	return Result{Output: "o", GroupBy: []string{"zone"}, Key: []string{z}, Start: 0, End: 60_000, Final: true,
		Names: []string{"errors", "total", "lat", "last_status"}, Values: vals}
}

func TestResultExprsComputed(t *testing.T) {
	plan := testPlan(t, exprsPipeline)
	x := newResultExprs(&plan.Outputs[0])
	lat := 250.0
	rs := x.Finals([]Result{result("z1", 3, 4, &lat, "ok"), result("z2", 2, 0, nil, "down")})
	if len(rs) != 2 {
		t.Fatalf("%d results, want 2", len(rs))
	}
	wantNames := []string{"errors", "total", "lat", "last_status", "duration_s", "error_ratio", "pct", "lat_s", "label"}
	if !slices.Equal(rs[0].Names, wantNames) {
		t.Errorf("names %v, want %v", rs[0].Names, wantNames)
	}
	if &rs[0].Names[0] != &rs[1].Names[0] {
		t.Error("every result of an output shares its names")
	}
	want := [][]event.Value{
		{event.NumberValue(60), event.NumberValue(0.75), event.NumberValue(75), event.NumberValue(0.25), event.StringValue("z1:ok")},
		// 2 / 0 and an avg of nothing: null, the rest is computed.
		{event.NumberValue(60), {}, {}, {}, event.StringValue("z2:down")},
	}
	for i, r := range rs {
		if got := r.Values[4:]; !slices.Equal(got, want[i]) {
			t.Errorf("result %d: computed %v, want %v", i, got, want[i])
		}
	}
}

func TestResultExprsHaving(t *testing.T) {
	plan := testPlan(t, exprsPipeline)
	x := newResultExprs(&plan.Outputs[0])
	passes, fails := result("a", 2, 2, nil, "ok"), result("b", 1, 2, nil, "ok")
	updatedFails := result("c", 0, 2, nil, "ok")
	updatedFails.Kind = KindUpdate
	retract := Result{Output: "o", GroupBy: []string{"zone"}, Key: []string{"d"}, Start: 0, End: 60_000, Kind: KindDelete,
		Names: []string{"errors", "total", "lat", "last_status"}}
	rs := x.Finals([]Result{passes, fails, updatedFails, retract})
	var got []string
	for _, r := range rs {
		id := r.Key[0]
		if r.Deleted() {
			id = "-" + id
		}
		got = append(got, id)
	}
	// b never passed: it is not written. c passed before, maybe: its
	// update is a retraction. d's retraction passes through.
	if want := []string{"a", "-c", "-d"}; !slices.Equal(got, want) {
		t.Fatalf("finals %v, want %v", got, want)
	}
	if rs[1].Values != nil || rs[1].Final || len(rs[2].Names) != 9 {
		t.Errorf("retraction %+v, passed-through one %+v", rs[1], rs[2])
	}
	parts := []Result{passes, fails, updatedFails}
	for i := range parts {
		parts[i].Final = false
	}
	if ps := x.Partials(parts); len(ps) != 1 || ps[0].Key[0] != "a" {
		t.Errorf("partials %+v, want only a", ps)
	}
	// Without having or computed there is nothing to do.
	if newResultExprs(&testPlan(t, "").Outputs[0]) != nil {
		t.Error("an output without having and computed has an evaluator")
	}
}

// BenchmarkResultExprs measures the computed fields and having of the
// exprsPipeline output, per result.
func BenchmarkResultExprs(b *testing.B) {
	plan := testPlan(b, exprsPipeline)
	x := newResultExprs(&plan.Outputs[0])
	lat := 250.0
	in := make([]Result, 1000)
	for i := range in {
		in[i] = result("z", float64(i%4), 4, &lat, "ok")
	}
	rs := make([]Result, len(in))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		copy(rs, in)
		x.Finals(rs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/result")
}

// TestLiveHaving checks that a window task's live partials carry the
// computed fields and only the groups that pass having.
func TestLiveHaving(t *testing.T) {
	plan := testPlan(t, `
name: p
source: {topic: in, key: host, time: {field: ts}}
outputs:
  - name: o
    group_by: [host]
    window: {tumbling: 1m}
    aggregates: {errors: count(err), total: count()}
    computed: {error_ratio: 'errors / total'}
    having: 'errors >= 2'
    emit: {partials: 1s}
`)
	board := &Board{}
	w := NewWindower(StageConfig{Plan: plan, Board: board})
	tk := w.newTask(0, 0)
	w.tasks["in:0"] = tk
	for _, js := range []string{
		`{"host":"a","ts":1000,"err":"x"}`, `{"host":"a","ts":2000,"err":"y"}`, `{"host":"a","ts":3000}`,
		`{"host":"b","ts":4000,"err":"x"}`,
	} {
		var r Record
		if err := w.dec.Decode([]byte(js), &r); err != nil {
			t.Fatal(err)
		}
		if tk.op.Add(0, &r, 0) != 0 {
			t.Fatalf("%s is late", js)
		}
	}
	board.Get("p", "o") // someone watches
	w.publishLive(time.Now(), true)
	got := board.Get("p", "o").Results
	if len(got) != 1 || got[0].Key[0] != "a" || got[0].Final {
		t.Fatalf("live results %+v, want a's partial only", got)
	}
	if js := string(AppendValuesJSON(nil, &got[0])); js != `{"errors":2,"total":3,"error_ratio":0.6666666666666666}` {
		t.Errorf("a: %s", js)
	}
}

package stream

import (
	"strings"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

func TestCheckColumn(t *testing.T) {
	num, str, yes := event.NumberValue(3), event.StringValue("x"), event.BoolValue(true)
	for _, c := range []struct {
		v    event.Value
		typ  pipeline.ColumnType
		want event.Value
		err  string // substring; "" for no error
	}{
		{num, pipeline.TypeFloat64, num, ""},
		{num, pipeline.TypeInt64, num, ""},
		{event.NumberValue(2.5), pipeline.TypeInt64, event.Value{}, "2.5 is not a whole number (declared int64)"},
		{event.NumberValue(1 << 60), pipeline.TypeInt64, event.Value{}, "not a whole number"},
		{str, pipeline.TypeString, str, ""},
		{num, pipeline.TypeString, event.Value{}, "3 is a number, the output declares it a string"},
		{str, pipeline.TypeFloat64, event.Value{}, `"x" is a string, the output declares it a float64`},
		{yes, pipeline.TypeBool, yes, ""},
		{str, pipeline.TypeBool, event.Value{}, "declares it a bool"},
		{yes, pipeline.TypeFloat64, event.Value{}, "true is a boolean"},
		{event.NumberValue(1772366400000), pipeline.TypeTimestamp, event.NumberValue(1772366400000), ""},
		{event.StringValue("2026-03-01T12:00:00Z"), pipeline.TypeTimestamp, event.NumberValue(1772366400000), ""},
		{event.StringValue("noon"), pipeline.TypeTimestamp, event.Value{}, `"noon" is not a timestamp`},
		{event.Value{}, pipeline.TypeInt64, event.Value{}, ""}, // absent fits every type
	} {
		got, err := checkColumn(c.v, c.typ)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s as %d: %v", c.v.AppendJSON(nil), c.typ, err)
		case c.err == "" && got != c.want:
			t.Errorf("%s as %d: %v, want %v", c.v.AppendJSON(nil), c.typ, got, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s as %d: error %v, want %q", c.v.AppendJSON(nil), c.typ, err, c.err)
		}
	}
}

const eventsBenchPipeline = `
name: bench
source: {topic: t, key: sensor_id, time: {field: ts}}
outputs:
  - name: fast
    group_by: [zone]
    events:
      where: 'speed_kmh > 10.0'
      derive: {speed_ms: 'speed_kmh / 3.6'}
      fields: {sensor_id: string, speed_kmh: float64, speed_ms: ~}
`

// TestEventsOperatorState checks what an events task writes to its
// changelog (nothing but a snapshot mark) and that its results keep their
// strings once the record that carried them is reused.
func TestEventsOperatorState(t *testing.T) {
	plan := testPlan(t, eventsBenchPipeline)
	dec := NewDecoder(plan)
	op := newRowOperator(plan, dec)
	var rec Record
	for i := range 3 {
		if err := dec.Decode(cityReading(i+20, oracleBase+int64(i)), &rec); err != nil {
			t.Fatal(err)
		}
		if op.Add(0, &rec, 0) != 0 || rejectedBy(op) != nil {
			t.Fatalf("event %d: late or rejected: %v", i, rejectedBy(op))
		}
	}
	out := op.Advance(0, nil, 0)
	if len(out) != 3 || out[0].Key[0] != "zone-20" || out[2].Values[0].Str != "sensor-00022" || !closeTo(out[1].Values[2].Num, 21/3.6) {
		t.Fatalf("results %+v", out)
	}
	if ch := appendChanges(op, nil); len(ch) != 0 || op.Groups() != 0 || op.OpenWindows() != 0 {
		t.Fatalf("changes %v, %d groups, %d open: an events output keeps no state", ch, op.Groups(), op.OpenWindows())
	}
	if snap := appendSnapshot(op, nil); len(snap) != 1 || !isSnapshotStart(snap[0].Key) {
		t.Fatalf("snapshot %v", snap)
	}
	if err := op.RestoreChange([]byte{metaKey}, []byte{1, 2, 3}, 0); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkEventsOperator measures an events output's hot path per
// event: where, derive, type checks and the result (Add), and handing the
// results over (Advance, every 1,000 events), over records decoded
// beforehand.
func BenchmarkEventsOperator(b *testing.B) {
	plan := testPlan(b, eventsBenchPipeline)
	dec := NewDecoder(plan)
	const keys = 10_000
	recs := make([]Record, keys)
	for i := range recs {
		if err := dec.Decode(cityReading(i, oracleBase), &recs[i]); err != nil {
			b.Fatal(err)
		}
	}
	op := newRowOperator(plan, dec)
	var out []Result
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		op.Add(0, &recs[n%keys], 0)
		if n++; n%1000 == 0 {
			out = op.Advance(0, out[:0], 0)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDetectOperator measures a detect output per event: buffering
// (Add) and, every 1,000 events at a marker, scoring what the watermark
// passed (Advance), over 10,000 keys with event time moving 0.1 ms per
// event and a disorder of 5 s.
func BenchmarkDetectOperator(b *testing.B) {
	plan := testPlan(b, `
name: bench
source: {topic: t, key: sensor_id, time: {field: ts}}
outputs:
  - name: spikes
    group_by: [sensor_id]
    detect: {detector: zscore, fields: [speed_kmh], alpha: 0.1, threshold: 3, warm_up: 10}
`)
	dec := NewDecoder(plan)
	const keys = 10_000
	recs := make([]Record, keys)
	for i := range recs {
		if err := dec.Decode(cityReading(i, oracleBase), &recs[i]); err != nil {
			b.Fatal(err)
		}
	}
	op := newRowOperator(plan, dec)
	op.Assign(0, 0)
	var out []Result
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r := &recs[n%keys]
		r.TS = oracleBase + int64(n)/10
		r.Vals[dec.Slot("speed_kmh")] = event.NumberValue(float64(n%97) + float64(n%13)*0.5)
		if op.Add(0, r, 0) != 0 {
			b.Fatalf("event %d is late", n)
		}
		if n++; n%1000 == 0 {
			op.Mark(0, r.TS, true, false)
			out = op.Advance(0, out[:0], 0)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// TestEventsWhereReadsDerived runs an events output whose where reads its
// own derived field: the derive runs first, and its failures are the
// event's rejection.
func TestEventsWhereReadsDerived(t *testing.T) {
	plan := testPlan(t, `
name: w
source: {topic: t, key: k, time: {field: ts, format: epoch_ms}}
outputs:
  - name: o
    events:
      derive: {ratio: 'errors / total'}
      where: 'ratio > 0.5'
      fields: {ratio: float64, k: string}
`)
	dec := NewDecoder(plan)
	op := newRowOperator(plan, dec)
	for _, c := range []struct {
		ev       string
		row      bool
		rejected string
	}{
		{`{"k":"a","ts":1,"errors":3,"total":4}`, true, ""},
		{`{"k":"b","ts":2,"errors":1,"total":4}`, false, ""},
		{`{"k":"c","ts":3,"errors":1}`, false, "derive ratio: no such attribute"},
	} {
		var rec Record
		if err := dec.Decode([]byte(c.ev), &rec); err != nil {
			t.Fatal(err)
		}
		op.Add(0, &rec, 0)
		err := rejectedBy(op)
		if (err == nil) != (c.rejected == "") || err != nil && !strings.Contains(err.Error(), c.rejected) {
			t.Errorf("%s: rejected %v, want %q", c.ev, err, c.rejected)
		}
		out := op.Advance(0, nil, 0)
		if (len(out) == 1) != c.row || c.row && (out[0].Values[0].Num != 0.75 || out[0].Values[1].Str != "a" || out[0].Start != 1) {
			t.Errorf("%s: results %+v, want a row: %v", c.ev, out, c.row)
		}
	}
}

package stream

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/pipeline"
)

// rowStore applies results as a result store does: upserted or deleted
// by identity (the key, event_id included, and the time).
type rowStore map[string]Result

func (s rowStore) apply(rs ...Result) {
	for _, r := range rs {
		id := fmt.Sprintf("%q@%d", r.Key, r.Start)
		if r.Deleted() {
			delete(s, id)
			continue
		}
		s[id] = r
	}
}

// linkedEvents links up and the events pipeline down, which reads up's
// output out, and returns down's decoder and operator.
func linkedEvents(t *testing.T, up *pipeline.Plan, down string) (*pipeline.Plan, *Decoder, Operator) {
	t.Helper()
	dp := testPlan(t, down)
	if err := pipeline.Link([]*pipeline.Plan{up, dp}); err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder(dp)
	return dp, dec, newRowOperator(dp, dec)
}

// pass sends upstream results through the result-topic codec and the
// shuffle's source decoding into op, as the stages do, and returns what
// op emits.
func pass(t *testing.T, s *Schema, dp *pipeline.Plan, dec *Decoder, op Operator, results []Result) []Result {
	t.Helper()
	for _, res := range results {
		key, value, headers := s.Record(&res)
		var r Record
		kind, err := decodeSource(dec, &dp.Source, &kgo.Record{Key: key, Value: value, Headers: headers}, &r)
		if err != nil {
			t.Fatalf("record %s %s: %v", key, value, err)
		}
		r.Kind = kind
		if op.Add(0, &r, 0) != 0 || rejectedBy(op) != nil {
			t.Fatalf("record %s %s: late or rejected: %v", key, value, rejectedBy(op))
		}
	}
	return op.Advance(0, nil, 0)
}

// TestEventsIDReplays: an events row's event_id is the source record's
// position, so the same record read again (a replay from the committed
// offsets) makes the same row, and two records of one key and
// millisecond make two.
func TestEventsIDReplays(t *testing.T) {
	plan := testPlan(t, eventsBenchPipeline)
	rows := rowStore{}
	for range 2 { // the first run, then a replay of the same records
		dec := NewDecoder(plan)
		op := newRowOperator(plan, dec)
		for i, p := range []int32{0, 0, 3} { // partition 0 twice, then partition 3
			r := Record{Offset: 41 + int64(i%2)}
			if err := dec.Decode(cityReading(20, oracleBase), &r); err != nil {
				t.Fatal(err)
			}
			op.Add(p, &r, 0)
		}
		rows.apply(op.Advance(0, nil, 0)...)
	}
	ids := slices.Sorted(maps.Keys(rows))
	want := []string{
		fmt.Sprintf(`["zone-20" "t/0/41"]@%d`, oracleBase),
		fmt.Sprintf(`["zone-20" "t/0/42"]@%d`, oracleBase),
		fmt.Sprintf(`["zone-20" "t/3/41"]@%d`, oracleBase),
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("rows %q, want %q", ids, want)
	}
}

// TestEventsIDOfLinkedSource: an events output reading another
// pipeline's output names its rows by the upstream row. Over session
// windows that correct their results (the sessions of
// testdata/dag/corrections.json: [0,30) and [50,80) merge into [0,80)
// when the late 25 arrives), the update and the delete reach the rows the
// inserts made: the row at 0 ends with n=3 and the row at 50 is gone.
// Over an events output, the upstream event_id passes through: two
// upstream rows of one key and millisecond stay two rows.
func TestEventsIDOfLinkedSource(t *testing.T) {
	t.Run("corrections", func(t *testing.T) {
		up := testPlan(t, `name: logs
source: {topic: logs, key: k, time: {field: ts, format: epoch_s}}
event_time: {max_out_of_orderness: 0s, idle_timeout: 1h, allowed_lateness: 2m}
outputs:
  - name: sessions
    group_by: [k]
    window: {session: {gap: 30s}}
    aggregates: {n: count()}
`)
		dp, dec, op := linkedEvents(t, up, `name: copy
source: {pipeline: logs, output: sessions}
outputs:
  - name: rows
    group_by: [k]
    events: {fields: {n: int64}}
`)
		if got := dp.Outputs[0].Events.Upstream; !slices.Equal(got, []string{"k"}) {
			t.Fatalf("Upstream %q, want the sessions' group field", got)
		}
		udec := NewDecoder(up)
		eng := NewEngine(up, udec)
		eng.Assign(0, 0)
		s := SchemaOf(&up.Outputs[0])
		rows := rowStore{}
		var r Record
		for _, ts := range []int64{0, 50, 100, 25, 170} {
			js, _ := json.Marshal(map[string]any{"k": "a", "ts": ts})
			if err := udec.Decode(js, &r); err != nil {
				t.Fatal(err)
			}
			eng.Add(0, &r, 0)
			rows.apply(pass(t, s, dp, dec, op, eng.Advance(0, nil, 0))...)
		}
		got := map[int64]float64{}
		for _, row := range rows {
			if !slices.Equal(row.Key, []string{"a", "a"}) {
				t.Errorf("row at %d: key %q, want k and the upstream key", row.Start, row.Key)
			}
			got[row.Start/1000] = row.Values[0].Num
		}
		if want := map[int64]float64{0: 3, 100: 1}; len(rows) != len(want) || !maps.Equal(got, want) {
			t.Fatalf("rows (time s: n) %v, want %v", got, want)
		}
	})
	t.Run("events", func(t *testing.T) {
		up := testPlan(t, `name: raw
source: {topic: raw, key: service, time: {field: ts}}
outputs:
  - name: errors
    group_by: [service]
    events: {fields: {latency_ms: float64}}
`)
		dp, dec, op := linkedEvents(t, up, `name: copy
source: {pipeline: raw, output: errors}
outputs:
  - name: rows
    group_by: [service]
    events: {fields: {latency_ms: float64}}
`)
		udec := NewDecoder(up)
		uop := newRowOperator(up, udec)
		for i, ms := range []float64{100, 200} {
			r := Record{Offset: int64(i)}
			if err := udec.Decode(fmt.Appendf(nil, `{"service":"api","ts":"2026-03-01T12:00:00.123Z","latency_ms":%v}`, ms), &r); err != nil {
				t.Fatal(err)
			}
			uop.Add(0, &r, 0)
		}
		out := pass(t, SchemaOf(&up.Outputs[0]), dp, dec, op, uop.Advance(0, nil, 0))
		var got []string
		for _, r := range out {
			got = append(got, fmt.Sprintf("%q=%v", r.Key, r.Values[0].Num))
		}
		if want := []string{`["api" "raw/0/0"]=100`, `["api" "raw/0/1"]=200`}; !slices.Equal(got, want) {
			t.Fatalf("rows %v, want %v", got, want)
		}
	})
}

// TestEventsIDReserved: event_id is a column of every events row; an
// events output cannot group by or project a field of that name.
func TestEventsIDReserved(t *testing.T) {
	for _, out := range []string{
		"group_by: [event_id]\n    events: {fields: {v: float64}}",
		"group_by: [k]\n    events: {fields: {event_id: string}}",
	} {
		_, err := pipeline.Parse("r.yaml", []byte("name: r\nsource: {topic: r, key: k, time: {field: ts}}\noutputs:\n  - name: o\n    "+out+"\n"))
		if err == nil || !strings.Contains(err.Error(), pipeline.ColEventID) {
			t.Errorf("%s: error %v, want one about event_id", out, err)
		}
	}
}

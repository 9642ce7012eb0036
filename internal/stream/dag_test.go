package stream

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/pipeline"
)

// The two levels of TestDAGCorrections: counts per minute and per session
// of one key, with allowed lateness, and a z-score detector over each.
const (
	dagUpstream = `name: logs
source: {topic: logs, key: k, time: {field: ts, format: epoch_s}}
event_time: {max_out_of_orderness: 0s, idle_timeout: 1h, allowed_lateness: 2m}
outputs:
  - name: per_min
    group_by: [k]
    window: {tumbling: 1m}
    aggregates: {n: count()}
  - name: sessions
    group_by: [k]
    window: {session: {gap: 30s}}
    aggregates: {n: count()}
`
	dagMinutes = `name: minute_spikes
source: {pipeline: logs, output: per_min}
event_time: {max_out_of_orderness: 5m, idle_timeout: 1h}
outputs:
  - name: spikes
    group_by: [k]
    detect: {detector: zscore, fields: [n], alpha: 0.5, threshold: 1, warm_up: 2}
`
	dagSessions = `name: session_spikes
source: {pipeline: logs, output: sessions}
event_time: {max_out_of_orderness: 5m, idle_timeout: 1h}
outputs:
  - name: spikes
    group_by: [k]
    detect: {detector: zscore, fields: [n], alpha: 0.5, threshold: 0.001, warm_up: 1}
`
)

// dagLevel is a second-level pipeline of the test: its decoder and its
// detect operator, fed the records of one upstream output.
type dagLevel struct {
	plan  *pipeline.Plan
	dec   *Decoder
	op    Operator
	max   int64
	rows  []string // what the detector wrote
	kinds []string // the kinds of the records it read, with their times
}

// TestDAGCorrections runs a two-level pipeline graph without Kafka: the
// upstream engine's results go through the record codec (as on the result
// topic) and the shuffle stage's source decoding into detect operators.
// An updated final (a late event within the allowed lateness) and a
// session retraction (a late event merging two fired sessions) cross the
// edge: the detector scores the corrected series, never the first one.
// The expectations are worked out by hand in the comments.
func TestDAGCorrections(t *testing.T) {
	up := testPlan(t, dagUpstream)
	minutes, sessions := &dagLevel{plan: testPlan(t, dagMinutes)}, &dagLevel{plan: testPlan(t, dagSessions)}
	if err := pipeline.Link([]*pipeline.Plan{up, minutes.plan, sessions.plan}); err != nil {
		t.Fatal(err)
	}
	if !minutes.plan.Source.Changes || !sessions.plan.Source.Changes {
		t.Fatal("the upstream outputs correct their results: Link must say so")
	}
	levels := map[string]*dagLevel{"per_min": minutes, "sessions": sessions}
	for _, l := range levels {
		l.dec = NewDecoder(l.plan)
		l.op = newRowOperator(l.plan, l.dec)
		l.op.Assign(0, 0)
		l.max = NoWatermark
	}
	dec := NewDecoder(up)
	eng := NewEngine(up, dec)
	eng.Assign(0, 0)
	schemas := map[string]*Schema{}
	for i := range up.Outputs {
		schemas[up.Outputs[i].Name] = SchemaOf(&up.Outputs[i])
	}
	var r Record
	// Upstream, key a, times in seconds (disorder 0, so the watermark is
	// the highest time seen):
	//   0, 50    minute 0 has 2; sessions [0,30) and [50,80)
	//   100      watermark 100: minute 0 final (insert n=2); both sessions
	//            final (the first already at 50, when the watermark passed 30)
	//   25       late, within the lateness (2m): minute 0 updated to n=3;
	//            [25,55) bridges the sessions: [0,80) n=3 updates the row
	//            at 0, the row at 50 is deleted
	//   170      minute 1 (n=1: 100) and session [100,130) final
	//   190, 230 minute 2 (170) final; session [170,220) n=2 final
	//   400      minute 3 (190, 230: n=2) and session [230,260) final
	//   900      minute 6 (400) and session [400,430) final
	//   2000     minute 15 (900) and session [900,930) final
	for _, ts := range []int{0, 50, 100, 25, 170, 190, 230, 400, 900, 2000} {
		if err := dec.Decode(fmt.Appendf(nil, `{"k":"a","ts":%d}`, ts), &r); err != nil {
			t.Fatal(err)
		}
		if late := eng.Add(0, &r, 0); late != 0 {
			t.Fatalf("event at %d is late", ts)
		}
		for _, res := range eng.Advance(0, nil) {
			l := levels[res.Output]
			key, value, headers := schemas[res.Output].Record(&res)
			rec := &kgo.Record{Key: key, Value: value, Headers: headers}
			var dr Record
			kind, err := decodeSource(l.dec, &l.plan.Source, rec, &dr)
			if err != nil {
				t.Fatalf("%s record %s %s: %v", res.Output, key, value, err)
			}
			dr.Kind = kind
			l.kinds = append(l.kinds, fmt.Sprintf("%s@%d", kind, dr.TS/1000))
			if late := l.op.Add(0, &dr, 0); late != 0 {
				t.Fatalf("%s: the %s of the row at %d is late downstream", res.Output, kind, dr.TS/1000)
			}
			l.max = max(l.max, dr.TS)
			l.op.Mark(0, l.max, true, false)
			for _, s := range l.op.Advance(0, nil) {
				v := s.Values
				l.rows = append(l.rows, fmt.Sprintf("%d %s=%v mean=%v sd=%v z=%v", s.Start/1000, v[0].Str, v[1].Num, v[2].Num, v[3].Num, v[4].Num))
			}
		}
	}
	wantKinds := map[string][]string{
		"per_min":  {"insert@0", "update@0", "insert@60", "insert@120", "insert@180", "insert@360", "insert@900"},
		"sessions": {"insert@0", "insert@50", "delete@50", "update@0", "insert@100", "insert@170", "insert@230", "insert@400", "insert@900"},
	}
	// Downstream the watermark is the highest row time minus 5 minutes:
	// 600 at the end, so the points before 600 are scored.
	//   per_min, series 3 (the update, not 2), 1, 1, 2, 1 at 0, 60, 120,
	//   180, 360 (alpha 0.5, warm-up 2, threshold 1):
	//     3    mean 3, variance 0
	//     1    n=1 < warm-up; mean 2, variance 0.5·(0 + 0.5·4) = 1
	//     1    z = (1−2)/1 = −1: a spike; mean 1.5, variance 0.5·(1 + 0.5) = 0.75
	//     2    z = 0.5/√0.75 ≈ 0.58; mean 1.75, variance 0.5·(0.75 + 0.125) = 0.4375
	//     1    z = −0.75/√0.4375 ≈ −1.13: a spike
	//   sessions, series 3 (the merged session), 1, 2, 1, 1 at 0, 100, 170,
	//   230, 400; the deleted row at 50 is gone (warm-up 1, threshold 0.001):
	//     3    mean 3, variance 0
	//     1    standard deviation 0 and not the mean: a spike without a z
	//          (mean 3, standard deviation 0); mean 2, variance 1
	//     2    z = 0: no spike; mean 2, variance 0.5
	//     1    z = −1/√0.5 ≈ −1.41: a spike; mean 1.5, variance 0.5·(0.5 + 0.5) = 0.5
	//     1    z = −0.5/√0.5 ≈ −0.71: a spike
	wantRows := map[string][]string{
		"per_min": {
			"120 n=1 mean=2 sd=1 z=-1",
			fmt.Sprintf("360 n=1 mean=1.75 sd=%v z=%v", math.Sqrt(0.4375), -0.75/math.Sqrt(0.4375)),
		},
		"sessions": {
			"100 n=1 mean=3 sd=0 z=0", // z is null (its Num is 0)
			fmt.Sprintf("230 n=1 mean=2 sd=%v z=%v", math.Sqrt(0.5), -1/math.Sqrt(0.5)),
			fmt.Sprintf("400 n=1 mean=1.5 sd=%v z=%v", math.Sqrt(0.5), -0.5/math.Sqrt(0.5)),
		},
	}
	for name, l := range levels {
		if !reflect.DeepEqual(l.kinds, wantKinds[name]) {
			t.Errorf("%s: records %v, want %v", name, l.kinds, wantKinds[name])
		}
		if !reflect.DeepEqual(l.rows, wantRows[name]) {
			t.Errorf("%s: spikes\n%q\nwant\n%q", name, l.rows, wantRows[name])
		}
	}
}

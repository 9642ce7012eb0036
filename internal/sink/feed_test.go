package sink

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

func feedFixture(t testing.TB) (*Feed, *pipeline.Plan) {
	t.Helper()
	plan, err := pipeline.BuiltinNamed("city")
	if err != nil {
		t.Fatal(err)
	}
	return NewFeed(FeedConfig{Plans: []*pipeline.Plan{plan}}), plan
}

// TestFeedParse checks that a result record written by a window task reads
// back as the write its result makes.
func TestFeedParse(t *testing.T) {
	f, plan := feedFixture(t)
	o := plan.Outputs[1]
	r := stream.Result{Output: o.Name, GroupBy: o.GroupBy, Key: []string{`zone "7"`}, Start: t0, End: t0 + minute, Final: true,
		Names:  []string{"count", "avg", "none", "label"},
		Values: []event.Value{event.NumberValue(3), event.NumberValue(1.5), {}, event.StringValue("a\tb")}}
	retracted := r
	retracted.Retract = true
	for _, res := range []stream.Result{r, retracted} {
		w, err := f.parse(&kgo.Record{Topic: o.Topic, Value: stream.AppendResultJSON(nil, &res)})
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		want := WritesOf(plan.Name, res)[0]
		if !reflect.DeepEqual(w, want) {
			t.Fatalf("parse = %+v (aggs %s), want %+v (aggs %s)", w, w.Aggs, want, want.Aggs)
		}
	}
}

func TestFeedParseRejects(t *testing.T) {
	f, plan := feedFixture(t)
	for _, v := range []string{
		``, `[]`, `{"output":"sensor_1m"}`,
		`{"output":"zone_1m","key":{},"window_start":"2026-03-01T12:00:00Z","window_end":"2026-03-01T12:01:00Z"}`,
		`{"output":"zone_1m","key":{"zone":1},"window_start":"2026-03-01T12:00:00Z","window_end":"2026-03-01T12:01:00Z"}`,
		`{"output":"zone_1m","key":{"zone":"z"},"window_start":"yesterday","window_end":"2026-03-01T12:01:00Z"}`,
	} {
		if w, err := f.parse(&kgo.Record{Topic: plan.Outputs[1].Topic, Value: []byte(v)}); err == nil {
			t.Errorf("parse(%s) = %+v, want an error", v, w)
		}
	}
}

// FuzzFeedParse checks that the parser of result records never panics and
// that what it accepts has the output's key fields.
func FuzzFeedParse(f *testing.F) {
	fd, plan := feedFixture(f)
	o := plan.Outputs[1]
	r := stream.Result{Output: o.Name, GroupBy: o.GroupBy, Key: []string{"z-1"}, Start: t0, End: t0 + minute, Final: true,
		Names: []string{"count"}, Values: []event.Value{event.NumberValue(3)}}
	f.Add(stream.AppendResultJSON(nil, &r))
	r.Retract = true
	f.Add(stream.AppendResultJSON(nil, &r))
	f.Fuzz(func(t *testing.T, v []byte) {
		w, err := fd.parse(&kgo.Record{Topic: o.Topic, Value: v})
		if err != nil {
			return
		}
		if len(w.Key) != len(o.GroupBy) || (!w.Retract && len(w.Aggs) < 2) {
			t.Fatalf("accepted %q as %+v", v, w)
		}
	})
}

package stream

import (
	"errors"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
)

// TestDecodeNumbersAndMissingFields decodes events through where and
// derive expressions written as users write them: integers next to JSON
// numbers, has() of a plain field, a missing field without has().
func TestDecodeNumbersAndMissingFields(t *testing.T) {
	plan := testPlan(t, `
name: p
source: {topic: in, key: id, time: {field: ts}}
where: 'has(level) && level == "error" || kind == "probe"'
derive:
  lat_s: 'latency_ms / 1000'
  slow: 'lat_s > 2'
  span_s: 'duration("90s")'
outputs:
  - name: o
    window: {tumbling: 1m}
    aggregates: {lat: avg(lat_s), slow: count(slow), span: max(span_s)}
`)
	d := NewDecoder(plan)
	lat, slow, span := d.Slot("lat_s"), d.Slot("slow"), d.Slot("span_s")
	for _, c := range []struct {
		in      string
		lat     float64
		slow    bool
		err     string // substring; "" decodes
		filters bool
	}{
		{in: `{"ts":0,"level":"error","latency_ms":2500}`, lat: 2.5, slow: true},
		{in: `{"ts":0,"level":"error","latency_ms":250}`, lat: 0.25},
		{in: `{"ts":0,"level":"info","kind":"x","latency_ms":250}`, filters: true},
		{in: `{"ts":0,"level":null,"kind":"x","latency_ms":250}`, filters: true},
		// No level: has(level) is false, and kind decides.
		{in: `{"ts":0,"kind":"probe","latency_ms":1000}`, lat: 1},
		{in: `{"ts":0,"kind":"x"}`, filters: true},
		// Neither: the where cannot be decided.
		{in: `{"ts":0,"latency_ms":1}`, err: `where "has(level) && level == \"error\" || kind == \"probe\"": the event has no field kind (an expression can test for it with has(kind))`},
		{in: `{"ts":0,"level":"error"}`, err: "derive lat_s: the event has no field latency_ms"},
		{in: `{"ts":0,"level":"error","latency_ms":"fast"}`, err: "derive lat_s: no such overload"},
	} {
		var r Record
		err := d.Decode([]byte(c.in), &r)
		switch {
		case c.filters:
			if !errors.Is(err, ErrFiltered) {
				t.Errorf("%s: %v, want it filtered", c.in, err)
			}
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want %q", c.in, err, c.err)
			}
		case err != nil:
			t.Errorf("%s: %v", c.in, err)
		default:
			if r.Vals[lat] != event.NumberValue(c.lat) || r.Vals[slow] != event.BoolValue(c.slow) || r.Vals[span] != event.NumberValue(90) {
				t.Errorf("%s: lat_s %v slow %v span_s %v, want %v %v 90", c.in, r.Vals[lat], r.Vals[slow], r.Vals[span], c.lat, c.slow)
			}
		}
	}
}

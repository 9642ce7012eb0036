package stream

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDecodeFilteredHasTime: Decode gives the event time of an event the
// where filter drops (the shuffle stage advances the watermark with it),
// and an event whose time cannot be read is an error, not filtered.
func TestDecodeFilteredHasTime(t *testing.T) {
	for _, whereFirst := range []bool{true, false} {
		where := `level == "error"`
		if !whereFirst {
			where = `loud && level == "error"` // reads a derived field: runs after derive
		}
		d := NewDecoder(testPlan(t, fmt.Sprintf(`
name: l
source: {topic: logs, key: service, time: {field: ts}}
where: '%s'
derive: {loud: 'level != "debug"'}
outputs:
  - {name: o, group_by: [service], window: {tumbling: 1m}, aggregates: {n: count()}}
`, where)))
		if d.whereFirst != whereFirst {
			t.Fatalf("where %q: whereFirst %v", where, d.whereFirst)
		}
		var r Record
		err := d.Decode([]byte(`{"service":"api","level":"info","ts":"2026-03-01T12:00:30Z"}`), &r)
		if !errors.Is(err, ErrFiltered) || r.TS != time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC).UnixMilli() {
			t.Errorf("where %q: Decode = %v, ts %d; want filtered with its time", where, err, r.TS)
		}
		if err := d.Decode([]byte(`{"service":"api","level":"info","ts":"yesterday"}`), &r); err == nil || errors.Is(err, ErrFiltered) {
			t.Errorf("where %q: an unreadable time: %v, want an error for the dead-letter topic", where, err)
		}
	}
}

// TestDecodeMaxFuture: with SetMaxFuture, events further ahead of the
// clock are errors naming the limit, for the city schema and any other.
func TestDecodeMaxFuture(t *testing.T) {
	ahead := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339) }
	for _, tc := range []struct {
		name, yaml, event string
	}{
		{"city", "", `{"sensor_id":"s","zone":"z","kind":"air","pm25":1,"ts":%q}`},
		{"generic", `
name: g
source: {topic: t, key: id, time: {field: at}}
outputs:
  - {name: o, group_by: [id], window: {tumbling: 1m}, aggregates: {n: count()}}
`, `{"id":"x","at":%q}`},
	} {
		d := NewDecoder(testPlan(t, tc.yaml))
		var r Record
		if err := d.Decode(fmt.Appendf(nil, tc.event, ahead(50*time.Minute)), &r); err != nil {
			t.Errorf("%s: without a limit: %v", tc.name, err)
		}
		d.SetMaxFuture(5 * time.Minute)
		if err := d.Decode(fmt.Appendf(nil, tc.event, ahead(4*time.Minute)), &r); err != nil {
			t.Errorf("%s: 4 min ahead: %v", tc.name, err)
		}
		err := d.Decode(fmt.Appendf(nil, tc.event, ahead(50*time.Minute)), &r)
		if err == nil || !strings.Contains(err.Error(), "more than 5m0s ahead of the clock") {
			t.Errorf("%s: 50 min ahead: %v, want the limit named", tc.name, err)
		}
	}
}

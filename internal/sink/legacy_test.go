package sink

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// TestSQLiteMigratesLegacyResults opens a database written by Pulse
// before typed tables (window_results with JSON values, sink_offsets,
// keys stored unescaped): its offsets move to pulse_offsets, and each
// output's rows into its typed table, decoded with its schema and with
// their keys rewritten once; rows whose group fields the output no
// longer has stay behind in pulse_legacy_results.
func TestSQLiteMigratesLegacyResults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(legacySchema); err != nil {
		t.Fatal(err)
	}
	for _, row := range []struct{ output, groupBy, key, aggs string }{
		{"sensor_1m", "sensor_id", "s\x1f1", `{"count":3,"speed_kmh_avg":12.5}`},    // one field: the whole key
		{"pair", "a,b", "zone-01\x1fair", `{"count":1,"speed_kmh_max":7}`},          // as before: unchanged
		{"pair", "a,b", "x\x1fy\x1fz", `{"count":2}`},                               // ambiguous: split at the first
		{"zone_1m", "zone", "plain", `{"count":4,"unknown":1}`},                     // a member that is no column
		{"total", "", "", `{"count":5}`},                                            // no group fields
		{"sensor_1m", "sensor_id", "e\x1ef\x1e", `{"count":6,"speed_kmh_max":"x"}`}, // escape byte; a cell of another type
		{"zone_1m", "region", "north", `{"count":7}`},                               // group_by changed since: stays
	} {
		if _, err := old.Exec(`INSERT INTO window_results VALUES ('city', ?, ?, ?, ?, ?, ?, 0)`,
			row.output, row.groupBy, row.key, t0, t0+minute, row.aggs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.Exec(`INSERT INTO sink_offsets VALUES ('city.sensor_1m', 0, 17), ('city.sensor_1m', 1, 4)`); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, want := offsetsOf(t, s), map[TopicPartition]int64{{"city.sensor_1m", 0}: 17, {"city.sensor_1m", 1}: 4}; !reflect.DeepEqual(got, want) {
		t.Fatalf("offsets after the migration %v, want %v", got, want)
	}
	var outs []storedSchema
	for _, o := range []string{"sensor_1m", "pair", "zone_1m", "total"} {
		outs = append(outs, storedSchema{"city", schemaOf(o)})
	}
	if err := s.prepare(context.Background(), outs); err != nil {
		t.Fatal(err)
	}
	num := event.NumberValue
	mk := func(output string, key []string, vals ...event.Value) stream.Result {
		r := stream.Result{Output: output, Key: key, Start: t0, End: t0 + minute, Final: true, Names: aggNames, Values: vals}
		r.GroupBy = testOutputs[output]
		return r
	}
	null := event.Value{}
	want := []stream.Result{
		mk("pair", []string{"x", "y\x1fz"}, num(2), null, null),
		mk("pair", []string{"zone-01", "air"}, num(1), null, num(7)),
		mk("sensor_1m", []string{"e\x1ef\x1e"}, num(6), null, null),
		mk("sensor_1m", []string{"s\x1f1"}, num(3), num(12.5), null),
		mk("total", nil, num(5), null, null),
		mk("zone_1m", []string{"plain"}, num(4), null, null),
	}
	sameRows(t, query(t, s, Query{Pipeline: "city"}), want...)
	sameRows(t, query(t, s, Query{Pipeline: "city", Key: []string{"s\x1f1"}}), want[3])
	var left int64
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM pulse_legacy_results WHERE group_by = 'region'`).Scan(&left); err != nil || left != 1 {
		t.Fatalf("rows left behind: %d, %v; want the one whose group_by changed", left, err)
	}
	// Opening and preparing again changes nothing.
	s.Close()
	s2, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.prepare(context.Background(), outs); err != nil {
		t.Fatal(err)
	}
	sameRows(t, query(t, s2, Query{Pipeline: "city"}), want...)
}

// TestSQLiteMigratesLegacyEvents: an events row of the old table stored
// before rows had an event_id (its key is the group fields alone) is
// moved with an empty event_id; one with it keeps it.
func TestSQLiteMigratesLegacyEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(legacySchema); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`INSERT INTO window_results VALUES
		('ev', 'errors', 'service', 'api', ?, ?, '{"latency_ms":5}', 0),
		('ev', 'errors', 'service,event_id', ?, ?, ?, '{"latency_ms":6}', 0)`,
		t0, t0, event.JoinKey([]string{"api", "in/0/7"}), t0, t0); err != nil {
		t.Fatal(err)
	}
	old.Close()
	plan, err := pipeline.Parse("ev.yaml", []byte(`name: ev
source: {topic: ev_in, key: service, time: {field: ts}}
outputs:
  - name: errors
    group_by: [service]
    events: {fields: {latency_ms: float64}}
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Prepare(context.Background(), []*pipeline.Plan{plan}); err != nil {
		t.Fatal(err)
	}
	sch := stream.SchemaOf(&plan.Outputs[0])
	rows := query(t, s, Query{Pipeline: "ev", Outputs: []*stream.Schema{sch}, Key: []string{"api"}})
	if len(rows) != 2 || !reflect.DeepEqual(rows[0].Key, []string{"api", ""}) || !reflect.DeepEqual(rows[1].Key, []string{"api", "in/0/7"}) ||
		rows[0].Values[0] != event.NumberValue(5) || rows[1].Values[0] != event.NumberValue(6) {
		t.Fatalf("moved events rows %s", fmtRows(rows))
	}
	var n int64
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'pulse_legacy_results'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("pulse_legacy_results still there (%d, %v) with every row moved", n, err)
	}
}

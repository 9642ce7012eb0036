package sink

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/internal/aggregate"
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// windowSchema returns a window output over group with a count and the
// computed columns given.
func windowSchema(output string, group []string, computed ...pipeline.Computed) *stream.Schema {
	f, _ := aggregate.Lookup("count")
	return stream.SchemaOf(&pipeline.Output{Name: output, GroupBy: group,
		Aggregates: []pipeline.Aggregate{{Name: "count", Func: f}}, Computed: computed})
}

func windowRow(s *stream.Schema, key string, start int64, vals ...event.Value) stream.Result {
	r := stream.Result{Output: s.Output, Key: []string{key}, GroupBy: []string{s.Columns[0].Name}, Start: start, End: start + minute,
		Final: true, Names: s.ValueNames(), Values: vals}
	return r
}

// TestStoreSchemaChanges: a column the output gained is added to its
// table (the rows before have it null); a change the table cannot hold
// (another type, other group fields) makes the next version of the
// table, <pipeline>__<output>_v2, and leaves the old one with its rows;
// the catalog keeps track across opening the store again.
func TestStoreSchemaChanges(t *testing.T) { eachStore(t, testStoreSchemaChanges) }

func testStoreSchemaChanges(t *testing.T, s testStore) {
	ctx := context.Background()
	num := event.NumberValue
	v1 := windowSchema("load", []string{"host"})
	a := windowRow(v1, "h-1", t0, num(3))
	if err := Commit(ctx, s, WritesOf("ops", v1, a), nil); err != nil {
		t.Fatal(err)
	}
	// A computed column more.
	v2 := windowSchema("load", []string{"host"}, pipeline.Computed{Name: "ratio", Type: pipeline.TypeFloat64})
	b := windowRow(v2, "h-2", t0, num(4), num(0.5))
	if err := Commit(ctx, s, WritesOf("ops", v2, b), nil); err != nil {
		t.Fatal(err)
	}
	aNull := windowRow(v2, "h-1", t0, num(3), event.Value{})
	sameRows(t, query(t, s, Query{Pipeline: "ops", Outputs: []*stream.Schema{v2}}), aNull, b)
	// The old schema still reads its columns.
	sameRows(t, query(t, s, Query{Pipeline: "ops", Outputs: []*stream.Schema{v1}}), a, windowRow(v1, "h-2", t0, num(4)))
	tables := func(s testStore) []TableInfo {
		t.Helper()
		ts, err := s.Tables(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	if got, want := tables(s), []TableInfo{{"ops__load", "ops", "load"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("tables %v, want %v", got, want)
	}

	// ratio becomes a string: a new version of the table.
	v3 := windowSchema("load", []string{"host"}, pipeline.Computed{Name: "ratio", Type: pipeline.TypeString})
	c := windowRow(v3, "h-3", t0, num(5), event.StringValue("half"))
	if err := Commit(ctx, s, WritesOf("ops", v3, c), nil); err != nil {
		t.Fatal(err)
	}
	sameRows(t, query(t, s, Query{Pipeline: "ops", Outputs: []*stream.Schema{v3}}), c)
	if got, want := tables(s), []TableInfo{{"ops__load_v2", "ops", "load"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("tables %v, want %v", got, want)
	}
	var old int64
	s.scan(t, `SELECT COUNT(*) FROM ops__load`, &old)
	if old != 2 {
		t.Fatalf("the old table has %d rows, want its 2", old)
	}
	// The old schema reads nothing now: its table is not current.
	sameRows(t, query(t, s, Query{Pipeline: "ops", Outputs: []*stream.Schema{v2}}))

	// Grouped by another field: version 3.
	v4 := windowSchema("load", []string{"rack"}, pipeline.Computed{Name: "ratio", Type: pipeline.TypeString})
	d := windowRow(v4, "r-1", t0, num(6), event.StringValue("x"))
	if err := Commit(ctx, s, WritesOf("ops", v4, d), nil); err != nil {
		t.Fatal(err)
	}
	// Opened again, the store knows its tables: same schema, same table.
	s.Close()
	s2 := s.reopen(t)
	if got, want := tables(s2), []TableInfo{{"ops__load_v3", "ops", "load"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("tables after reopening %v, want %v", got, want)
	}
	e := windowRow(v4, "r-2", t0, num(7), event.Value{})
	if err := Commit(ctx, s2, WritesOf("ops", v4, e), nil); err != nil {
		t.Fatal(err)
	}
	sameRows(t, query(t, s2, Query{Pipeline: "ops", Outputs: []*stream.Schema{v4}}), d, e)
	var n int64
	s2.scan(t, `SELECT COUNT(*) FROM pulse_tables WHERE pipeline = 'ops'`, &n)
	if n != 3 {
		t.Fatalf("pulse_tables lists %d tables of ops/load, want 3 versions", n)
	}
}

// TestStoreTableLayout checks a table's columns and types, primary key,
// key index and comment (PostgreSQL) or catalog row (both).
func TestStoreTableLayout(t *testing.T) { eachStore(t, testStoreTableLayout) }

func testStoreTableLayout(t *testing.T, s testStore) {
	commit(t, s, "city", result("zone_kind", "", t0, 1))
	var catalog string
	s.scan(t, `SELECT pipeline || '/' || output || ' ' || kind || ' ' || columns FROM pulse_tables WHERE table_name = 'city__zone_kind'`, &catalog)
	if !strings.HasPrefix(catalog, `city/zone_kind window [{"name":"zone","type":"string","key":true},{"name":"kind","type":"string","key":true},{"name":"window_start","type":"timestamp","key":true},{"name":"window_end","type":"timestamp"},{"name":"count","type":"int64"}`) {
		t.Fatalf("catalog row %s", catalog)
	}
	var idx int64
	if s.d.name() == "sqlite" {
		s.scan(t, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'city__zone_kind_key' AND sql LIKE '%("zone", "kind", "window_start")'`, &idx)
	} else {
		s.scan(t, `SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'city__zone_kind_key' AND indexdef LIKE '%(zone, kind, window_start)'`, &idx)
		var comment string
		s.scan(t, `SELECT obj_description('city__zone_kind'::regclass, 'pg_class')`, &comment)
		if comment != "Pulse results of pipeline city, output zone_kind (window): one row per zone, kind and window_start." {
			t.Fatalf("comment %q", comment)
		}
		var pk string
		s.scan(t, `SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'city__zone_kind'::regclass AND contype = 'p'`, &pk)
		if pk != "PRIMARY KEY (window_start, zone, kind)" {
			t.Fatalf("primary key %s", pk)
		}
		var types string
		s.scan(t, `SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'city__zone_kind' AND table_schema = current_schema()`, &types)
		if !strings.HasPrefix(types, "zone text, kind text, window_start timestamp with time zone, window_end timestamp with time zone, count bigint, speed_kmh_avg double precision") {
			t.Fatalf("column types %s", types)
		}
	}
	if idx != 1 {
		t.Fatal("no key index (zone, kind, window_start)")
	}
}

// TestStoreColumnTypes stores a value of every column type and reads it
// back as it was.
func TestStoreColumnTypes(t *testing.T) { eachStore(t, testStoreColumnTypes) }

func testStoreColumnTypes(t *testing.T, s testStore) {
	o := &pipeline.Output{Name: "typed", Kind: pipeline.KindEvents, GroupBy: []string{"k"}, Columns: []pipeline.Column{
		{Name: "s", Type: pipeline.TypeString}, {Name: "i", Type: pipeline.TypeInt64}, {Name: "f", Type: pipeline.TypeFloat64},
		{Name: "b", Type: pipeline.TypeBool}, {Name: "ts", Type: pipeline.TypeTimestamp}, {Name: "d", Type: pipeline.TypeDecimal},
		{Name: "a", Type: stream.TypeAny}}}
	sch := stream.SchemaOf(o)
	mk := func(id string, vals ...event.Value) stream.Result {
		return stream.Result{Output: "typed", GroupBy: []string{"k", "event_id"}, Key: []string{"x", id}, Start: t0, End: t0,
			Final: true, Names: sch.ValueNames(), Values: vals}
	}
	str, num, b := event.StringValue, event.NumberValue, event.BoolValue
	null := event.Value{}
	rows := []stream.Result{
		mk("1", str("tab\there \\ \"quoted\" ünï"), num(-(1 << 53)), num(0.1), b(true), num(float64(t0+1)), str("12345678901234567890.123456789"), str("a\nb")),
		mk("2", str(""), num(42), num(-1.5e300), b(false), num(0), num(2.5), num(7.25)),
		mk("3", null, null, null, null, null, null, b(true)),
		mk("4", str("n"), num(1), num(1), b(true), num(1), str("-0.001"), null),
	}
	commit := func(rs ...stream.Result) {
		t.Helper()
		if err := Commit(context.Background(), s, WritesOf("ev", sch, rs...), nil); err != nil {
			t.Fatal(err)
		}
	}
	commit(rows...)
	// A decimal reads back as its exact text, as a result record's
	// decimal does.
	rows[1].Values[5] = str("2.5")
	// What JSON writes as null is NULL: a number that is not finite, a
	// value of another kind.
	odd := mk("5", num(3), str("x"), str("y"), num(1), str("z"), b(true), null)
	commit(odd)
	oddWant := mk("5", str("3"), null, null, null, null, null, null)
	sameRows(t, query(t, s, Query{Pipeline: "ev", Outputs: []*stream.Schema{sch}}), append(rows, oddWant)...)
}

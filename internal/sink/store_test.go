package sink

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/internal/aggregate"
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

const minute = 60_000

var t0 = int64(1772366400000) // 2026-03-01T12:00:00Z

var aggNames = []string{"count", "speed_kmh_avg", "speed_kmh_max"}

func openTest(t *testing.T) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nested", "dir", "pulse.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// result returns a final of output over key for the one-minute window
// starting at start, aggregating the given speeds (count, avg, max).
func result(output, key string, start int64, speeds ...float64) stream.Result {
	r := stream.Result{Output: output, GroupBy: []string{"sensor_id"}, Key: []string{key}, Start: start, End: start + minute,
		Final: true, Names: aggNames, Values: make([]event.Value, len(aggNames))}
	if output == "zone_1m" {
		r.GroupBy = []string{"zone"}
	}
	r.Values[0] = event.NumberValue(float64(len(speeds)))
	if len(speeds) > 0 {
		r.Values[1] = event.NumberValue(avg(speeds))
		r.Values[2] = event.NumberValue(slices.Max(speeds))
	}
	return r
}

func avg(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// retract withdraws the result of output over key starting at start.
func retract(output string, key []string, start, end int64) stream.Result {
	return stream.Result{Output: output, GroupBy: []string{"sensor_id"}, Key: key, Start: start, End: end, Kind: stream.KindDelete, Names: aggNames}
}

// testOutputs are the group fields of the outputs the tests write; each
// has the aggregates of result.
var testOutputs = map[string][]string{
	"sensor_1m": {"sensor_id"}, "zone_1m": {"zone"}, "sessions": {"sensor_id"}, "nope": {"sensor_id"},
	"zone_kind": {"zone", "kind"}, "pair": {"a", "b"}, "total_1m": nil, "total": nil,
}

// schemaOf returns the schema of a test output.
func schemaOf(output string) *stream.Schema {
	group, ok := testOutputs[output]
	if !ok {
		panic("no test output " + output)
	}
	agg := func(name, fn, field string) pipeline.Aggregate {
		f, _ := aggregate.LookupWithField(fn)
		if field == "" {
			f, _ = aggregate.Lookup(fn)
		}
		return pipeline.Aggregate{Name: name, Func: f, Field: field}
	}
	return stream.SchemaOf(&pipeline.Output{Name: output, GroupBy: group, Aggregates: []pipeline.Aggregate{
		agg(aggNames[0], "count", ""), agg(aggNames[1], "avg", "speed_kmh"), agg(aggNames[2], "max", "speed_kmh")}})
}

// outs returns the schemas of outputs; none: every test output.
func outs(outputs ...string) []*stream.Schema {
	if len(outputs) == 0 {
		outputs = slices.Sorted(maps.Keys(testOutputs))
	}
	var out []*stream.Schema
	for _, o := range outputs {
		out = append(out, schemaOf(o))
	}
	return out
}

// writes returns the writes of results, each of its output's schema.
func writes(pipeline string, rs ...stream.Result) []Write {
	var out []Write
	for _, r := range rs {
		out = append(out, WritesOf(pipeline, schemaOf(r.Output), r)...)
	}
	return out
}

// query runs q, over every test output unless it names some.
func query(t *testing.T, s Querier, q Query) []Row {
	t.Helper()
	if q.Outputs == nil {
		q.Outputs = outs()
	}
	rows, err := s.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("Query(%+v): %v", q, err)
	}
	return rows
}

func sameRows(t *testing.T, got []Row, want ...stream.Result) {
	t.Helper()
	var w []Row
	for _, r := range want {
		w = append(w, Row{Result: r})
	}
	if len(got) != len(w) {
		t.Fatalf("got %d rows %s, want %d %s", len(got), fmtRows(got), len(w), fmtRows(w))
	}
	for i := range got {
		if got[i].Output != w[i].Output || !slices.Equal(got[i].GroupBy, w[i].GroupBy) || !slices.Equal(got[i].Key, w[i].Key) ||
			got[i].Start != w[i].Start || got[i].End != w[i].End || !reflect.DeepEqual(got[i].Values, w[i].Values) ||
			!got[i].Final || got[i].Schema == nil || got[i].Schema.Output != got[i].Output {
			t.Fatalf("row %d = %s, want %s", i, fmtRows(got[i:i+1]), fmtRows(w[i:i+1]))
		}
	}
}

func fmtRows(rs []Row) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "\n  %s %q=%q [%d,%d) %v", r.Output, r.GroupBy, r.Key, r.Start, r.End, r.Values)
	}
	return b.String()
}

func offsetsOf(t *testing.T, s OffsetReader) map[TopicPartition]int64 {
	t.Helper()
	offs, err := s.Offsets(context.Background())
	if err != nil {
		t.Fatalf("Offsets: %v", err)
	}
	return offs
}

func commit(t *testing.T, s Appendable, pipeline string, rs ...stream.Result) {
	t.Helper()
	if err := Commit(context.Background(), s, writes(pipeline, rs...), nil); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func TestStoreRoundTrip(t *testing.T) { eachStore(t, testStoreRoundTrip) }

func testStoreRoundTrip(t *testing.T, s testStore) {
	ctx := context.Background()
	if offs := offsetsOf(t, s); len(offs) != 0 {
		t.Fatalf("a new database has offsets %v", offs)
	}
	results := []stream.Result{
		result("sensor_1m", "s-1", t0, 10, 20),
		result("zone_1m", "zone-01", t0, 10, 20, 30),
		result("sensor_1m", "s-2", t0+minute, 5),
	}
	cp := map[TopicPartition]int64{{"city", 0}: 17, {"city", 1}: 0, {"other", 3}: 1 << 40}
	if err := Commit(ctx, s, writes("city", results...), cp); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got := offsetsOf(t, s); !reflect.DeepEqual(got, cp) {
		t.Fatalf("offsets %v, want %v", got, cp)
	}
	// Ordered by output, window start, key.
	sameRows(t, query(t, s, Query{Pipeline: "city"}), results[0], results[2], results[1])

	// A later commit moves the offsets it names and keeps the others; a
	// commit without results moves offsets only.
	cp2 := map[TopicPartition]int64{{"city", 0}: 20}
	if err := Commit(ctx, s, nil, cp2); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	want := map[TopicPartition]int64{{"city", 0}: 20, {"city", 1}: 0, {"other", 3}: 1 << 40}
	if got := offsetsOf(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("offsets %v, want %v", got, want)
	}

	// Everything is there after opening the database again.
	s.Close()
	s2 := s.reopen(t)
	if got := offsetsOf(t, s2); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen: offsets %v, want %v", got, want)
	}
	sameRows(t, query(t, s2, Query{Pipeline: "city"}), results[0], results[2], results[1])
}

func TestStoreUpsert(t *testing.T) { eachStore(t, testStoreUpsert) }

func testStoreUpsert(t *testing.T, s testStore) {
	ctx := context.Background()
	r := result("sensor_1m", "s-1", t0, 10, 20)
	for i := range 3 {
		// A processor that crashed before its commit landed sends the same
		// finals again.
		if err := Commit(ctx, s, writes("city", r, r), map[TopicPartition]int64{{"city", 0}: int64(i)}); err != nil {
			t.Fatalf("Commit %d: %v", i, err)
		}
	}
	sameRows(t, query(t, s, Query{Pipeline: "city"}), r)

	// The same window with other aggregates (a final updated by a late
	// event) replaces the row.
	r2 := result("sensor_1m", "s-1", t0, 10, 20, 90)
	commit(t, s, "city", r2)
	sameRows(t, query(t, s, Query{Pipeline: "city"}), r2)

	// A session that grew keeps its start: the row's end is updated too.
	r3 := r2
	r3.End += 5 * minute
	commit(t, s, "city", r3)
	sameRows(t, query(t, s, Query{Pipeline: "city"}), r3)

	// The key of a row is (pipeline, output, window start, group key).
	others := []stream.Result{result("zone_1m", "s-1", t0, 1), result("sensor_1m", "s-1", t0+minute, 2), result("sensor_1m", "s-10", t0, 3)}
	commit(t, s, "city", others...)
	commit(t, s, "other", r)
	sameRows(t, query(t, s, Query{Pipeline: "city"}), r3, others[2], others[1], others[0])
	sameRows(t, query(t, s, Query{Pipeline: "other"}), r)
}

// TestSQLiteRetract checks that a retraction deletes exactly the row of
// its (pipeline, output, window start, key), in order with the other
// results of the same commit.
func TestStoreRetract(t *testing.T) { eachStore(t, testStoreRetract) }

func testStoreRetract(t *testing.T, s testStore) {
	a := result("sessions", "u-1", t0, 1, 2)
	b := result("sessions", "u-1", t0+3*minute, 3)
	other := result("sessions", "u-2", t0, 4)
	commit(t, s, "clicks", a, b, other)
	commit(t, s, "shop", a)

	// A late event bridges a and b: both withdrawn, the merged session
	// written, all in one commit.
	merged := result("sessions", "u-1", t0, 1, 2, 3, 9)
	merged.End = b.End
	commit(t, s, "clicks", retract("sessions", []string{"u-1"}, a.Start, a.End), retract("sessions", []string{"u-1"}, b.Start, b.End), merged)
	sameRows(t, query(t, s, Query{Pipeline: "clicks"}), merged, other)
	sameRows(t, query(t, s, Query{Pipeline: "shop"}), a)

	// Retracting a row that does not exist is not an error; the end of a
	// retraction does not matter, only the start.
	commit(t, s, "clicks", retract("sessions", []string{"u-1"}, t0+minute, t0+2*minute), retract("sessions", []string{"u-2"}, t0, t0+99*minute))
	sameRows(t, query(t, s, Query{Pipeline: "clicks"}), merged)

	// Results apply in order: a retraction followed by a result for the
	// same window leaves the result, the other order deletes it.
	c := result("sessions", "u-3", t0, 5)
	commit(t, s, "clicks", retract("sessions", []string{"u-3"}, t0, t0+minute), c)
	sameRows(t, query(t, s, Query{Pipeline: "clicks"}), merged, c)
	commit(t, s, "clicks", c, retract("sessions", []string{"u-3"}, t0, t0+minute))
	sameRows(t, query(t, s, Query{Pipeline: "clicks"}), merged)

	// A retraction is atomic with its offsets: a failed commit keeps
	// the row.
	s.failOn(t, "pulse_offsets", "INSERT", "")
	if err := Commit(context.Background(), s, writes("clicks", retract("sessions", []string{"u-1"}, t0, 0)), map[TopicPartition]int64{{"city.sessions", 0}: 1}); err == nil {
		t.Fatal("the failing commit returned no error")
	}
	sameRows(t, query(t, s, Query{Pipeline: "clicks"}), merged)
}

// TestSQLiteMultiFieldKey checks group keys of several fields: stored,
// returned and queried as their list of values.
func TestStoreMultiFieldKey(t *testing.T) { eachStore(t, testStoreMultiFieldKey) }

func testStoreMultiFieldKey(t *testing.T, s testStore) {
	mk := func(zone, kind string, start int64, v float64) stream.Result {
		r := result("zone_kind", "", start, v)
		r.GroupBy, r.Key = []string{"zone", "kind"}, []string{zone, kind}
		return r
	}
	za, zb := mk("zone-01", "air", t0, 1), mk("zone-01", "traffic", t0, 2)
	zc, zd := mk("zone-02", "air", t0, 3), mk("zone-01", "air", t0+minute, 4)
	// Values that a naive "," or "" join would confuse.
	ze, zf := mk("a,b", "c", t0, 5), mk("a", "b,c", t0, 6)
	zg := mk("", "air", t0, 7)
	commit(t, s, "city", za, zb, zc, zd, ze, zf, zg)
	tests := []struct {
		name string
		key  []string
		want []stream.Result
	}{
		{"both fields", []string{"zone-01", "air"}, []stream.Result{za, zd}},
		{"the other kind", []string{"zone-01", "traffic"}, []stream.Result{zb}},
		{"the other zone", []string{"zone-02", "air"}, []stream.Result{zc}},
		{"no such pair", []string{"zone-02", "traffic"}, nil},
		{"a prefix is not a key", []string{"zone-01"}, nil},
		{"commas stay inside a value", []string{"a,b", "c"}, []stream.Result{ze}},
		{"commas stay inside a value 2", []string{"a", "b,c"}, []stream.Result{zf}},
		{"empty value", []string{"", "air"}, []stream.Result{zg}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sameRows(t, query(t, s, Query{Pipeline: "city", Key: tt.key}), tt.want...)
		})
	}
	// Retracting a multi-field key deletes that pair only.
	r := retract("zone_kind", []string{"zone-01", "air"}, t0, t0+minute)
	commit(t, s, "city", r)
	sameRows(t, query(t, s, Query{Pipeline: "city", Key: []string{"zone-01", "air"}}), zd)
	sameRows(t, query(t, s, Query{Pipeline: "city", Key: []string{"zone-01", "traffic"}}), zb)
}

// TestSQLiteNoGroupBy checks an output without group_by: one row per
// window, with no key fields.
func TestStoreNoGroupBy(t *testing.T) { eachStore(t, testStoreNoGroupBy) }

func testStoreNoGroupBy(t *testing.T, s testStore) {
	r := result("total_1m", "", t0, 1, 2)
	r.GroupBy, r.Key = nil, nil
	commit(t, s, "city", r)
	sameRows(t, query(t, s, Query{Pipeline: "city"}), r)
	sameRows(t, query(t, s, Query{Pipeline: "city", Key: []string{}}), r)
}

func TestStoreQueryFilters(t *testing.T) { eachStore(t, testStoreQueryFilters) }

func testStoreQueryFilters(t *testing.T, s testStore) {
	var all []stream.Result
	for w := range int64(4) {
		for _, k := range []string{"s-1", "s-2"} {
			all = append(all, result("sensor_1m", k, t0+w*minute, float64(w)))
		}
		all = append(all, result("zone_1m", "zone-01", t0+w*minute, float64(w)))
	}
	all = append(all, result("zone_1m", "zone-01", t0-minute, 7)) // before t0
	commit(t, s, "city", all...)
	commit(t, s, "other", all[:2]...)
	sensor := func(k string, w int64) stream.Result { return result("sensor_1m", k, t0+w*minute, float64(w)) }
	zone := func(w int64) stream.Result { return result("zone_1m", "zone-01", t0+w*minute, float64(w)) }
	before := result("zone_1m", "zone-01", t0-minute, 7)
	key := func(k string) []string { return []string{k} }
	tests := []struct {
		name string
		q    Query
		want []stream.Result
	}{
		{"one output", Query{Outputs: outs("zone_1m")}, []stream.Result{before, zone(0), zone(1), zone(2), zone(3)}},
		{"two outputs", Query{Outputs: outs("zone_1m", "sensor_1m"), From: t0 + 3*minute},
			[]stream.Result{sensor("s-1", 3), sensor("s-2", 3), zone(3)}},
		{"unknown output", Query{Outputs: outs("nope")}, nil},
		{"key", Query{Key: key("s-2")}, []stream.Result{sensor("s-2", 0), sensor("s-2", 1), sensor("s-2", 2), sensor("s-2", 3)}},
		{"key and output", Query{Key: key("s-2"), Outputs: outs("zone_1m")}, nil},
		{"key is exact", Query{Key: key("s-")}, nil},
		{"from is inclusive", Query{Key: key("s-1"), From: t0 + 2*minute}, []stream.Result{sensor("s-1", 2), sensor("s-1", 3)}},
		{"from inside a window excludes it", Query{Key: key("s-1"), From: t0 + 2*minute + 1}, []stream.Result{sensor("s-1", 3)}},
		{"to is exclusive", Query{Key: key("s-1"), To: t0 + 2*minute}, []stream.Result{sensor("s-1", 0), sensor("s-1", 1)}},
		{"to inside a window includes it", Query{Key: key("s-1"), To: t0 + 2*minute + 1}, []stream.Result{sensor("s-1", 0), sensor("s-1", 1), sensor("s-1", 2)}},
		{"from and to", Query{Outputs: outs("zone_1m"), From: t0 - minute, To: t0 + minute}, []stream.Result{before, zone(0)}},
		{"empty range", Query{From: t0 + minute, To: t0 + minute}, nil},
		{"limit", Query{Outputs: outs("sensor_1m"), Limit: 3}, []stream.Result{sensor("s-1", 0), sensor("s-2", 0), sensor("s-1", 1)}},
		{"other pipeline", Query{Pipeline: "other"}, []stream.Result{sensor("s-1", 0), sensor("s-2", 0)}},
		{"unknown pipeline", Query{Pipeline: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.q.Pipeline == "" {
				tt.q.Pipeline = "city"
			}
			sameRows(t, query(t, s, tt.q), tt.want...)
		})
	}
}

// TestStoreCommitAtomic checks that a commit that fails at any point
// leaves the rows and the offsets of the last successful commit.
func TestStoreCommitAtomic(t *testing.T) {
	first := []stream.Result{result("sensor_1m", "s-1", t0, 1), result("sensor_1m", "s-4", t0, 8)}
	firstCP := map[TopicPartition]int64{{"city", 0}: 10}
	second := []stream.Result{
		result("sensor_1m", "s-1", t0, 1, 2), // would update the first row
		retract("sensor_1m", []string{"s-4"}, t0, t0+minute),
		result("sensor_1m", "s-2", t0, 3),
		result("sensor_1m", "s-3", t0, 4),
	}
	afterSecond := []stream.Result{second[0], second[2], second[3]}
	secondCP := map[TopicPartition]int64{{"city", 0}: 20, {"city", 1}: 3}
	const table = "city__sensor_1m"
	tests := []struct {
		name               string
		table, event, when string // the write that fails
		ctx                func() context.Context
	}{
		{"cancelled context", "", "", "", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
		{"offset write fails after the rows", "pulse_offsets", "INSERT", "", context.Background},
		{"third row fails", table, "INSERT", `NEW."sensor_id" = 's-3'`, context.Background},
		{"retraction fails", table, "DELETE", "", context.Background},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, s testStore) {
				if err := Commit(context.Background(), s, writes("city", first...), firstCP); err != nil {
					t.Fatal(err)
				}
				if tt.table != "" {
					s.failOn(t, tt.table, tt.event, tt.when)
				}
				if err := Commit(tt.ctx(), s, writes("city", second...), secondCP); err == nil {
					t.Fatal("the failing commit returned no error")
				}
				sameRows(t, query(t, s, Query{Pipeline: "city"}), first...)
				if got := offsetsOf(t, s); !reflect.DeepEqual(got, firstCP) {
					t.Fatalf("offsets %v, want the first %v", got, firstCP)
				}
				// The store still works once the cause is gone.
				if tt.table != "" {
					s.noFail(t, tt.table)
				}
				if err := Commit(context.Background(), s, writes("city", second...), secondCP); err != nil {
					t.Fatalf("Commit after the failure: %v", err)
				}
				sameRows(t, query(t, s, Query{Pipeline: "city"}), afterSecond...)
				if got := offsetsOf(t, s); !reflect.DeepEqual(got, secondCP) {
					t.Fatalf("offsets %v, want %v", got, secondCP)
				}
			})
		})
	}
}

// TestStoreKeysWithSeparator: a value holding the byte that joined the
// fields of a key came back cut at it, and two different keys shared a
// row.
func TestStoreKeysWithSeparator(t *testing.T) { eachStore(t, testStoreKeysWithSeparator) }

func testStoreKeysWithSeparator(t *testing.T, s testStore) {
	mk := func(a, b string, v float64) stream.Result {
		r := result("pair", "", t0, v)
		r.GroupBy, r.Key = []string{"a", "b"}, []string{a, b}
		return r
	}
	one := result("sensor_1m", "s\x1f1", t0, 9)
	x, y := mk("a\x1fb", "c", 1), mk("a", "b\x1fc", 2)
	z := mk("e\x1e", "\x1ef", 3)
	commit(t, s, "city", x, y, z, one)
	// Ordered by the fields, one after the other.
	sameRows(t, query(t, s, Query{Pipeline: "city"}), y, x, z, one)
	sameRows(t, query(t, s, Query{Pipeline: "city", Key: []string{"a\x1fb", "c"}}), x)
	sameRows(t, query(t, s, Query{Pipeline: "city", Key: []string{"a", "b\x1fc"}}), y)
	sameRows(t, query(t, s, Query{Pipeline: "city", Key: []string{"s\x1f1"}}), one)
}

// TestStoreLargeCounts: a count of a million is stored as the integer
// 1000000.
func TestStoreLargeCounts(t *testing.T) { eachStore(t, testStoreLargeCounts) }

func testStoreLargeCounts(t *testing.T, s testStore) {
	r := result("sensor_1m", "s-1", t0)
	r.Values[0] = event.NumberValue(1404214)
	commit(t, s, "city", r)
	rows := query(t, s, Query{Pipeline: "city"})
	var stored int64
	s.scan(t, `SELECT "count" FROM city__sensor_1m`, &stored)
	if len(rows) != 1 || rows[0].Values[0] != event.NumberValue(1404214) || stored != 1404214 {
		t.Fatalf("stored %s as %d", fmtRows(rows), stored)
	}
}

// TestStoreAfter pages through the results with the cursor of each
// page's last row: every row once, in order.
func TestStoreAfter(t *testing.T) { eachStore(t, testStoreAfter) }

func testStoreAfter(t *testing.T, s testStore) {
	var all []stream.Result
	for w := range int64(3) {
		for _, k := range []string{"s-1", "s-2", "s\x1f3"} {
			all = append(all, result("sensor_1m", k, t0+w*minute, float64(w)))
		}
		all = append(all, result("zone_1m", "zone-01", t0+w*minute, 1))
	}
	commit(t, s, "city", all...)
	whole := query(t, s, Query{Pipeline: "city"})
	var paged []Row
	q := Query{Pipeline: "city", Limit: 5}
	for range len(all) {
		page := query(t, s, q)
		paged = append(paged, page...)
		if len(page) < q.Limit {
			break
		}
		c := page[len(page)-1].Cursor()
		q.After = &c
	}
	if len(paged) != len(whole) {
		t.Fatalf("paged %d rows, want %d", len(paged), len(whole))
	}
	for i := range whole {
		if paged[i].Output != whole[i].Output || paged[i].Start != whole[i].Start || !slices.Equal(paged[i].Key, whole[i].Key) {
			t.Fatalf("row %d paged %s, want %s", i, fmtRows(paged[i:i+1]), fmtRows(whole[i:i+1]))
		}
	}
}

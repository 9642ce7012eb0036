package sink

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/stream"
)

const minute = 60_000

var t0 = int64(1772366400000) // 2026-03-01T12:00:00Z

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

// result returns a final of output over key for the window starting at
// start, aggregating the given speeds.
func result(output, key string, start int64, speeds ...float64) stream.Result {
	r := stream.Result{Output: output, GroupBy: "sensor_id", Key: key, Start: start, End: start + minute, Final: true}
	if output == "zone_1m" {
		r.GroupBy = "zone"
	}
	for _, v := range speeds {
		var rd event.Reading
		rd.Set(event.SpeedKmh, v)
		r.State.Add(&rd)
	}
	return r
}

func rowOf(r stream.Result) Row {
	return Row{Output: r.Output, GroupBy: r.GroupBy, Key: r.Key, Start: r.Start, End: r.End, Aggs: stream.AppendAggsJSON(nil, &r.State)}
}

func query(t *testing.T, s *SQLite, q Query) []Row {
	t.Helper()
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
		w = append(w, rowOf(r))
	}
	if len(got) != len(w) {
		t.Fatalf("got %d rows %s, want %d %s", len(got), fmtRows(got), len(w), fmtRows(w))
	}
	for i := range got {
		if got[i].Output != w[i].Output || got[i].GroupBy != w[i].GroupBy || got[i].Key != w[i].Key ||
			got[i].Start != w[i].Start || got[i].End != w[i].End || string(got[i].Aggs) != string(w[i].Aggs) {
			t.Fatalf("row %d = %s, want %s", i, fmtRows(got[i:i+1]), fmtRows(w[i:i+1]))
		}
	}
}

func fmtRows(rs []Row) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "\n  %s %s=%s [%d,%d) %s", r.Output, r.GroupBy, r.Key, r.Start, r.End, r.Aggs)
	}
	return b.String()
}

func checkpoint(t *testing.T, s *SQLite, pipeline string) (stream.Checkpoint, bool) {
	t.Helper()
	cp, ok, err := s.LoadCheckpoint(context.Background(), pipeline)
	if err != nil {
		t.Fatalf("LoadCheckpoint: %v", err)
	}
	return cp, ok
}

func TestSQLiteRoundTrip(t *testing.T) {
	s, path := openTest(t)
	ctx := context.Background()
	if _, ok := checkpoint(t, s, "city"); ok {
		t.Fatal("a new database has a checkpoint")
	}
	results := []stream.Result{
		result("sensor_1m", "s-1", t0, 10, 20),
		result("zone_1m", "zone-01", t0, 10, 20, 30),
		result("sensor_1m", "s-2", t0+minute, 5),
	}
	cp := stream.Checkpoint{Offsets: map[int32]int64{0: 17, 1: 0, 3: 1 << 40}, State: []byte{0, 1, 2, 255}}
	if err := s.Commit(ctx, "city", results, cp); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	got, ok := checkpoint(t, s, "city")
	if !ok || !reflect.DeepEqual(got, cp) {
		t.Fatalf("checkpoint %+v %v, want %+v", got, ok, cp)
	}
	// Ordered by output, window start, key.
	sameRows(t, query(t, s, Query{Pipeline: "city"}), results[0], results[2], results[1])

	// A later commit replaces the checkpoint; a commit without results is
	// a checkpoint only.
	cp2 := stream.Checkpoint{Offsets: map[int32]int64{0: 20}, State: nil}
	if err := s.Commit(ctx, "city", nil, cp2); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got, _ := checkpoint(t, s, "city"); !reflect.DeepEqual(got, cp2) {
		t.Fatalf("checkpoint %+v, want %+v", got, cp2)
	}

	// Everything is there after reopening the file.
	s.Close()
	s2, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, _ := checkpoint(t, s2, "city"); !reflect.DeepEqual(got, cp2) {
		t.Fatalf("after reopen: checkpoint %+v, want %+v", got, cp2)
	}
	sameRows(t, query(t, s2, Query{Pipeline: "city"}), results[0], results[2], results[1])
}

func TestSQLiteUpsert(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	r := result("sensor_1m", "s-1", t0, 10, 20)
	for i := range 3 {
		// A processor that crashed before its commit landed sends the same
		// finals again.
		if err := s.Commit(ctx, "city", []stream.Result{r, r}, stream.Checkpoint{Offsets: map[int32]int64{0: int64(i)}}); err != nil {
			t.Fatalf("Commit %d: %v", i, err)
		}
	}
	sameRows(t, query(t, s, Query{Pipeline: "city"}), r)

	// The same window with other aggregates replaces the row.
	r2 := result("sensor_1m", "s-1", t0, 10, 20, 90)
	if err := s.Commit(ctx, "city", []stream.Result{r2}, stream.Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	sameRows(t, query(t, s, Query{Pipeline: "city"}), r2)

	// The key of a row is (pipeline, output, window start, group key).
	others := []stream.Result{result("zone_1m", "s-1", t0, 1), result("sensor_1m", "s-1", t0+minute, 2), result("sensor_1m", "s-10", t0, 3)}
	if err := s.Commit(ctx, "city", others, stream.Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "other", []stream.Result{r}, stream.Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	sameRows(t, query(t, s, Query{Pipeline: "city"}), r2, others[2], others[1], others[0])
	sameRows(t, query(t, s, Query{Pipeline: "other"}), r)
}

func TestSQLiteQueryFilters(t *testing.T) {
	s, _ := openTest(t)
	var all []stream.Result
	for w := range int64(4) {
		for _, k := range []string{"s-1", "s-2"} {
			all = append(all, result("sensor_1m", k, t0+w*minute, float64(w)))
		}
		all = append(all, result("zone_1m", "zone-01", t0+w*minute, float64(w)))
	}
	all = append(all, result("zone_1m", "zone-01", t0-minute, 7)) // before t0
	if err := s.Commit(context.Background(), "city", all, stream.Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(context.Background(), "other", all[:2], stream.Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	sensor := func(k string, w int64) stream.Result { return result("sensor_1m", k, t0+w*minute, float64(w)) }
	zone := func(w int64) stream.Result { return result("zone_1m", "zone-01", t0+w*minute, float64(w)) }
	before := result("zone_1m", "zone-01", t0-minute, 7)
	tests := []struct {
		name string
		q    Query
		want []stream.Result
	}{
		{"one output", Query{Outputs: []string{"zone_1m"}}, []stream.Result{before, zone(0), zone(1), zone(2), zone(3)}},
		{"two outputs", Query{Outputs: []string{"zone_1m", "sensor_1m"}, From: t0 + 3*minute},
			[]stream.Result{sensor("s-1", 3), sensor("s-2", 3), zone(3)}},
		{"unknown output", Query{Outputs: []string{"nope"}}, nil},
		{"key", Query{Key: "s-2"}, []stream.Result{sensor("s-2", 0), sensor("s-2", 1), sensor("s-2", 2), sensor("s-2", 3)}},
		{"key and output", Query{Key: "s-2", Outputs: []string{"zone_1m"}}, nil},
		{"from is inclusive", Query{Key: "s-1", From: t0 + 2*minute}, []stream.Result{sensor("s-1", 2), sensor("s-1", 3)}},
		{"from inside a window excludes it", Query{Key: "s-1", From: t0 + 2*minute + 1}, []stream.Result{sensor("s-1", 3)}},
		{"to is exclusive", Query{Key: "s-1", To: t0 + 2*minute}, []stream.Result{sensor("s-1", 0), sensor("s-1", 1)}},
		{"to inside a window includes it", Query{Key: "s-1", To: t0 + 2*minute + 1}, []stream.Result{sensor("s-1", 0), sensor("s-1", 1), sensor("s-1", 2)}},
		{"from and to", Query{Outputs: []string{"zone_1m"}, From: t0 - minute, To: t0 + minute}, []stream.Result{before, zone(0)}},
		{"empty range", Query{From: t0 + minute, To: t0 + minute}, nil},
		{"limit", Query{Outputs: []string{"sensor_1m"}, Limit: 3}, []stream.Result{sensor("s-1", 0), sensor("s-2", 0), sensor("s-1", 1)}},
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

// TestSQLiteCommitAtomic checks that a commit that fails at any point
// leaves the rows and the checkpoint of the last successful commit.
func TestSQLiteCommitAtomic(t *testing.T) {
	first := []stream.Result{result("sensor_1m", "s-1", t0, 1)}
	firstCP := stream.Checkpoint{Offsets: map[int32]int64{0: 10}, State: []byte("state-1")}
	second := []stream.Result{
		result("sensor_1m", "s-1", t0, 1, 2), // would update the first row
		result("sensor_1m", "s-2", t0, 3),
		result("sensor_1m", "s-3", t0, 4),
	}
	secondCP := stream.Checkpoint{Offsets: map[int32]int64{0: 20}, State: []byte("state-2")}
	tests := []struct {
		name   string
		inject string // SQL run before the failing commit
		ctx    func() context.Context
	}{
		{"cancelled context", "", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
		{"checkpoint write fails after the rows", `CREATE TRIGGER fail BEFORE UPDATE ON checkpoints BEGIN SELECT RAISE(ABORT, 'injected'); END`, context.Background},
		{"third row fails", `CREATE TRIGGER fail BEFORE INSERT ON window_results WHEN NEW.group_key = 's-3' BEGIN SELECT RAISE(ABORT, 'injected'); END`, context.Background},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t)
			if err := s.Commit(context.Background(), "city", first, firstCP); err != nil {
				t.Fatal(err)
			}
			if tt.inject != "" {
				if _, err := s.db.Exec(tt.inject); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Commit(tt.ctx(), "city", second, secondCP); err == nil {
				t.Fatal("the failing commit returned no error")
			}
			sameRows(t, query(t, s, Query{Pipeline: "city"}), first...)
			if got, _ := checkpoint(t, s, "city"); !reflect.DeepEqual(got, firstCP) {
				t.Fatalf("checkpoint %+v, want the first %+v", got, firstCP)
			}
			// The store still works once the cause is gone.
			if _, err := s.db.Exec(`DROP TRIGGER IF EXISTS fail`); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(context.Background(), "city", second, secondCP); err != nil {
				t.Fatalf("Commit after the failure: %v", err)
			}
			sameRows(t, query(t, s, Query{Pipeline: "city"}), second...)
			if got, _ := checkpoint(t, s, "city"); !reflect.DeepEqual(got, secondCP) {
				t.Fatalf("checkpoint %+v, want %+v", got, secondCP)
			}
		})
	}
}

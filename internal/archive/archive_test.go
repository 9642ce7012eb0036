package archive

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/checkfor"
)

// TestArchiveCity archives city readings over three hours and reads them
// back with arrow-go: every valid event once, typed, with its offsets
// in the file metadata and statistics for pruning.
func TestArchiveCity(t *testing.T) {
	opts := cluster(t)
	in := cityEvents(3000, true, 1)
	produce(t, opts, "city", in)
	st, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, stop := start(t, Config{Sources: []Source{citySource}, Kafka: opts, Store: st, Roll: Roll{Rows: 400, Age: 100 * time.Millisecond}, RowGroupRows: 100, Workers: 2})
	checkfor.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error { return exactlyOnce(readArrow(t, st, "city"), in) })
	stop()
	checkExactlyOnce(t, readArrow(t, st, "city"), in)
	bad := 0
	for _, e := range in {
		if e.bad {
			bad++
		}
	}
	if got := counter(a.m.skipped.WithLabelValues("city")); got != float64(bad) {
		t.Errorf("pulse_archive_skipped_records_total = %v, want %d", got, bad)
	}
	checkFiles(t, st, "city", 100)
}

// checkFiles checks every file of stream (see eachFile), its page
// indexes, row group sizes and its event_time and kafka_offset
// statistics against its hour and offsets.
func checkFiles(t *testing.T, st Store, stream string, maxGroup int64) {
	t.Helper()
	eachFile(t, st, stream, stream, func(n string, p Part, pf *parquet.File) {
		if len(pf.ColumnIndexes()) != len(pf.Schema().Columns())*len(pf.Metadata().RowGroups) {
			t.Errorf("%s: %d page indexes, want one per column and row group", n, len(pf.ColumnIndexes()))
		}
		ti, _ := pf.Schema().Lookup(ColEventTime)
		oi, _ := pf.Schema().Lookup(ColOffset)
		for _, rg := range pf.Metadata().RowGroups {
			if rg.NumRows > maxGroup {
				t.Errorf("%s: row group of %d rows, want at most %d", n, rg.NumRows, maxGroup)
			}
			ts := rg.Columns[ti.ColumnIndex].MetaData.Statistics
			lo, hi := parquet.Int64Value(0).Kind().Value(ts.MinValue).Int64(), parquet.Int64Value(0).Kind().Value(ts.MaxValue).Int64()
			if len(ts.MinValue) == 0 || HourOf(lo) != p.Hour || HourOf(hi) != p.Hour {
				t.Errorf("%s: event_time statistics [%d, %d] outside the file's hour %s", n, lo, hi, p.Hour)
			}
			os := rg.Columns[oi.ColumnIndex].MetaData.Statistics
			olo, ohi := parquet.Int64Value(0).Kind().Value(os.MinValue).Int64(), parquet.Int64Value(0).Kind().Value(os.MaxValue).Int64()
			if olo < p.From || ohi >= p.To {
				t.Errorf("%s: kafka_offset statistics [%d, %d] outside [%d, %d)", n, olo, ohi, p.From, p.To)
			}
		}
	})
}

// TestResumeAfterCrash leaves the archive as a kill -9 between two files
// of one roll would (a file of the last roll missing, a temporary file in
// the spool) and checks that a new archiver completes it: every event
// exactly once, the leftover removed.
func TestResumeAfterCrash(t *testing.T) {
	opts := cluster(t)
	in := cityEvents(2000, false, 2)
	produce(t, opts, "city", in)
	dir := t.TempDir()
	st, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Sources: []Source{citySource}, Kafka: opts, Store: st, Roll: Roll{Rows: 300, Age: time.Hour}}
	_, stop := start(t, cfg)
	checkfor.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if n := len(readArrow(t, st, "city")); n < 4*300 {
			return fmt.Errorf("%d events archived, want a full roll of every partition", n)
		}
		return nil
	})
	stop()
	// The archive holds each partition's events up to its last roll's end.
	last, err := (&Archiver{store: st}).lastRolls(context.Background(), "city")
	if err != nil {
		t.Fatal(err)
	}
	var prefix []*input
	for _, e := range in {
		if e.off < last[e.part].To {
			prefix = append(prefix, e)
		}
	}
	checkExactlyOnce(t, readArrow(t, st, "city"), prefix)
	// Remove one file of the last roll of partition 0, which has several.
	names, _ := st.List(context.Background(), "stream=city/")
	var roll []string
	for _, n := range names {
		if p, _ := ParsePart(n); p.Partition == last[0].Partition && p.From == last[0].From {
			roll = append(roll, n)
		}
	}
	if len(roll) < 2 {
		t.Fatalf("the last roll of partition 0 has %d files, want several hours", len(roll))
	}
	if err := os.Remove(filepath.Join(dir, roll[0])); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(st.SpoolDir(), "city-p000-123"+Ext+tmpExt)
	if err := os.WriteFile(leftover, []byte("half a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exactlyOnce(readArrow(t, st, "city"), in); err == nil || !strings.Contains(err.Error(), "archive holds") {
		t.Fatalf("after removing %s: %v, want events missing", roll[0], err)
	}
	// More events arrive while it was down.
	more := cityEvents(500, false, 3)
	produce(t, opts, "city", more)
	in = append(in, more...)
	cfg.Roll.Age = 200 * time.Millisecond
	_, stop = start(t, cfg)
	checkfor.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error { return exactlyOnce(readArrow(t, st, "city"), in) })
	stop()
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("spool leftover %s not removed: %v", leftover, err)
	}
	checkFiles(t, st, "city", 122_880)
}

// TestArchiveJSON archives a stream without a schema: its events as JSON
// text, the event time read from its time field.
func TestArchiveJSON(t *testing.T) {
	opts := cluster(t)
	base := time.Date(2026, 12, 1, 9, 59, 0, 0, time.UTC)
	var in []*input
	for i := 0; i < 300; i++ {
		ts := base.Add(time.Duration(i) * time.Second)
		in = append(in, &input{key: fmt.Sprintf("svc-%d", i%7), ts: ts.UnixMilli(),
			val: []byte(fmt.Sprintf(`{"service":"svc-%d","at":%q,"level":"error","n":%d}`, i%7, ts.Format(time.RFC3339), i))})
	}
	produce(t, opts, "logs", in)
	st, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src := Source{Stream: "logs", Topic: "logs", TimeField: "at", TimeFormat: "auto"}
	_, stop := start(t, Config{Sources: []Source{src}, Kafka: opts, Store: st, Roll: Roll{Age: 50 * time.Millisecond}})
	var got []row
	checkfor.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		got = readArrow(t, st, "logs")
		if len(got) != len(in) {
			return fmt.Errorf("%d of %d events archived", len(got), len(in))
		}
		return nil
	})
	stop()
	byOff := map[[2]int64]*input{}
	for _, e := range in {
		byOff[[2]int64{int64(e.part), e.off}] = e
	}
	hours := map[string]bool{}
	for _, r := range got {
		e := byOff[[2]int64{int64(r.part), r.off}]
		if e == nil || r.eventJSON != string(e.val) || r.ts != e.ts || r.key != e.key {
			t.Fatalf("archived %+v, input %+v", r, e)
		}
		hours[filepath.Dir(r.file)] = true
	}
	if len(hours) != 2 {
		t.Errorf("events in %d hour folders, want 2 (09 and 10): %v", len(hours), hours)
	}
}

// TestTopicCreatedAgain: an archive holding offsets that its topic no
// longer has (the topic was deleted and created again) stops archiving
// with the metric instead of writing the new offsets over the old files.
func TestTopicCreatedAgain(t *testing.T) {
	opts := cluster(t)
	in := cityEvents(500, false, 11)
	produce(t, opts, "city", in)
	st, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Sources: []Source{citySource}, Kafka: opts, Store: st, Roll: Roll{Age: 50 * time.Millisecond}}
	_, stop := start(t, cfg)
	checkfor.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error { return exactlyOnce(readArrow(t, st, "city"), in) })
	stop()

	cfg.Kafka = cluster(t) // the same topic name, empty again
	produce(t, cfg.Kafka, "city", cityEvents(50, false, 12))
	a, stop := start(t, cfg)
	checkfor.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if counter(a.m.failing) != 1 {
			return fmt.Errorf("pulse_archive_failing = %v", counter(a.m.failing))
		}
		return nil
	})
	stop()
	checkExactlyOnce(t, readArrow(t, st, "city"), in)
}

// TestRewriteKeepsRollBounds: the last roll written again after a restart
// ends exactly where it ended, even when fetches come in small pieces and
// the roll bounds (rows, age) would end it sooner.
func TestRewriteKeepsRollBounds(t *testing.T) {
	opts := cluster(t)
	in := cityEvents(2000, false, 13)
	produce(t, opts, "city", in)
	st, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Sources: []Source{citySource}, Kafka: opts, Store: st, Roll: Roll{Rows: 1 << 20, Age: 500 * time.Millisecond}}
	_, stop := start(t, cfg)
	checkfor.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error { return exactlyOnce(readArrow(t, st, "city"), in) })
	stop()
	// Small fetches: the last roll comes back in many polls.
	cfg.Kafka = append(append([]kgo.Opt(nil), opts...), kgo.FetchMaxBytes(1500), kgo.FetchMaxPartitionBytes(1500))
	cfg.Roll = Roll{Rows: 10, Age: time.Millisecond}
	more := cityEvents(300, false, 14)
	produce(t, opts, "city", more)
	in = append(in, more...)
	_, stop = start(t, cfg)
	checkfor.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error { return exactlyOnce(readArrow(t, st, "city"), in) })
	stop()
	checkFiles(t, st, "city", 122_880)
}

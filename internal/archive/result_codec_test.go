package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/aggregate"
	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	pstream "github.com/pulsehq/pulse/internal/stream"
)

const utcMillis = `Timestamp(isAdjustedToUTC=true, timeUnit=milliseconds, is_from_converted_type=false, force_set_converted_type=false)`

// windowOutput is a window output with a column of every type: the group
// field zone, window_start and window_end, n (int64), speed_avg
// (float64), first_label (any), label (string), busy (bool), peak_at
// (timestamp) and amount (decimal).
func windowOutput(t *testing.T) *pipeline.Output {
	t.Helper()
	count, _ := aggregate.Lookup("count")
	avg, _ := aggregate.LookupWithField("avg")
	first, _ := aggregate.LookupWithField("first")
	o := &pipeline.Output{Name: "zone_1m", Kind: pipeline.KindWindow, GroupBy: []string{"zone"},
		Window: pipeline.Window{Kind: pipeline.Tumbling, Size: time.Minute}, Topic: "city.zone_1m",
		Aggregates: []pipeline.Aggregate{{Name: "n", Func: count}, {Name: "speed_avg", Func: avg, Field: "speed"}, {Name: "first_label", Func: first, Field: "label"}},
		Computed: []pipeline.Computed{{Name: "label", Type: pipeline.TypeString}, {Name: "busy", Type: pipeline.TypeBool},
			{Name: "peak_at", Type: pipeline.TypeTimestamp}, {Name: "amount", Type: pipeline.TypeDecimal}}}
	var types []string
	for _, c := range o.Schema() {
		types = append(types, c.Name+":"+c.Type.String())
	}
	want := "zone:string window_start:timestamp window_end:timestamp n:int64 speed_avg:float64 first_label:any label:string busy:bool peak_at:timestamp amount:decimal"
	if strings.Join(types, " ") != want {
		t.Fatalf("output columns %v, want %s", types, want)
	}
	return o
}

// resultInput is one produced result record and the row the archive must
// hold for it (column name: value as arrow-go reads it, nil for null).
type resultInput struct {
	rec  *kgo.Record
	want map[string]any
	bad  string // the reason the record is not archived
}

// windowResults returns n results of o over three hours as the window
// stage writes them (stream.Schema.Record): every tenth an update, every
// tenth a delete, values null, NaN or odd text now and then; and a few
// records the archive must skip, when bad.
func windowResults(o *pipeline.Output, n int, bad bool, seed uint64) []*resultInput {
	s := pstream.SchemaOf(o)
	rng := rand.New(rand.NewPCG(seed, 2))
	base := time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC).UnixMilli()
	var out []*resultInput
	for i := 0; i < n; i++ {
		start := base + rng.Int64N(180)*60_000
		zone := fmt.Sprintf("zone-%02d", rng.IntN(6))
		r := &pstream.Result{Output: o.Name, Key: []string{zone}, Start: start, End: start + 60_000, Final: true, Names: s.ValueNames()}
		switch i % 10 {
		case 7:
			r.Kind = pstream.KindUpdate
		case 9:
			r.Kind = pstream.KindDelete
		}
		want := map[string]any{"zone": zone, "window_start": start, "window_end": start + 60_000}
		cnt := int64(rng.IntN(5000))
		speed := math.Round(rng.Float64()*12000) / 100
		var speedV event.Value
		switch i % 13 {
		case 3:
			speedV, want["speed_avg"] = event.NumberValue(math.NaN()), nil // JSON has no NaN: null
		case 5:
			want["speed_avg"] = nil // no value
		default:
			speedV, want["speed_avg"] = event.NumberValue(speed), speed
		}
		var firstV event.Value
		switch i % 4 {
		case 0:
			firstV, want["first_label"] = event.StringValue(`say "hi"`+"\x01\n ü"), `"say \"hi\"\u0001\n ü"`
		case 1:
			firstV, want["first_label"] = event.NumberValue(1.5), `1.5`
		case 2:
			firstV, want["first_label"] = event.BoolValue(true), `true`
		default:
			want["first_label"] = nil
		}
		label := fmt.Sprintf("zone %q – é\t%d", zone, i)
		labelV := event.StringValue(label)
		want["label"] = label
		if i%17 == 4 {
			labelV, want["label"] = event.Value{}, nil
		}
		peak := start + rng.Int64N(60_000)
		amount := math.Round(rng.Float64()*1e6) / 100
		amountV := event.NumberValue(amount)
		if i%3 == 0 {
			amountV, amount = event.StringValue("12.25"), 12.25 // an exact decimal read from a record
		}
		r.Values = []event.Value{event.NumberValue(float64(cnt)), speedV, firstV, labelV, event.BoolValue(i%2 == 0), event.NumberValue(float64(peak)), amountV}
		want["n"], want["busy"], want["peak_at"], want["amount"] = cnt, i%2 == 0, peak, amount
		want["kind"] = r.Kind.String()
		if r.Kind == pstream.KindDelete {
			for _, c := range []string{"window_end", "n", "speed_avg", "first_label", "label", "busy", "peak_at", "amount"} {
				want[c] = nil // a tombstone: only the key's columns
			}
		}
		key, value, headers := s.Record(r)
		want["event_time"], want["key"] = start, string(key)
		out = append(out, &resultInput{rec: &kgo.Record{Key: key, Value: value, Headers: headers}, want: want})
		if bad && i%61 == 13 {
			out = append(out, badResults(s, r)...)
		}
	}
	return out
}

// badResults are records of o's topic that are not results of o.
func badResults(s *pstream.Schema, r *pstream.Result) []*resultInput {
	key, value, _ := s.Record(&pstream.Result{Key: r.Key, Start: r.Start, End: r.End, Values: r.Values, Names: r.Names})
	rec := func(k, v []byte, kind string) *kgo.Record {
		rec := &kgo.Record{Key: k, Value: v}
		if kind != "" {
			rec.Headers = []kgo.RecordHeader{{Key: pstream.KindHeader, Value: []byte(kind)}}
		}
		return rec
	}
	return []*resultInput{
		{rec: rec(key, value, "upsert"), bad: `header pulse-kind is "upsert"`},
		{rec: rec(key, bytes.Replace(value, []byte(`"n":`), []byte(`"n":"many","x":`), 1), ""), bad: "n: is string, want a int64"},
		{rec: rec(key, bytes.Replace(value, []byte(`"zone"`), []byte(`"area"`), 1), ""), bad: `value has no "zone"`},
		{rec: rec(key, []byte(`[1,2]`), "insert"), bad: "value is not a JSON object"},
		{rec: rec(nil, nil, "delete"), bad: "a delete record has no key"},
		{rec: rec([]byte(`{"zone":"z"}`), nil, "delete"), bad: `key of a delete has no "window_start"`},
		{rec: rec(key, bytes.Replace(value, []byte(`"window_start":"`), []byte(`"window_start":"x`), 1), ""), bad: "is not an RFC 3339 time"},
	}
}

// resultCluster starts an in-process broker with the result topics.
func resultCluster(t *testing.T) []kgo.Opt {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "city.zone_1m"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
}

// produceResults writes the records to topic, keyed by the result's
// identity, and notes their partitions and offsets in the wanted rows.
func produceResults(t *testing.T, opts []kgo.Opt, topic string, in []*resultInput) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(in))
	for i, e := range in {
		recs[i] = e.rec
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, e := range in {
		if e.want != nil {
			e.want[ColPartition], e.want[ColOffset] = e.rec.Partition, e.rec.Offset
		}
	}
}

// resultRow is an archived result as arrow-go reads it.
type resultRow struct {
	file string
	cols map[string]any
}

// readResults reads every file of stream with arrow-go, checking the
// columns' order and their Parquet and Arrow types against o's schema.
func readResults(t *testing.T, st Store, stream string, o *pipeline.Output) []resultRow {
	t.Helper()
	ctx := context.Background()
	names, err := st.List(ctx, "stream="+stream+"/")
	if err != nil {
		t.Fatal(err)
	}
	var out []resultRow
	for _, n := range names {
		if p, err := ParsePart(n); err != nil || p.Stream != stream {
			t.Fatalf("archive holds %s, not an archive file of %s: %+v, %v", n, stream, p, err)
		}
		f, err := st.Open(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, readResultFile(t, n, data, o)...)
	}
	slices.SortFunc(out, func(a, b resultRow) int {
		if c := int(a.cols[ColPartition].(int32) - b.cols[ColPartition].(int32)); c != 0 {
			return c
		}
		return int(a.cols[ColOffset].(int64) - b.cols[ColOffset].(int64))
	})
	return out
}

func readResultFile(t *testing.T, name string, data []byte, o *pipeline.Output) []resultRow {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer pf.Close()
	cols := o.Schema()
	want := slices.Clone(pipeline.ArchiveColumns)
	for _, c := range cols {
		want = append(want, c.Name)
	}
	ps := pf.MetaData().Schema
	var got []string
	for i := 0; i < ps.NumColumns(); i++ {
		got = append(got, ps.Column(i).Name())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: columns %v, want %v", name, got, want)
	}
	// The Parquet types, as any reader sees them.
	logical := func(c string) string { return ps.Column(ps.ColumnIndexByName(c)).LogicalType().String() }
	physical := func(c string) string { return ps.Column(ps.ColumnIndexByName(c)).PhysicalType().String() }
	if logical(ColEventTime) != utcMillis || logical(ColKind) != "String" {
		t.Fatalf("%s: event_time is %s, kind %s", name, logical(ColEventTime), logical(ColKind))
	}
	for _, c := range cols {
		lt, pt := logical(c.Name), physical(c.Name)
		ok := false
		switch c.Type {
		case pipeline.TypeString:
			ok = lt == "String" && pt == "BYTE_ARRAY"
		case pipeline.TypeInt64:
			ok = lt == "Int(bitWidth=64, isSigned=true)" && pt == "INT64"
		case pipeline.TypeFloat64, pipeline.TypeDecimal:
			ok = lt == "None" && pt == "DOUBLE"
		case pipeline.TypeBool:
			ok = lt == "None" && pt == "BOOLEAN"
		case pipeline.TypeTimestamp:
			ok = lt == utcMillis && pt == "INT64"
		case pipeline.TypeAny:
			ok = lt == "JSON" && pt == "BYTE_ARRAY"
		}
		if !ok {
			t.Errorf("%s: column %s (%s) is %s %s", name, c.Name, c.Type, pt, lt)
		}
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 0)
	defer tr.Release()
	var out []resultRow
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			r := resultRow{file: name, cols: map[string]any{}}
			for c, f := range rec.Schema().Fields() {
				a := rec.Column(c)
				if a.IsNull(i) {
					r.cols[f.Name] = nil
					continue
				}
				switch a := a.(type) {
				case *array.Timestamp:
					if ft := f.Type.(*arrow.TimestampType); ft.Unit != arrow.Millisecond || ft.TimeZone != "UTC" {
						t.Fatalf("%s: arrow reads %s as %s, want timestamp[ms, tz=UTC]", name, f.Name, ft)
					}
					r.cols[f.Name] = int64(a.Value(i))
				case *array.String:
					r.cols[f.Name] = a.Value(i)
				case *array.Binary: // JSON
					if !json.Valid(a.Value(i)) {
						t.Fatalf("%s: %s is not JSON: %q", name, f.Name, a.Value(i))
					}
					r.cols[f.Name] = string(a.Value(i))
				case *array.Int32:
					r.cols[f.Name] = a.Value(i)
				case *array.Int64:
					r.cols[f.Name] = a.Value(i)
				case *array.Float64:
					r.cols[f.Name] = a.Value(i)
				case *array.Boolean:
					r.cols[f.Name] = a.Value(i)
				default:
					t.Fatalf("%s: column %s has arrow type %s", name, f.Name, f.Type)
				}
			}
			out = append(out, r)
		}
	}
	return out
}

// resultsOnce compares the archive with the inputs: every valid record
// once, every column's value and type as produced, nothing else.
func resultsOnce(got []resultRow, in []*resultInput) error {
	type po struct {
		p int32
		o int64
	}
	want := map[po]*resultInput{}
	for _, e := range in {
		if e.bad == "" {
			want[po{e.rec.Partition, e.rec.Offset}] = e
		}
	}
	seen := map[po]bool{}
	for _, r := range got {
		k := po{r.cols[ColPartition].(int32), r.cols[ColOffset].(int64)}
		e := want[k]
		switch {
		case seen[k]:
			return fmt.Errorf("result at partition %d offset %d archived twice (%s)", k.p, k.o, r.file)
		case e == nil:
			return fmt.Errorf("archive holds partition %d offset %d, which is no valid result", k.p, k.o)
		case !reflect.DeepEqual(r.cols, e.want):
			return fmt.Errorf("partition %d offset %d (%s):\narchived %v\nwant     %v", k.p, k.o, r.file, r.cols, e.want)
		}
		seen[k] = true
	}
	if len(seen) != len(want) {
		return fmt.Errorf("archive holds %d of %d results", len(seen), len(want))
	}
	return nil
}

// checkResultFiles checks every file of a result archive (see
// eachFile) and that each row's event time and offset lie in the file's
// hour and offsets.
func checkResultFiles(t *testing.T, st Store, src Source) {
	t.Helper()
	eachFile(t, st, src.Stream, src.Topic, func(n string, p Part, pf *parquet.File) {
		rows := make([]parquet.Row, 64)
		ti, _ := pf.Schema().Lookup(ColEventTime)
		oi, _ := pf.Schema().Lookup(ColOffset)
		for _, rg := range pf.RowGroups() {
			rr := rg.Rows()
			for {
				k, err := rr.ReadRows(rows)
				for _, row := range rows[:k] {
					if ms, off := row[ti.ColumnIndex].Int64(), row[oi.ColumnIndex].Int64(); HourOf(ms) != p.Hour || off < p.From || off >= p.To {
						t.Errorf("%s: a row of event time %d offset %d outside the file's hour and offsets", n, ms, off)
					}
				}
				if err != nil {
					break
				}
			}
			rr.Close()
		}
	})
}

// TestArchiveResults archives a window output's result topic (a column
// of every type; inserts, updates and deletes; records that are no
// results) with the archiver against the embedded broker, crashes it
// between two files of a roll, and reads the files back with arrow-go:
// every result once, every value and type as produced.
func TestArchiveResults(t *testing.T) {
	o := windowOutput(t)
	src := ResultSource("city", o)
	if src.Stream != "@city.zone_1m" || src.Topic != "city.zone_1m" || src.Schema != SchemaResult {
		t.Fatalf("ResultSource = %+v", src)
	}
	opts := resultCluster(t)
	in := windowResults(o, 2000, true, 1)
	produceResults(t, opts, o.Topic, in)
	dir := t.TempDir()
	st, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Sources: []Source{src}, Kafka: opts, Store: st, Roll: Roll{Rows: 150, Age: time.Hour}, RowGroupRows: 100}
	a, stop := start(t, cfg)
	var last map[int32]Part
	checkfor.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		last, err = (&Archiver{store: st}).lastRolls(context.Background(), src.Stream)
		if err != nil {
			return err
		}
		for p := range int32(4) {
			if last[p].To < 300 {
				return fmt.Errorf("partition %d archived up to offset %d, want two rolls of every partition", p, last[p].To)
			}
		}
		return nil
	})
	stop()
	// Stopping published what it read: the archive holds each partition
	// up to its last roll's end.
	last, err = (&Archiver{store: st}).lastRolls(context.Background(), src.Stream)
	if err != nil {
		t.Fatal(err)
	}
	var prefix []*resultInput
	bad := 0
	for _, e := range in {
		if e.rec.Offset < last[e.rec.Partition].To {
			prefix = append(prefix, e)
			if e.bad != "" {
				bad++
			}
		}
	}
	if err := resultsOnce(readResults(t, st, src.Stream, o), prefix); err != nil {
		t.Fatal(err)
	}
	if got := counter(a.m.skipped.WithLabelValues(src.Stream)); got != float64(bad) || bad == 0 {
		t.Errorf("pulse_archive_skipped_records_total = %v, want %d", got, bad)
	}
	// A kill -9 between two files of the last roll of a partition: one of
	// its files missing, a half-written one in the spool.
	names, _ := st.List(context.Background(), "stream="+src.Stream+"/")
	var roll []string
	for p := range int32(4) {
		roll = roll[:0]
		for _, n := range names {
			if part, _ := ParsePart(n); part.Partition == p && part.From == last[p].From {
				roll = append(roll, n)
			}
		}
		if len(roll) >= 2 {
			break
		}
	}
	if len(roll) < 2 {
		t.Fatalf("no partition's last roll has several hours: %v", last)
	}
	if err := os.Remove(filepath.Join(dir, roll[0])); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(st.SpoolDir(), src.Stream+"-p000-123"+Ext+tmpExt)
	if err := os.WriteFile(leftover, []byte("half a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := resultsOnce(readResults(t, st, src.Stream, o), in); err == nil || !strings.Contains(err.Error(), "archive holds") {
		t.Fatalf("after removing %s: %v, want results missing", roll[0], err)
	}
	// More results while it was down; then it writes the last roll again.
	more := windowResults(o, 400, false, 3)
	produceResults(t, opts, o.Topic, more)
	in = append(in, more...)
	cfg.Roll.Age = 100 * time.Millisecond
	_, stop = start(t, cfg)
	checkfor.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error { return resultsOnce(readResults(t, st, src.Stream, o), in) })
	stop()
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("spool leftover %s not removed: %v", leftover, err)
	}
	checkResultFiles(t, st, src)
	hours := map[string]bool{}
	for _, r := range readResults(t, st, src.Stream, o) {
		hours[filepath.Dir(r.file)] = true
	}
	if len(hours) != 3 {
		t.Errorf("results in %d hour folders, want 3: %v", len(hours), hours)
	}
}

// TestArchiveEventsResults archives an events output's results through
// Import: the event time is the result's time column, the group fields
// include event_id, and a column of every type the output allows.
func TestArchiveEventsResults(t *testing.T) {
	o := &pipeline.Output{Name: "slow", Kind: pipeline.KindEvents, GroupBy: []string{"service"}, Topic: "logs.slow",
		Columns: []pipeline.Column{{Name: "latency_ms", Type: pipeline.TypeFloat64}, {Name: "code", Type: pipeline.TypeInt64},
			{Name: "level", Type: pipeline.TypeString}, {Name: "retried", Type: pipeline.TypeBool}, {Name: "at", Type: pipeline.TypeTimestamp}}}
	s := pstream.SchemaOf(o)
	if s.Windowed() || s.Columns[2].Name != pipeline.ColTime {
		t.Fatalf("events schema %v", s.Columns)
	}
	base := time.Date(2026, 12, 1, 9, 58, 0, 0, time.UTC).UnixMilli()
	var in []*resultInput
	var recs []*kgo.Record
	for i := 0; i < 500; i++ {
		ts := base + int64(i)*997
		svc, id := fmt.Sprintf("svc-%d", i%7), fmt.Sprintf("logs/%d/%d", i%2, i)
		r := &pstream.Result{Key: []string{svc, id}, Start: ts, End: ts, Final: true, Names: s.ValueNames(),
			Values: []event.Value{event.NumberValue(500.25 + float64(i)), event.NumberValue(float64(500 + i%3)), event.StringValue("error"), event.BoolValue(i%5 == 0), event.NumberValue(float64(ts - 40))}}
		want := map[string]any{"service": svc, "event_id": id, "time": ts, "latency_ms": 500.25 + float64(i), "code": int64(500 + i%3),
			"level": "error", "retried": i%5 == 0, "at": ts - 40, "kind": "insert", "event_time": ts}
		if i%9 == 8 {
			r.Kind = pstream.KindDelete // the upstream row was withdrawn
			want["kind"], want["latency_ms"], want["code"], want["level"], want["retried"], want["at"] = "delete", nil, nil, nil, nil, nil
		}
		key, value, headers := s.Record(r)
		want["key"] = string(key)
		rec := &kgo.Record{Key: key, Value: value, Headers: headers, Topic: o.Topic, Partition: int32(i % 3), Offset: int64(i / 3)}
		want[ColPartition], want[ColOffset] = rec.Partition, rec.Offset
		in = append(in, &resultInput{rec: rec, want: want})
		recs = append(recs, rec)
	}
	st, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src := ResultSource("logs", o)
	if err := Import(context.Background(), st, src, recs, 70, 50); err != nil {
		t.Fatal(err)
	}
	got := readResults(t, st, src.Stream, o)
	if err := resultsOnce(got, in); err != nil {
		t.Fatal(err)
	}
	hours := map[string]bool{}
	for _, r := range got {
		hours[filepath.Dir(r.file)] = true
	}
	if len(hours) != 2 || !hours["stream=@logs.slow/date=2026-12-01/hour=09"] || !hours["stream=@logs.slow/date=2026-12-01/hour=10"] {
		t.Errorf("results in the hour folders %v, want 09 and 10 of 2026-12-01 (by the time column)", hours)
	}
	checkResultFiles(t, st, src)
}

// TestResultCodecRejects: a record that is not a result of its output is
// not archived, with a reason that says what is wrong.
func TestResultCodecRejects(t *testing.T) {
	o := windowOutput(t)
	c, err := newCodec(ResultSource("city", o))
	if err != nil {
		t.Fatal(err)
	}
	in := windowResults(o, 200, true, 7)
	n := 0
	for _, e := range in {
		_, err := c.parse(e.rec)
		switch {
		case e.bad == "" && err != nil:
			t.Errorf("record %s %s: %v", e.rec.Key, e.rec.Value, err)
		case e.bad != "" && (err == nil || !strings.Contains(err.Error(), e.bad)):
			t.Errorf("record %s %s: error %v, want %q", e.rec.Key, e.rec.Value, err, e.bad)
		case e.bad != "":
			n++
		}
	}
	if n < 7 {
		t.Errorf("%d invalid records checked, want every kind of them", n)
	}
	rc := c.(*resultCodec)
	row := func() string {
		var b strings.Builder
		for _, name := range []string{ColKind, "zone", "window_start", "window_end", "n", "label"} {
			v := rc.row[columns(rc.s, name)[0]]
			switch {
			case v.IsNull():
				fmt.Fprintf(&b, " %s=null", name)
			case v.Kind() == parquet.ByteArray:
				fmt.Fprintf(&b, " %s=%s", name, v.ByteArray())
			default:
				fmt.Fprintf(&b, " %s=%d", name, v.Int64())
			}
		}
		return strings.TrimSpace(b.String())
	}
	const ws = 1796119200000 // 2026-12-01T10:00:00Z
	for _, tc := range []struct {
		name       string
		key, value []byte
		kind       string
		want       string
	}{
		// As the sinks read it: a delete header makes a delete of the key's row.
		{"delete with a value", []byte(`{"zone":"z","window_start":"2026-12-01T10:00:00Z"}`), []byte(`{"zone":"y"}`), "delete",
			"kind=delete zone=z window_start=1796119200000 window_end=null n=null label=null"},
		// The format before schemas: group fields in "key", retract for a delete.
		{"legacy", []byte(`{"zone":"z"}`), []byte(`{"output":"zone_1m","key":{"zone":"z"},"window_start":"2026-12-01T10:00:00Z","window_end":"2026-12-01T10:01:00Z","final":true,"n":3,"label":"x"}`), "",
			"kind=insert zone=z window_start=1796119200000 window_end=1796119260000 n=3 label=x"},
		{"legacy retract", []byte(`{"zone":"z"}`), []byte(`{"output":"zone_1m","key":{"zone":"z"},"window_start":"2026-12-01T10:00:00Z","window_end":"2026-12-01T10:01:00Z","retract":true,"n":3}`), "",
			"kind=delete zone=z window_start=1796119200000 window_end=null n=null label=null"},
		// Members in another order, and members that are no column.
		{"any order", nil, []byte(`{"label":"x","extra":[1],"n":2,"window_end":"2026-12-01T10:01:00Z","window_start":"2026-12-01T10:00:00Z","zone":"q"}`), "update",
			"kind=update zone=q window_start=1796119200000 window_end=1796119260000 n=2 label=x"},
	} {
		rec := &kgo.Record{Key: tc.key, Value: tc.value}
		if tc.kind != "" {
			rec.Headers = []kgo.RecordHeader{{Key: pstream.KindHeader, Value: []byte(tc.kind)}}
		}
		ms, err := c.parse(rec)
		if err != nil || ms != ws || row() != tc.want {
			t.Errorf("%s: event time %d, %v, row %s; want %d, %s", tc.name, ms, err, row(), int64(ws), tc.want)
		}
	}
	// The kind column and the others the archive adds are not the
	// output's to name (pipeline validation says so first).
	o.GroupBy = []string{"kind"}
	if _, err := newCodec(ResultSource("city", o)); err == nil || !strings.Contains(err.Error(), "result column kind") {
		t.Errorf("an output with a column kind: %v, want an error", err)
	}
	if _, err := newCodec(Source{Stream: "@x.y", Schema: SchemaResult}); err == nil {
		t.Error("a result source without a schema: no error")
	}
}

// TestResultStreamNames: an output's results have a stream name no
// stream (a Kafka topic) can have, and their files parse as archive
// parts, so the archiver lists and resumes them as any stream's.
func TestResultStreamNames(t *testing.T) {
	if !slices.Equal(resultColumns, pipeline.ArchiveColumns) {
		t.Errorf("archive columns %v, pipeline.ArchiveColumns %v", resultColumns, pipeline.ArchiveColumns)
	}
	name := ResultStream("city", "zone_1m")
	if p, o, ok := ResultOf(name); name != "@city.zone_1m" || !ok || p != "city" || o != "zone_1m" {
		t.Errorf("ResultStream = %s, ResultOf = %s, %s, %v", name, p, o, ok)
	}
	for _, s := range []string{"city", "city.zone_1m", "@", "@city", "@.x", "@x."} {
		if p, o, ok := ResultOf(s); ok {
			t.Errorf("ResultOf(%s) = %s, %s: want no output", s, p, o)
		}
	}
	part := Part{Stream: name, Hour: time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC), Partition: 2, From: 10, To: 20}
	if want := "stream=@city.zone_1m/date=2026-12-01/hour=07/p002-00000000000000000010-00000000000000000020.parquet"; part.Name() != want {
		t.Errorf("Name = %s, want %s", part.Name(), want)
	}
	if got, err := ParsePart(part.Name()); err != nil || got != part {
		t.Errorf("ParsePart(%s) = %+v, %v", part.Name(), got, err)
	}
}

// TestBuiltinResultSources: the built-in city pipeline archives its
// zone_1m results, and the archiver accepts the source made of it.
func TestBuiltinResultSources(t *testing.T) {
	plan, err := pipeline.BuiltinNamed("city")
	if err != nil {
		t.Fatal(err)
	}
	var srcs []Source
	for i := range plan.Outputs {
		if o := &plan.Outputs[i]; o.Archive {
			srcs = append(srcs, ResultSource(plan.Name, o))
		}
	}
	if len(srcs) != 1 || srcs[0].Stream != "@city.zone_1m" || srcs[0].Topic != "city.zone_1m" {
		t.Fatalf("archived outputs of city: %+v, want zone_1m", srcs)
	}
	st, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Sources: append(srcs, citySource), Store: st}); err != nil {
		t.Fatal(err)
	}
	s, err := SchemaOf(srcs[0])
	if err != nil {
		t.Fatal(err)
	}
	cols := Columns(s)
	if want := []string{ColEventTime, ColKey, ColPartition, ColOffset, ColKind, "zone", "window_start", "window_end", "count"}; !slices.Equal(cols[:len(want)], want) {
		t.Errorf("columns %v, want them to start with %v", cols, want)
	}
}

// TestResultCodecAllocs: decoding a result record and buffering its row
// allocates nothing once the buffers have grown (no map, no string per
// record).
func TestResultCodecAllocs(t *testing.T) {
	o := windowOutput(t)
	c, err := newResultCodec(ResultSource("city", o))
	if err != nil {
		t.Fatal(err)
	}
	in := windowResults(o, 512, false, 9)
	w := c.newWriter(io.Discard).(*resultWriter)
	i := 0
	step := func() {
		if _, err := c.parse(in[i%len(in)].rec); err != nil {
			t.Fatal(err)
		}
		w.add()
		if i++; i%len(in) == 0 {
			w.pending, w.arena = w.pending[:0], w.arena[:0] // as flush leaves them, without writing
		}
	}
	for range 2 * len(in) {
		step()
	}
	if n := testing.AllocsPerRun(4*len(in), step); n > 0 {
		t.Errorf("%.2f allocations per record, want none", n)
	}
}

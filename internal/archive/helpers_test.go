package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cluster starts an in-process broker with topic city of 4 partitions.
func cluster(t *testing.T) []kgo.Opt {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "city", "logs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
}

// input is one produced record: what the archive must hold.
type input struct {
	key  string
	ts   int64
	val  []byte
	bad  bool // not a valid city reading
	part int32
	off  int64
}

// cityEvents returns n readings over three hours (and a few invalid
// records when bad), keyed by sensor.
func cityEvents(n int, bad bool, seed uint64) []*input {
	rng := rand.New(rand.NewPCG(seed, 1))
	base := time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC).UnixMilli()
	var out []*input
	for i := 0; i < n; i++ {
		ts := base + rng.Int64N(3*3600_000)
		sensor := fmt.Sprintf("S-%d", rng.IntN(50))
		zone := fmt.Sprintf("zone-%02d", rng.IntN(5))
		var v string
		switch i % 3 {
		case 0:
			v = fmt.Sprintf(`{"sensor_id":%q,"zone":%q,"kind":"traffic","ts":%d,"speed_kmh":%.1f,"vehicle_count":%d}`, sensor, zone, ts, rng.Float64()*100, rng.IntN(50))
		case 1:
			v = fmt.Sprintf(`{"sensor_id":%q,"zone":%q,"kind":"air","ts":"%s","pm25":%.2f}`, sensor, zone, time.UnixMilli(ts).UTC().Format(time.RFC3339Nano), rng.Float64()*50)
		default:
			v = fmt.Sprintf(`{"sensor_id":%q,"zone":%q,"kind":"weather","ts":%d,"temp_c":%.1f,"humidity":%.0f,"extra":"x"}`, sensor, zone, ts, rng.Float64()*30-5, rng.Float64()*100)
		}
		out = append(out, &input{key: sensor, ts: ts, val: []byte(v)})
		if bad && i%97 == 5 {
			out = append(out, &input{key: sensor, val: []byte(`{"sensor_id":"x","kind":"bogus"}`), bad: true})
		}
	}
	return out
}

// produce writes the inputs to topic and notes their partitions and
// offsets.
func produce(t *testing.T, opts []kgo.Opt, topic string, in []*input) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(in))
	for i, e := range in {
		recs[i] = &kgo.Record{Key: []byte(e.key), Value: e.val}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		in[i].part, in[i].off = r.Partition, r.Offset
	}
}

// row is an archived city event as arrow-go reads it.
type row struct {
	file      string
	part      int32
	off       int64
	ts        int64
	key       string
	sensor    string
	zone      string
	kind      string
	metrics   map[string]float64
	eventJSON string
}

// readArrow reads every archive file of stream in store with arrow-go's
// Parquet reader (a second implementation) and checks the event_time
// column's type.
func readArrow(t *testing.T, st Store, stream string) []row {
	t.Helper()
	ctx := context.Background()
	names, err := st.List(ctx, "stream="+stream+"/")
	if err != nil {
		t.Fatal(err)
	}
	var out []row
	for _, n := range names {
		if _, err := ParsePart(n); err != nil {
			t.Fatalf("archive holds %s, not an archive file: %v", n, err)
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
		out = append(out, readArrowFile(t, n, data)...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].part != out[j].part {
			return out[i].part < out[j].part
		}
		return out[i].off < out[j].off
	})
	return out
}

func readArrowFile(t *testing.T, name string, data []byte) []row {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer pf.Close()
	col := pf.MetaData().Schema.Column(pf.MetaData().Schema.ColumnIndexByName(ColEventTime))
	if lt := col.LogicalType().String(); lt != `Timestamp(isAdjustedToUTC=true, timeUnit=milliseconds, is_from_converted_type=false, force_set_converted_type=false)` {
		t.Fatalf("%s: event_time has logical type %s, want a UTC millisecond timestamp", name, lt)
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
	var out []row
	sch := tbl.Schema()
	idx := func(n string) int {
		is := sch.FieldIndices(n)
		if len(is) != 1 {
			return -1
		}
		return is[0]
	}
	if ft, ok := sch.Field(idx(ColEventTime)).Type.(*arrow.TimestampType); !ok || ft.Unit != arrow.Millisecond || ft.TimeZone != "UTC" {
		t.Fatalf("%s: arrow reads event_time as %s, want timestamp[ms, tz=UTC]", name, sch.Field(idx(ColEventTime)).Type)
	}
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			r := row{file: name, metrics: map[string]float64{}}
			for c, f := range sch.Fields() {
				a := rec.Column(c)
				if a.IsNull(i) {
					continue
				}
				switch f.Name {
				case ColEventTime:
					r.ts = int64(a.(*array.Timestamp).Value(i))
				case ColKey:
					r.key = a.(*array.String).Value(i)
				case ColPartition:
					r.part = a.(*array.Int32).Value(i)
				case ColOffset:
					r.off = a.(*array.Int64).Value(i)
				case "sensor_id":
					r.sensor = a.(*array.String).Value(i)
				case "zone":
					r.zone = a.(*array.String).Value(i)
				case "kind":
					r.kind = a.(*array.String).Value(i)
				case ColEventJSON:
					r.eventJSON = a.(*array.String).Value(i)
				case "vehicle_count":
					r.metrics[f.Name] = float64(a.(*array.Int64).Value(i))
				default:
					r.metrics[f.Name] = a.(*array.Float64).Value(i)
				}
			}
			out = append(out, r)
		}
	}
	return out
}

// checkExactlyOnce compares the archive with the inputs: every valid
// event once, with its fields, and nothing else.
func checkExactlyOnce(t *testing.T, got []row, in []*input) {
	t.Helper()
	if err := exactlyOnce(got, in); err != nil {
		t.Fatal(err)
	}
}

func exactlyOnce(got []row, in []*input) error {
	type po struct {
		p int32
		o int64
	}
	want := map[po]*input{}
	for _, e := range in {
		if !e.bad {
			want[po{e.part, e.off}] = e
		}
	}
	seen := map[po]bool{}
	for _, r := range got {
		k := po{r.part, r.off}
		e := want[k]
		switch {
		case seen[k]:
			return fmt.Errorf("event at partition %d offset %d archived twice (%s)", r.part, r.off, r.file)
		case e == nil:
			return fmt.Errorf("archive holds partition %d offset %d, which is no valid input", r.part, r.off)
		case r.ts != e.ts || r.key != e.key || r.sensor != e.key:
			return fmt.Errorf("partition %d offset %d: archived ts %d key %q sensor %q, want ts %d key %q", r.part, r.off, r.ts, r.key, r.sensor, e.ts, e.key)
		case !bytes.Contains(e.val, []byte(`"kind":"`+r.kind+`"`)) || !bytes.Contains(e.val, []byte(`"zone":"`+r.zone+`"`)):
			return fmt.Errorf("partition %d offset %d: archived kind %q zone %q, input %s", r.part, r.off, r.kind, r.zone, e.val)
		}
		for m, v := range r.metrics {
			if !bytes.Contains(e.val, []byte(fmt.Sprintf(`"%s":%v`, m, v))) && !bytes.Contains(e.val, []byte(fmt.Sprintf(`"%s":%.1f`, m, v))) && !bytes.Contains(e.val, []byte(fmt.Sprintf(`"%s":%.2f`, m, v))) {
				return fmt.Errorf("partition %d offset %d: archived %s=%v, input %s", r.part, r.off, m, v, e.val)
			}
		}
		seen[k] = true
	}
	if len(seen) != len(want) {
		return fmt.Errorf("archive holds %d of %d events", len(seen), len(want))
	}
	return nil
}

// start runs an archiver until the test ends; stop stops it and waits.
func start(t *testing.T, cfg Config) (a *Archiver, stop func()) {
	t.Helper()
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	cfg.Tick = 20 * time.Millisecond
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(stop)
	return a, stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func counter(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

var citySource = Source{Stream: "city", Topic: "city", Schema: "city"}

// rollTiles collects the rolls of an archive's files, partition: from ->
// to, to check that they tile each partition's offsets.
type rollTiles map[int32]map[int64]int64

// add adds the roll of file p; a roll with the same start and another end
// overlaps.
func (r rollTiles) add(t *testing.T, p Part) {
	t.Helper()
	if r[p.Partition] == nil {
		r[p.Partition] = map[int64]int64{}
	}
	if to, ok := r[p.Partition][p.From]; ok && to != p.To {
		t.Errorf("rolls [%d, %d) and [%d, %d) of partition %d overlap", p.From, to, p.From, p.To, p.Partition)
	}
	r[p.Partition][p.From] = p.To
}

// check fails t unless each partition's rolls form one run, each starting
// where another ends.
func (r rollTiles) check(t *testing.T) {
	t.Helper()
	for part, m := range r {
		starts := 0
		for from := range m {
			prev := false
			for _, to := range m {
				prev = prev || to == from
			}
			if !prev {
				starts++
			}
		}
		if starts != 1 {
			t.Errorf("partition %d: the rolls %v leave gaps", part, m)
		}
	}
}

// eachFile opens every archive file of stream (of topic) in st, checks
// its key-value metadata against its name and row count, calls check
// with it, and checks that the rolls tile each partition's offsets.
func eachFile(t *testing.T, st Store, stream, topic string, check func(name string, p Part, pf *parquet.File)) {
	t.Helper()
	ctx := context.Background()
	names, err := st.List(ctx, "stream="+stream+"/")
	if err != nil {
		t.Fatal(err)
	}
	tiles := rollTiles{}
	for _, n := range names {
		p, err := ParsePart(n)
		if err != nil {
			t.Fatal(err)
		}
		tiles.add(t, p)
		f, err := st.Open(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		pf, err := parquet.OpenFile(f, f.Size())
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		kv := map[string]string{}
		for _, e := range pf.Metadata().KeyValueMetadata {
			kv[e.Key] = e.Value
		}
		want := map[string]string{MetaStream: stream, MetaTopic: topic, MetaPartition: strconv.Itoa(int(p.Partition)),
			MetaOffsets: fmt.Sprintf("%d-%d", p.From, p.To), MetaRows: strconv.FormatInt(pf.NumRows(), 10)}
		for k, v := range want {
			if kv[k] != v {
				t.Errorf("%s: metadata %s = %q, want %q", n, k, kv[k], v)
			}
		}
		check(n, p, pf)
		f.Close()
	}
	tiles.check(t)
}

package serve_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/archive"
	"github.com/pulsehq/pulse/internal/health"
	"github.com/pulsehq/pulse/internal/serve"
	"github.com/pulsehq/pulse/internal/telemetry"
)

var h0 = time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC)

var citySrc = archive.Source{Stream: "city", Topic: "city", Schema: "city"}

// historyAPI serves an archive of n readings, one every 2 s from h0 on,
// sensor S-(i%5), in two partitions.
func historyAPI(t *testing.T, n int) string {
	t.Helper()
	st, err := archive.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]*kgo.Record, n)
	for i := range n {
		ts := h0.Add(time.Duration(i) * 2 * time.Second).UnixMilli()
		v := fmt.Sprintf(`{"sensor_id":"S-%d","zone":"zone-1","kind":"air","ts":%d,"pm25":%d.5}`, i%5, ts, i%100)
		recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "S-%d", i%5), Value: []byte(v), Partition: int32(i % 2), Offset: int64(i / 2)}
	}
	if err := archive.Import(context.Background(), st, citySrc, recs, 500, 100); err != nil {
		t.Fatal(err)
	}
	srv := serveConfig(t, serve.Config{Addr: "127.0.0.1:0", Metrics: telemetry.New(), Health: &health.Registry{},
		History: &serve.History{Reader: archive.NewReader(st), Streams: map[string]archive.Source{"city": citySrc}}})
	return "http://" + srv.Addr()
}

type historyPage struct {
	Stream string           `json:"stream"`
	Events []map[string]any `json:"events"`
	Next   string           `json:"next"`
}

func TestHistoryJSONPages(t *testing.T) {
	base := historyAPI(t, 4000) // 2 h 13 min
	from, to := h0.Add(50*time.Minute), h0.Add(70*time.Minute)
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {fmt.Sprint(to.UnixMilli())}, "where": {"sensor_id=S-3"},
		"fields": {"event_time,sensor_id,pm25"}, "limit": {"40"}}
	var times []string
	for pages := 0; ; pages++ {
		code, body := get(t, base+"/v1/streams/city/history?"+q.Encode())
		if code != 200 || pages > 20 {
			t.Fatalf("page %d: %d %s", pages, code, body)
		}
		var p historyPage
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			if e["sensor_id"] != "S-3" || len(e) != 3 {
				t.Fatalf("event %v: want sensor S-3 and the three fields", e)
			}
			times = append(times, e["event_time"].(string))
		}
		if p.Next == "" {
			break
		}
		q.Set("after", p.Next)
	}
	var want []string
	for i := range 4000 {
		ts := h0.Add(time.Duration(i) * 2 * time.Second)
		if i%5 == 3 && !ts.Before(from) && ts.Before(to) {
			want = append(want, ts.Format("2006-01-02T15:04:05.000Z07:00"))
		}
	}
	slices.Sort(times)
	if !slices.Equal(times, want) {
		t.Fatalf("read %d events of S-3 in [50 min, 70 min), want %d", len(times), len(want))
	}
}

func TestHistoryCSV(t *testing.T) {
	base := historyAPI(t, 100)
	q := url.Values{"from": {h0.Format(time.RFC3339)}, "to": {h0.Add(10 * time.Second).Format(time.RFC3339)},
		"fields": {"sensor_id,event_time,pm25,speed_kmh"}, "format": {"csv"}, "limit": {"3"}}
	resp, err := http.Get(base + "/v1/streams/city/history?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	recs, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// Partition 0 holds the even readings: the first three of the page.
	want := [][]string{{"sensor_id", "event_time", "pm25", "speed_kmh"},
		{"S-0", "2026-11-30T22:00:00.000Z", "0.5", ""}, {"S-2", "2026-11-30T22:00:04.000Z", "2.5", ""}, {"S-4", "2026-11-30T22:00:08.000Z", "4.5", ""}}
	if !slices.EqualFunc(recs, want, slices.Equal) {
		t.Fatalf("csv %v, want %v", recs, want)
	}
	if resp.Trailer.Get("Pulse-Next") == "" {
		t.Fatal("a cut CSV answer has no Pulse-Next trailer")
	}
}

func TestHistoryBadRequests(t *testing.T) {
	base := historyAPI(t, 10)
	for _, c := range []struct {
		query string
		code  int
		says  string
	}{
		{"", 400, "from is required"},
		{"from=yesterday", 400, "RFC 3339"},
		{"from=1000&to=10", 400, "must be after from"},
		{"from=0&fields=nope", 400, "has no column"},
		{"from=0&where=zone", 400, "COLUMN=VALUE"},
		{"from=0&format=xml", 400, "use json, csv or parquet"},
		{"from=0&fields=zone,zone", 400, "named twice"},
		{"from=0&after=xyz", 400, "not a token"},
		{"from=0&limit=0", 400, "positive whole number"},
	} {
		code, body := get(t, base+"/v1/streams/city/history?"+c.query)
		if code != c.code || !strings.Contains(body, c.says) {
			t.Errorf("%q: %d %s, want %d saying %q", c.query, code, body, c.code, c.says)
		}
	}
	if code, body := get(t, base+"/v1/streams/nope/history?from=0"); code != 404 || !strings.Contains(body, "not archived") {
		t.Errorf("unknown stream: %d %s", code, body)
	}
}

// tailSetup is an archive of part of a topic's readings, the rest only in
// the topic, served with both.
type tailSetup struct {
	t      *testing.T
	dir    string
	store  archive.Store
	rolls  int           // rows of a roll the archive publishes (default 150)
	recs   []*kgo.Record // every record produced, with its partition and offset
	want   map[string]bool
	ranges map[int32]int64 // per partition: the offsets archived so far end here
	base   string
}

// readingAt is reading i of the tail tests: one every 2 s from h0, five
// sensors; every 37th record is no valid reading.
func readingAt(i int) (key, value []byte) {
	if i%37 == 36 {
		return []byte("x"), []byte(`{"sensor_id":"x","kind":"bogus"}`)
	}
	ts := h0.Add(time.Duration(i) * 2 * time.Second).UnixMilli()
	return fmt.Appendf(nil, "S-%d", i%5), fmt.Appendf(nil, `{"sensor_id":"S-%d","zone":"zone-%d","kind":"air","ts":%d,"pm25":%d.5}`, i%5, i%3, ts, i%100)
}

// newTailSetup produces n readings to a two-partition topic city (reading
// i to partition i%2) and
// archives the first archived of each partition's records.
func newTailSetup(t *testing.T, n int, archived int64, h *serve.History) *tailSetup {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "city"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.DefaultProduceTopic("city"), kgo.ProducerLinger(time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ts := &tailSetup{t: t, want: map[string]bool{}, ranges: map[int32]int64{}}
	for i := range n {
		k, v := readingAt(i)
		ts.recs = append(ts.recs, &kgo.Record{Key: k, Value: v, Partition: int32(i % 2)})
	}
	if err := cl.ProduceSync(context.Background(), ts.recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for i, r := range ts.recs {
		if i%37 == 36 {
			continue
		}
		ts.want[fmt.Sprintf("%d|%d|%s|S-%d|%d.5", r.Partition, r.Offset, h0.Add(time.Duration(i)*2*time.Second).Format("2006-01-02T15:04:05.000Z07:00"), i%5, i%100)] = true
	}
	ts.dir = t.TempDir()
	if ts.store, err = archive.NewLocal(ts.dir); err != nil {
		t.Fatal(err)
	}
	ts.archive(archived)
	h.Reader, h.Streams, h.Kafka = archive.NewReader(ts.store), map[string]archive.Source{"city": citySrc}, opts
	srv := serveConfig(t, serve.Config{Addr: "127.0.0.1:0", Metrics: telemetry.New(), Health: &health.Registry{}, History: h})
	ts.base = "http://" + srv.Addr()
	return ts
}

// archive publishes, per partition, the records after those archived
// so far up to the first upTo of the partition, as rolls of 150 rows:
// what the archiver does at the end of a roll.
func (ts *tailSetup) archive(upTo int64) {
	ts.t.Helper()
	var recs []*kgo.Record
	for _, r := range ts.recs {
		if r.Offset >= ts.ranges[r.Partition] && r.Offset < upTo {
			recs = append(recs, r)
		}
	}
	if len(recs) == 0 {
		return
	}
	if err := archive.Import(context.Background(), ts.store, citySrc, recs, cmp.Or(ts.rolls, 150), 64); err != nil {
		ts.t.Fatal(err)
	}
	for _, r := range recs {
		ts.ranges[r.Partition] = max(ts.ranges[r.Partition], r.Offset+1)
	}
}

const tailFields = "kafka_partition,kafka_offset,event_time,sensor_id,pm25"

func (ts *tailSetup) query(extra url.Values) url.Values {
	q := url.Values{"from": {h0.Format(time.RFC3339)}, "to": {h0.Add(24 * time.Hour).Format(time.RFC3339)}, "fields": {tailFields}}
	for k, v := range extra {
		q[k] = v
	}
	return q
}

// page is one answer, its events as "partition|offset|time|sensor|pm25".
func (ts *tailSetup) page(q url.Values) (events []string, next string) {
	ts.t.Helper()
	resp, err := http.Get(ts.base + "/v1/streams/city/history?" + q.Encode())
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		ts.t.Fatalf("history %s: %d %s", q.Encode(), resp.StatusCode, body)
	}
	switch q.Get("format") {
	case "csv":
		recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			ts.t.Fatal(err)
		}
		if len(recs) == 0 || strings.Join(recs[0], ",") != tailFields {
			ts.t.Fatalf("csv header %v, want %s", recs, tailFields)
		}
		for _, r := range recs[1:] {
			events = append(events, strings.Join(r, "|"))
		}
		return events, resp.Trailer.Get("Pulse-Next")
	case "parquet":
		if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.apache.parquet" {
			ts.t.Fatalf("parquet answer of Content-Type %q", ct)
		}
		return readArrowAnswer(ts.t, body), resp.Trailer.Get("Pulse-Next")
	}
	var p struct {
		Events []struct {
			Partition int32   `json:"kafka_partition"`
			Offset    int64   `json:"kafka_offset"`
			Time      string  `json:"event_time"`
			Sensor    string  `json:"sensor_id"`
			PM25      float64 `json:"pm25"`
		} `json:"events"`
		Next string `json:"next"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		ts.t.Fatalf("%v: %s", err, body)
	}
	for _, e := range p.Events {
		events = append(events, fmt.Sprintf("%d|%d|%s|%s|%v", e.Partition, e.Offset, e.Time, e.Sensor, e.PM25))
	}
	return events, p.Next
}

// readArrowAnswer reads a Parquet answer with arrow-go (a second
// implementation), checking the columns' order and types.
func readArrowAnswer(t *testing.T, body []byte) []string {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the parquet answer does not read back: %v", err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	var names, types []string
	for _, f := range tbl.Schema().Fields() {
		names = append(names, f.Name)
		types = append(types, f.Type.String())
	}
	if strings.Join(names, ",") != tailFields || strings.Join(types, ",") != "int32,int64,timestamp[ms, tz=UTC],utf8,float64" {
		t.Fatalf("parquet answer columns %v of types %v", names, types)
	}
	if pf.NumRowGroups() > 0 {
		cc, err := pf.MetaData().RowGroup(0).ColumnChunk(0)
		if err != nil || cc.Compression() != compress.Codecs.Zstd {
			t.Fatalf("parquet answer compressed with %v (%v), want zstd", cc.Compression(), err)
		}
	}
	tr := array.NewTableReader(tbl, 0)
	defer tr.Release()
	var out []string
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			out = append(out, fmt.Sprintf("%d|%d|%s|%s|%v", rec.Column(0).(*array.Int32).Value(i), rec.Column(1).(*array.Int64).Value(i),
				time.UnixMilli(int64(rec.Column(2).(*array.Timestamp).Value(i))).UTC().Format("2006-01-02T15:04:05.000Z07:00"),
				rec.Column(3).(*array.String).Value(i), rec.Column(4).(*array.Float64).Value(i)))
		}
	}
	return out
}

// all pages through q and returns every event read.
func (ts *tailSetup) all(q url.Values, between func(page int, next string)) []string {
	ts.t.Helper()
	var got []string
	for pages := 0; ; pages++ {
		if pages > 500 {
			ts.t.Fatal("paging does not end")
		}
		events, next := ts.page(q)
		got = append(got, events...)
		if next == "" {
			return got
		}
		if between != nil {
			between(pages, next)
		}
		q.Set("after", next)
	}
}

// exact checks that got is every wanted event once.
func (ts *tailSetup) exact(got []string) {
	ts.t.Helper()
	seen := map[string]bool{}
	for _, e := range got {
		switch {
		case seen[e]:
			ts.t.Fatalf("event %s read twice", e)
		case !ts.want[e]:
			ts.t.Fatalf("event %s is no input", e)
		}
		seen[e] = true
	}
	if len(seen) != len(ts.want) {
		ts.t.Fatalf("read %d of %d events", len(seen), len(ts.want))
	}
}

// TestHistoryTail: the events in files and the events only in the topic
// together, in JSON, CSV and Parquet, equal the input exactly.
func TestHistoryTail(t *testing.T) {
	ts := newTailSetup(t, 2000, 600, &serve.History{})
	if files, _ := archive.NewReader(ts.store).Files(context.Background(), "city", 0, h0.Add(48*time.Hour).UnixMilli()); len(files) == 0 {
		t.Fatal("no archive files: the test reads files and the tail")
	}
	for _, format := range []string{"json", "csv", "parquet"} {
		events, next := ts.page(ts.query(url.Values{"format": {format}}))
		if next != "" {
			t.Fatalf("%s: an answer under its limit has a next token", format)
		}
		ts.exact(events)
	}
	// All in the tail: the same answer.
	ts2 := newTailSetup(t, 500, 0, &serve.History{})
	events, _ := ts2.page(ts2.query(nil))
	ts2.exact(events)
	// A range: only the events in it.
	q := ts.query(url.Values{"from": {h0.Add(30 * time.Minute).Format(time.RFC3339)}, "to": {h0.Add(50 * time.Minute).Format(time.RFC3339)}})
	events, _ = ts.page(q)
	if len(events) == 0 {
		t.Fatal("no events in [30 min, 50 min)")
	}
	for _, e := range events {
		tm := strings.Split(e, "|")[2]
		if tm < "2026-11-30T22:30" || tm >= "2026-11-30T22:50" {
			t.Fatalf("event %s outside [30 min, 50 min)", e)
		}
	}
}

// TestHistoryTailPages pages with a small limit across the files, the
// boundary and the tail while rolls are published between pages: every
// event exactly once, in every format. Version 1 tokens still work.
func TestHistoryTailPages(t *testing.T) {
	for _, format := range []string{"json", "csv", "parquet"} {
		ts := newTailSetup(t, 1500, 300, &serve.History{})
		published := 0
		got := ts.all(ts.query(url.Values{"format": {format}, "limit": {"97"}}), func(page int, next string) {
			// A roll published while the reader pages in the files, then
			// two while it pages in the tail.
			if page == 1 || page == 7 || page == 9 {
				ts.archive(int64(300 + 150*(published+1)))
				published++
			}
		})
		ts.exact(got)
		if published != 3 {
			t.Fatalf("%s: %d rolls published between pages, want 3", format, published)
		}
	}

	ts := newTailSetup(t, 600, 300, &serve.History{})
	files, err := archive.NewReader(ts.store).Files(context.Background(), "city", 0, h0.Add(48*time.Hour).UnixMilli())
	if err != nil || len(files) == 0 {
		t.Fatalf("files %v: %v", files, err)
	}
	// A version 1 token (file, row) of the first file's row 0 reads what
	// a first page reads.
	v1 := []byte{1}
	v1 = binary.AppendUvarint(v1, uint64(len(files[0])))
	v1 = append(v1, files[0]...)
	v1 = binary.AppendVarint(v1, 0)
	first, _ := ts.page(ts.query(url.Values{"limit": {"50"}}))
	old, next := ts.page(ts.query(url.Values{"limit": {"50"}, "after": {base64.RawURLEncoding.EncodeToString(v1)}}))
	if !slices.Equal(first, old) || next == "" {
		t.Fatalf("a version 1 token read %d events, want the first page's %d", len(old), len(first))
	}
	q := ts.query(url.Values{"limit": {"50"}, "after": {next}})
	ts.exact(append(old, ts.all(q, nil)...))
}

// TestHistoryTailBound: a page ends with a next token once it has read
// TailMaxRecords records of the topic, with fewer rows than its limit.
func TestHistoryTailBound(t *testing.T) {
	ts := newTailSetup(t, 800, 100, &serve.History{TailMaxRecords: 120})
	first, next := ts.page(ts.query(url.Values{"limit": {"1000"}}))
	if next == "" || len(first) >= 1000 {
		t.Fatalf("a first page of %d rows, next %q: want the record bound to cut it short", len(first), next)
	}
	pages := 0
	got := ts.all(ts.query(url.Values{"limit": {"1000"}}), func(int, string) { pages++ })
	ts.exact(got)
	if pages < 5 {
		t.Fatalf("%d pages: want the record bound (120 of 700 records) to cut the tail", pages+1)
	}
}

// TestHistoryTailUnavailable: an archived stream whose topic cannot be
// reached answers 503 saying so.
func TestHistoryTailUnavailable(t *testing.T) {
	st, err := archive.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serve.New(serve.Config{Addr: "127.0.0.1:0", Metrics: telemetry.New(), Health: &health.Registry{},
		History: &serve.History{Reader: archive.NewReader(st), Streams: map[string]archive.Source{"city": citySrc},
			Kafka: []kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}, TailTimeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	code, body := get(t, "http://"+srv.Addr()+"/v1/streams/city/history?from=0")
	if code != 503 || !strings.Contains(body, "topic city") || !strings.Contains(body, "Kafka") {
		t.Fatalf("history without Kafka: %d %s, want 503 naming the topic", code, body)
	}
}

// TestHistoryPartialRoll leaves the last roll of partition 0 published in
// part, as a crash between its two files would (its hour 22 file there,
// its hour 23 file not): the answer still holds every event once, the
// missing hour's read from the topic; and paging stays exact while the
// archiver writes the roll again and publishes the next one.
func TestHistoryPartialRoll(t *testing.T) {
	for _, format := range []string{"json", "parquet"} {
		ts := newTailSetup(t, 2200, 0, &serve.History{})
		ts.rolls = 1 << 30 // one roll per partition, over both hours
		ts.archive(1000)
		missing, err := filepath.Glob(filepath.Join(ts.dir, "stream=city", "date=2026-11-30", "hour=23", "p000-*.parquet"))
		if err != nil || len(missing) != 1 {
			t.Fatalf("the last roll of partition 0 has files %v in hour 23 (%v), want one", missing, err)
		}
		keep, err := os.ReadFile(missing[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(missing[0]); err != nil {
			t.Fatal(err)
		}
		events, _ := ts.page(ts.query(url.Values{"format": {format}}))
		ts.exact(events)
		// Only hour 23: the same.
		q := ts.query(url.Values{"format": {format}, "from": {h0.Add(time.Hour).Format(time.RFC3339)}})
		events, _ = ts.page(q)
		in23 := 0
		for e := range ts.want {
			if strings.Split(e, "|")[2] >= "2026-11-30T23" {
				in23++
			}
		}
		if len(events) != in23 {
			t.Fatalf("%s: %d events in hour 23, want %d", format, len(events), in23)
		}

		got := ts.all(ts.query(url.Values{"format": {format}, "limit": {"97"}}), func(page int, _ string) {
			switch page {
			case 2: // the archiver writes the roll again: the file is back
				if err := os.WriteFile(missing[0], keep, 0o644); err != nil {
					t.Fatal(err)
				}
			case 12: // and publishes the next roll
				ts.rolls = 150
				ts.archive(1100)
			}
		})
		ts.exact(got)
	}
}

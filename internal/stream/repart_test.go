package stream

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
)

const cityJSON = `{"sensor_id":"S-17","kind":"traffic","zone":"zone-03","ts":1767254400123,"speed_kmh":42.5,"vehicle_count":7}`

// decodedCity returns the city pipeline's decoder and one decoded reading.
func decodedCity(t testing.TB) (*Decoder, *Record) {
	t.Helper()
	dec := NewDecoder(testPlan(t, ""))
	var r Record
	if err := dec.Decode([]byte(cityJSON), &r); err != nil {
		t.Fatal(err)
	}
	return dec, &r
}

// readBatch reads every event of a batch record.
func readBatch(v []byte, layout uint32, n int) ([]srcEvent, []Record, error) {
	events, err := openBatch(v, layout)
	if err != nil {
		return nil, nil, err
	}
	var srcs []srcEvent
	var recs []Record
	for len(events) > 0 {
		ev, rest, err := nextEvent(events)
		if err != nil {
			return nil, nil, err
		}
		events = rest
		src, vals, err := readSource(ev)
		if err != nil {
			return nil, nil, err
		}
		r := Record{Vals: make([]event.Value, n)}
		if err := readRecord(vals, &r, &interner{}, nil); err != nil {
			return nil, nil, err
		}
		srcs, recs = append(srcs, src), append(recs, r)
	}
	return srcs, recs, nil
}

func TestBatchRoundTrip(t *testing.T) {
	dec, r := decodedCity(t)
	r.Vals[0] = event.BoolValue(true) // every kind, whatever the slot
	layout := layoutOf(dec)
	srcs := []srcEvent{
		{pid: 3<<16 | 5, offset: 17, ingest: 1767254400999},
		{pid: 0, offset: 0, ingest: -1},
	}
	v := appendBatchHeader(nil, layout)
	whole := map[int]bool{len(v): true} // lengths that end between events
	var ev []byte
	for _, src := range srcs {
		ev = appendEvent(ev[:0], src, r)
		v = appendFramed(v, ev)
		whole[len(v)] = true
	}
	gotSrcs, got, err := readBatch(v, layout, len(r.Vals))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotSrcs, srcs) || len(got) != 2 || !reflect.DeepEqual(got[0], *r) || !reflect.DeepEqual(got[1], *r) {
		t.Fatalf("read back %+v %+v; want %+v %+v", gotSrcs, got, srcs, *r)
	}
	// Every truncation inside an event fails, none panics.
	for n := range len(v) {
		if _, _, err := readBatch(v[:n], layout, len(r.Vals)); (err == nil) != whole[n] {
			t.Fatalf("%d of %d bytes: err %v", n, len(v), err)
		}
	}
	// Another layout is refused, but where its events came from can still
	// be read.
	events, err := openBatch(v, layout+1)
	if !errors.Is(err, errLayout) {
		t.Fatalf("other layout: %v", err)
	}
	first, _, err := nextEvent(events)
	if err != nil {
		t.Fatal(err)
	}
	if src, _, err := readSource(first); err != nil || src != srcs[0] {
		t.Fatalf("source of another layout's event: %+v, %v", src, err)
	}
	if _, _, err := readBatch(v, layout, len(r.Vals)-1); err == nil {
		t.Fatal("a record with another number of values was read")
	}
}

func TestMarkerRoundTrip(t *testing.T) {
	marks := []mark{{pid: 0, maxTS: 1767254400123, seen: true}, {pid: 1<<16 | 7, idle: true}, {pid: 2, maxTS: -5, seen: true, idle: true}}
	v := appendMarker(nil, marks)
	got, err := parseMarker(nil, v)
	if err != nil || !reflect.DeepEqual(got, marks) {
		t.Fatalf("parseMarker = %+v, %v; want %+v", got, err, marks)
	}
	for n := range len(v) {
		if _, err := parseMarker(nil, v[:n]); err == nil {
			t.Fatalf("%d of %d bytes parsed", n, len(v))
		}
	}
	if _, err := parseMarker(nil, append(bytes.Clone(v), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

// FuzzRepartition checks that the readers of repartition records never
// panic, whatever a writer put in the topic.
func FuzzRepartition(f *testing.F) {
	dec, r := decodedCity(f)
	layout := layoutOf(dec)
	ev := appendEvent(nil, srcEvent{pid: 1, offset: 2, ingest: 3}, r)
	f.Add(appendFramed(appendBatchHeader(nil, layout), ev))
	f.Add(appendMarker(nil, []mark{{pid: 1, maxTS: 99, seen: true}}))
	f.Fuzz(func(t *testing.T, v []byte) {
		readBatch(v, layout, len(r.Vals))
		parseMarker(nil, v)
	})
}

// BenchmarkRepartitionValue measures the shuffle stage's encoding of a
// decoded city reading and the window stage's decoding of it.
func BenchmarkRepartitionValue(b *testing.B) {
	dec, r := decodedCity(b)
	layout := layoutOf(dec)
	got := Record{Vals: make([]event.Value, len(r.Vals))}
	var ev, buf []byte
	b.ReportAllocs()
	for b.Loop() {
		ev = appendEvent(ev[:0], srcEvent{pid: 1, offset: 2, ingest: 3}, r)
		buf = appendFramed(appendBatchHeader(buf[:0], layout), ev)
		events, err := openBatch(buf, layout)
		if err != nil {
			b.Fatal(err)
		}
		one, _, err := nextEvent(events)
		if err != nil {
			b.Fatal(err)
		}
		_, vals, err := readSource(one)
		if err != nil {
			b.Fatal(err)
		}
		if err := readRecord(vals, &got, &dec.strs, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFoldedStringsNotKept: a window task reads the strings of group keys
// and of aggregates that keep no value (count_distinct) as views of the
// fetched batch, without copies. The state must not point into the batch:
// once the batch's memory is overwritten, the results are unchanged.
func TestFoldedStringsNotKept(t *testing.T) {
	plan := testPlan(t, `
name: views
source: {topic: t, key: sensor_id, time: {field: ts}}
outputs:
  - name: zones
    group_by: [zone]
    window: {tumbling: 1m}
    aggregates:
      n: count()
      sensors: count_distinct(sensor_id)
      kinds: count_distinct(kind)
      first_sensor: first(sensor_id)
`)
	w := NewWindower(StageConfig{Plan: plan})
	if got := w.need[0][w.dec.Slot("zone")]; got != viewSlot {
		t.Errorf("group key slot read as %d, want a view", got)
	}
	if got := w.need[0][w.dec.Slot("kind")]; got != viewSlot {
		t.Errorf("slot of count_distinct(kind) read as %d, want a view", got)
	}
	if got := w.need[0][w.dec.Slot("sensor_id")]; got != keepSlot {
		t.Errorf("slot of first(sensor_id) and count_distinct(sensor_id) read as %d, want interned", got)
	}
	var batch []byte
	var bounds []int
	var r Record
	for i, js := range []string{
		`{"sensor_id":"s-1","zone":"north","kind":"traffic","ts":1000}`,
		`{"sensor_id":"s-2","zone":"north","kind":"air","ts":2000}`,
		`{"sensor_id":"s-1","zone":"south","kind":"weather","ts":3000}`,
	} {
		if err := w.dec.Decode([]byte(js), &r); err != nil {
			t.Fatal(err)
		}
		batch = appendEvent(batch, srcEvent{offset: int64(i)}, &r)
		bounds = append(bounds, len(batch))
	}
	eng := w.newEngine(0)
	start := 0
	for _, end := range bounds {
		_, vals, err := readSource(batch[start:end])
		if err != nil {
			t.Fatal(err)
		}
		if err := readRecord(vals, &w.rec, &w.strs[0], w.need[0]); err != nil {
			t.Fatal(err)
		}
		if eng.Add(0, &w.rec, 0) != 0 {
			t.Fatal("late")
		}
		start = end
	}
	for i := range batch {
		batch[i] = 'X'
	}
	got := map[string]string{}
	for _, res := range eng.Partials(0, nil) {
		got[res.Key[0]] = string(AppendValuesJSON(nil, &res))
	}
	want := map[string]string{
		"north": `{"n":2,"sensors":2,"kinds":2,"first_sensor":"s-1"}`,
		"south": `{"n":1,"sensors":1,"kinds":1,"first_sensor":"s-1"}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("results after the batch was overwritten:\n got %v\nwant %v", got, want)
	}
}

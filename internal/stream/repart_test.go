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

func TestEventValueRoundTrip(t *testing.T) {
	dec, r := decodedCity(t)
	r.Vals[0] = event.BoolValue(true) // every kind, whatever the slot
	layout := layoutOf(dec)
	v := appendEventValue(nil, 3<<16|5, layout, r, []byte(cityJSON))
	got := Record{Vals: make([]event.Value, len(r.Vals))}
	pid, raw, err := readEventValue(v, layout, &got, func(b []byte) string { return string(b) })
	if err != nil {
		t.Fatal(err)
	}
	if pid != 3<<16|5 || string(raw) != cityJSON || !reflect.DeepEqual(got, *r) {
		t.Fatalf("read back pid %d, raw %s, %+v; want %+v", pid, raw, got, *r)
	}
	// Every truncation fails, none panics; another layout is refused.
	for n := range len(v) - len(cityJSON) {
		if _, _, err := readEventValue(v[:n], layout, &got, func(b []byte) string { return string(b) }); err == nil {
			t.Fatalf("%d of %d bytes read without error", n, len(v))
		}
	}
	if _, _, err := readEventValue(v, layout+1, &got, func(b []byte) string { return string(b) }); !errors.Is(err, errLayout) {
		t.Fatalf("other layout: %v", err)
	}
	short := Record{Vals: make([]event.Value, len(r.Vals)-1)}
	if _, _, err := readEventValue(v, layout, &short, func(b []byte) string { return string(b) }); err == nil {
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
	f.Add(appendEventValue(nil, 1, layout, r, []byte(cityJSON)))
	f.Add(appendMarker(nil, []mark{{pid: 1, maxTS: 99, seen: true}}))
	f.Fuzz(func(t *testing.T, v []byte) {
		got := Record{Vals: make([]event.Value, len(r.Vals))}
		readEventValue(v, layout, &got, func(b []byte) string { return string(b) })
		parseMarker(nil, v)
	})
}

// BenchmarkRepartitionValue measures the shuffle stage's encoding of a
// decoded city reading and the window stage's decoding of it.
func BenchmarkRepartitionValue(b *testing.B) {
	dec, r := decodedCity(b)
	layout := layoutOf(dec)
	got := Record{Vals: make([]event.Value, len(r.Vals))}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEventValue(buf[:0], 1, layout, r, []byte(cityJSON))
		if _, _, err := readEventValue(buf, layout, &got, dec.intern); err != nil {
			b.Fatal(err)
		}
	}
}

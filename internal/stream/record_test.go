package stream

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/internal/aggregate"
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

const recT0 = int64(1796119200000) // 2026-12-01T10:00:00Z

// typedOutput is an events output with a value column of every type.
func typedOutput() *pipeline.Output {
	return &pipeline.Output{Name: "typed", Kind: pipeline.KindEvents, GroupBy: []string{"sensor_id", "zone"},
		Columns: []pipeline.Column{
			{Name: "s", Type: pipeline.TypeString}, {Name: "i", Type: pipeline.TypeInt64},
			{Name: "f", Type: pipeline.TypeFloat64}, {Name: "b", Type: pipeline.TypeBool},
			{Name: "ts", Type: pipeline.TypeTimestamp}, {Name: "d", Type: pipeline.TypeDecimal},
			{Name: "a", Type: TypeAny},
		}}
}

func windowOutput(t testing.TB) *pipeline.Output {
	agg := func(name, fn, field string) pipeline.Aggregate {
		f, ok := aggregate.Lookup(fn)
		if field != "" {
			f, ok = aggregate.LookupWithField(fn)
		}
		if !ok {
			t.Fatalf("no aggregate %s", fn)
		}
		return pipeline.Aggregate{Name: name, Func: f, Field: field}
	}
	return &pipeline.Output{Name: "sensor_1m", GroupBy: []string{"sensor_id"},
		Aggregates: []pipeline.Aggregate{agg("count", "count", ""), agg("speed_kmh_avg", "avg", "speed_kmh"), agg("first_kind", "first", "kind")},
		Computed:   []pipeline.Computed{{Name: "fast", Type: pipeline.TypeBool}}}
}

func num(f float64) event.Value { return event.NumberValue(f) }
func str(s string) event.Value  { return event.StringValue(s) }

// TestSchemaOf checks the columns and types derived from outputs.
func TestSchemaOf(t *testing.T) {
	got := SchemaOf(windowOutput(t)).Columns
	want := []pipeline.Column{{Name: "sensor_id", Type: pipeline.TypeString},
		{Name: "window_start", Type: pipeline.TypeTimestamp}, {Name: "window_end", Type: pipeline.TypeTimestamp},
		{Name: "count", Type: pipeline.TypeInt64}, {Name: "speed_kmh_avg", Type: pipeline.TypeFloat64},
		{Name: "first_kind", Type: TypeAny}, {Name: "fast", Type: pipeline.TypeBool}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("window schema %v, want %v", got, want)
	}
	s := SchemaOf(typedOutput())
	if c := s.Columns[2]; c.Name != pipeline.ColEventID || c.Type != pipeline.TypeString || len(s.Group()) != 3 {
		t.Errorf("events schema %v: the group fields then event_id identify a row", s.Columns)
	}
	if c := s.Columns[3]; c.Name != "time" || c.Type != pipeline.TypeTimestamp || len(s.Values()) != 7 || s.Windowed() {
		t.Errorf("events schema %v", s.Columns)
	}
	for fn, want := range map[string]pipeline.ColumnType{"count": pipeline.TypeInt64, "count_distinct": pipeline.TypeInt64,
		"avg": pipeline.TypeFloat64, "p99": pipeline.TypeFloat64, "stddev": pipeline.TypeFloat64, "last": TypeAny} {
		f, _ := aggregate.LookupWithField(fn)
		if got := pipeline.AggregateType(f); got != want {
			t.Errorf("AggregateType(%s) = %s, want %s", fn, got, want)
		}
	}
}

// TestRecordFormat checks the bytes of a window record, worked out by
// hand from the documented format (docs/api.md, Result topics).
func TestRecordFormat(t *testing.T) {
	s := SchemaOf(windowOutput(t))
	r := Result{Output: "sensor_1m", Key: []string{"s-1"}, Start: recT0, End: recT0 + 60_000, Final: true,
		Values: []event.Value{num(3), num(41.5), {}, event.BoolValue(true)}}
	key, value, headers := s.Record(&r)
	if want := `{"sensor_id":"s-1","window_start":"2026-12-01T10:00:00Z"}`; string(key) != want {
		t.Errorf("key %s, want %s", key, want)
	}
	want := `{"sensor_id":"s-1","window_start":"2026-12-01T10:00:00Z","window_end":"2026-12-01T10:01:00Z",` +
		`"count":3,"speed_kmh_avg":41.5,"first_kind":null,"fast":true}`
	if string(value) != want {
		t.Errorf("value %s, want %s", value, want)
	}
	if len(headers) != 1 || headers[0].Key != "pulse-kind" || string(headers[0].Value) != "insert" {
		t.Errorf("headers %v", headers)
	}
	if got, want := string(s.AppendRow(nil, &r)), `{"output":"sensor_1m","key":{"sensor_id":"s-1"},"window_start":"2026-12-01T10:00:00Z",`+
		`"window_end":"2026-12-01T10:01:00Z","final":true,"count":3,"speed_kmh_avg":41.5,"fast":true}`; got != want {
		t.Errorf("API row %s, want %s", got, want)
	}
	if got := string(s.AppendStored(nil, &r)); got != `{"count":3,"speed_kmh_avg":41.5,"fast":true}` {
		t.Errorf("stored %s", got)
	}
	r.Kind = KindDelete
	key, value, headers = s.Record(&r)
	if string(key) != `{"sensor_id":"s-1","window_start":"2026-12-01T10:00:00Z"}` || value != nil || string(headers[0].Value) != "delete" {
		t.Errorf("delete: key %s value %q headers %v", key, value, headers)
	}
	// An events output: time is the only bound, and event_id names the
	// event the row was made of.
	e := SchemaOf(&pipeline.Output{Name: "alerts", Kind: pipeline.KindEvents, Columns: []pipeline.Column{{Name: "v", Type: pipeline.TypeFloat64}}})
	er := Result{Output: "alerts", Key: []string{"logs/0/7"}, Start: recT0 + 250, End: recT0 + 250, Final: true, Values: []event.Value{num(-1e-7)}}
	k, v, _ := e.Record(&er)
	if string(k) != `{"event_id":"logs/0/7","time":"2026-12-01T10:00:00.25Z"}` || string(v) != `{"event_id":"logs/0/7","time":"2026-12-01T10:00:00.25Z","v":-1e-7}` {
		t.Errorf("events key %s value %s", k, v)
	}
	if got := string(e.AppendRow(nil, &Result{Key: []string{"logs/0/7"}, Start: recT0, Final: true, Values: []event.Value{{}}})); got != `{"output":"alerts","key":{"event_id":"logs/0/7"},"time":"2026-12-01T10:00:00Z","final":true}` {
		t.Errorf("events API row %s", got)
	}
}

// TestRecordRoundTrip encodes results of every column type and kind and
// decodes them back.
func TestRecordRoundTrip(t *testing.T) {
	s := SchemaOf(typedOutput())
	nasty := "q\"uote \\ back\nline\ttab \x01 \x7f é 😀 </script>"
	full := []event.Value{str(nasty), num(1 << 53), num(-0.1), event.BoolValue(false), num(float64(recT0 + 999)),
		str("12345678901234567890.123456789"), str("x")}
	tests := []struct {
		name string
		kind RecordKind
		key  []string
		in   []event.Value
		want []event.Value // nil: as in
	}{
		{"every type", KindInsert, []string{"s-1", "zone-01", "raw/0/1"}, full, nil},
		{"update", KindUpdate, []string{"s-1", "zone-01", "raw/0/1"}, full, nil},
		{"delete", KindDelete, []string{nasty, "", "raw/3/99"}, full, nil},
		{"nulls", KindInsert, []string{"", "", ""}, make([]event.Value, 7), nil},
		{"short values are null", KindInsert, []string{"a", "b", "c"}, []event.Value{str("only")}, append([]event.Value{str("only")}, make([]event.Value, 6)...)},
		{"NaN and infinities are null", KindInsert, []string{"a", "b", "c"},
			[]event.Value{{}, num(math.Inf(1)), num(math.NaN()), {}, num(math.Inf(-1)), num(math.NaN()), num(math.Inf(1))},
			make([]event.Value, 7)},
		{"coercions", KindInsert, []string{"a", "b", "c"},
			[]event.Value{num(1e6), num(2.9), num(3), str("true"), str("noon"), num(0.5), event.BoolValue(true)},
			[]event.Value{str("1000000"), num(2), num(3), {}, {}, str("0.5"), event.BoolValue(true)}},
		{"any holds numbers and strings", KindInsert, []string{"a", "b", "c"},
			[]event.Value{{}, num(-(1 << 53)), num(1e300), {}, num(0), str("-0"), num(1.25)},
			[]event.Value{{}, num(-(1 << 53)), num(1e300), {}, num(0), str("-0"), num(1.25)}},
		{"a decimal string that is no number is null", KindInsert, []string{"a", "b", "c"},
			[]event.Value{{}, {}, {}, {}, {}, str("01.5"), {}}, make([]event.Value, 7)},
	}
	d := NewRecordDecoder(s)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Result{Output: "typed", Key: tt.key, Start: recT0 + 7, End: recT0 + 7, Final: true, Kind: tt.kind, Values: tt.in}
			key, value, headers := s.Record(&in)
			got, err := d.Decode(key, value, headers[0].Value)
			if err != nil {
				t.Fatalf("decode %s / %s: %v", key, value, err)
			}
			want := Result{Output: "typed", GroupBy: []string{"sensor_id", "zone", pipeline.ColEventID}, Key: tt.key, Start: in.Start, End: in.End,
				Final: true, Kind: tt.kind, Names: s.ValueNames(), Values: tt.want}
			if want.Values == nil {
				want.Values = tt.in
			}
			if tt.kind == KindDelete {
				want.Values = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %+v\nwant    %+v\nfrom %s / %s", got, want, key, value)
			}
			if tt.kind == KindDelete {
				return
			}
			// A store keeps the values alone.
			var stored Result
			if err := d.DecodeStored(s.AppendStored(nil, &in), &stored); err != nil || !reflect.DeepEqual(stored.Values, want.Values) {
				t.Fatalf("stored values %v (%v), want %v", stored.Values, err, want.Values)
			}
		})
	}
}

// TestRecordDecodeLenient: what other writers may do that is accepted.
func TestRecordDecodeLenient(t *testing.T) {
	s := SchemaOf(windowOutput(t))
	d := NewRecordDecoder(s)
	// Members in another order, an unknown one, a time with an offset,
	// no kind header; a null value with a delete header.
	r, err := d.Decode(nil, []byte(`{"extra":[1],"count":2.0,"window_end":"2026-12-01T11:01:00+01:00","window_start":"2026-12-01T10:00:00Z","sensor_id":"s"}`), nil)
	if err != nil || r.Kind != KindInsert || r.Start != recT0 || r.End != recT0+60_000 || r.Values[0] != num(2) || !r.Values[1].IsNull() {
		t.Fatalf("decoded %+v, %v", r, err)
	}
	r, err = d.Decode([]byte(`{"sensor_id":"s","window_start":"2026-12-01T10:00:00Z"}`), nil, nil)
	if err != nil || r.Kind != KindDelete || r.Key[0] != "s" || r.Start != recT0 {
		t.Fatalf("tombstone decoded %+v, %v", r, err)
	}
	// The format before schemas, as records still in a result topic
	// after an upgrade hold it.
	old := `{"output":"sensor_1m","key":{"sensor_id":"s"},"window_start":"2026-12-01T10:00:00Z","window_end":"2026-12-01T10:01:00Z","final":true`
	r, err = d.Decode([]byte("s"), []byte(old+`,"count":3}`), nil)
	if err != nil || r.Kind != KindInsert || r.Key[0] != "s" || r.Start != recT0 || r.Values[0] != num(3) {
		t.Fatalf("old insert decoded %+v, %v", r, err)
	}
	r, err = d.Decode([]byte("s"), []byte(old+`,"retract":true}`), nil)
	if err != nil || r.Kind != KindDelete || r.Key[0] != "s" || r.Start != recT0 || r.Values != nil {
		t.Fatalf("old retraction decoded %+v, %v", r, err)
	}
	if _, err := d.Decode(nil, []byte(`{"key":{"sensor_id":1},"window_start":"2026-12-01T10:00:00Z","window_end":"2026-12-01T10:01:00Z"}`), nil); err == nil {
		t.Fatal("an old record with a number for a group field was accepted")
	}
	// A stored row of an older pipeline file: a column that changed type
	// stays null, an unknown one is skipped.
	var st Result
	if err := d.DecodeStored([]byte(`{"count":"many","gone":1,"speed_kmh_avg":3}`), &st); err != nil || !st.Values[0].IsNull() || st.Values[1] != num(3) {
		t.Fatalf("stored %+v, %v", st, err)
	}
}

// TestRecordDecodeRejects: records that are not results of the output.
func TestRecordDecodeRejects(t *testing.T) {
	d := NewRecordDecoder(SchemaOf(windowOutput(t)))
	ok := `"sensor_id":"s","window_start":"2026-12-01T10:00:00Z","window_end":"2026-12-01T10:01:00Z"`
	tests := []struct{ name, key, value, kind, err string }{
		{"not JSON", "", `{`, "", "not JSON"},
		{"not an object", "", `[1]`, "", "not a JSON object"},
		{"no group field", "", `{"window_start":"2026-12-01T10:00:00Z","window_end":"2026-12-01T10:01:00Z"}`, "", `no "sensor_id"`},
		{"no window end", "", `{"sensor_id":"s","window_start":"2026-12-01T10:00:00Z"}`, "", `no "window_end"`},
		{"group field a number", "", `{"sensor_id":1,"window_start":"2026-12-01T10:00:00Z","window_end":"2026-12-01T10:01:00Z"}`, "", "want a string"},
		{"bad time", "", `{"sensor_id":"s","window_start":"noon","window_end":"2026-12-01T10:01:00Z"}`, "", "not an RFC 3339 time"},
		{"epoch time", "", `{"sensor_id":"s","window_start":1,"window_end":"2026-12-01T10:01:00Z"}`, "", "want an RFC 3339 time string"},
		{"year 10000", "", `{"sensor_id":"s","window_start":"9999-12-31T23:00:00-02:00","window_end":"2026-12-01T10:01:00Z"}`, "", "outside the years"},
		{"fractional count", "", `{` + ok + `,"count":1.5}`, "", "not a whole number"},
		{"huge count", "", `{` + ok + `,"count":1e300}`, "", "not a whole number"},
		{"count a string", "", `{` + ok + `,"count":"3"}`, "", "want a int64"},
		{"avg a bool", "", `{` + ok + `,"speed_kmh_avg":true}`, "", "want a float64"},
		{"first an object", "", `{` + ok + `,"first_kind":{}}`, "", "want a string, a number or a boolean"},
		{"unknown kind", "", `{` + ok + `}`, "upsert", "want insert, update or delete"},
		{"delete without a key", "", "", "delete", "key of a delete"},
		{"delete key without start", `{"sensor_id":"s"}`, "", "delete", `no "window_start"`},
	}
	for _, tt := range tests {
		var value, kind []byte
		if tt.value != "" {
			value = []byte(tt.value)
		}
		if tt.kind != "" {
			kind = []byte(tt.kind)
		}
		r, err := d.Decode([]byte(tt.key), value, kind)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: Decode = %+v, %v; want an error with %q", tt.name, r, err, tt.err)
		}
	}
}

// FuzzRecordDecode: the decoder never panics on what anyone may write to
// a result topic, and what it accepts encodes to a record that decodes to
// itself after one round (invalid UTF-8 is replaced on the first).
func FuzzRecordDecode(f *testing.F) {
	s := SchemaOf(typedOutput())
	r := Result{Key: []string{"s", "z", "raw/0/1"}, Start: recT0, End: recT0, Values: []event.Value{str("a\"b"), num(3), num(0.5),
		event.BoolValue(true), num(float64(recT0)), str("1.5"), str("x")}}
	k, v, _ := s.Record(&r)
	f.Add(k, v, []byte("insert"))
	f.Add(k, []byte(nil), []byte("delete"))
	f.Add(k, []byte(`{"sensor_id":"s","zone":"z","time":"2026-12-01T10:00:00+05:00","i":null,"d":-0.0e+5}`), []byte(nil))
	f.Add([]byte(nil), []byte(`{"output":"typed","key":{"sensor_id":"s","zone":"z"},"time":"2026-12-01T10:00:00Z","retract":true}`), []byte(nil))
	d := NewRecordDecoder(s)
	again := func(t *testing.T, r Result) Result {
		k, v, h := s.Record(&r)
		out, err := d.Decode(k, v, h[0].Value)
		if err != nil {
			t.Fatalf("re-encoded %+v as %s / %s: %v", r, k, v, err)
		}
		return out
	}
	f.Fuzz(func(t *testing.T, key, value, kind []byte) {
		r, err := d.Decode(key, value, kind)
		if err != nil {
			return
		}
		if len(r.Key) != 3 || (r.Kind != KindDelete && len(r.Values) != 7) {
			t.Fatalf("accepted %q / %q as %+v", key, value, r)
		}
		r2 := again(t, r)
		if r3 := again(t, r2); !reflect.DeepEqual(r2, r3) {
			t.Fatalf("not stable: %+v then %+v", r2, r3)
		}
	})
}

// benchResult is a city sensor_1m final of a traffic sensor: 3 of the
// 11 metrics seen, as most windows are.
func benchResult(b *testing.B) (*Schema, Result) {
	plan, err := pipeline.BuiltinNamed("city")
	if err != nil {
		b.Fatal(err)
	}
	s := SchemaOf(&plan.Outputs[0])
	r := Result{Output: s.Output, GroupBy: plan.Outputs[0].GroupBy, Key: []string{"S-0042"}, Start: recT0, End: recT0 + 60_000,
		Final: true, Names: s.ValueNames(), Values: make([]event.Value, len(s.ValueNames()))}
	for i, n := range s.ValueNames() {
		switch {
		case n == "count" || strings.HasSuffix(n, "_count"):
			r.Values[i] = num(float64(i % 7))
		case strings.HasPrefix(n, "speed") || strings.HasPrefix(n, "vehicles") || strings.HasPrefix(n, "occupancy"):
			r.Values[i] = num(41.5 + float64(i))
		}
	}
	return s, r
}

func BenchmarkRecordEncode(b *testing.B) {
	s, r := benchResult(b)
	b.ReportAllocs()
	for b.Loop() {
		s.Record(&r)
	}
}

func BenchmarkRecordDecode(b *testing.B) {
	s, r := benchResult(b)
	k, v, h := s.Record(&r)
	d := NewRecordDecoder(s)
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decode(k, v, h[0].Value); err != nil {
			b.Fatal(err)
		}
	}
}

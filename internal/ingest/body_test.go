package ingest

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fastjson"
)

func TestSplitBody(t *testing.T) {
	type want struct {
		raw  string
		line int
	}
	tests := []struct {
		name   string
		body   string
		ndjson bool
		want   []want
		errAt  int    // expected BodyError line; 0 means no error
		errHas string // substring of the error
	}{
		{name: "single object", body: `{"a":1}`, want: []want{{`{"a":1}`, 1}}},
		{name: "single object, trailing newline", body: "{\"a\":1}\r\n", want: []want{{`{"a":1}`, 1}}},
		{name: "single object after blank lines", body: "\n\n  {\"a\":1}", want: []want{{`{"a":1}`, 3}}},
		{name: "pretty-printed object",
			body: "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ]\n}\n",
			want: []want{{"{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ]\n}", 1}}},
		{name: "pretty-printed object after a blank line",
			body: "\n{\r\n  \"a\": 1\r\n}", want: []want{{"{\r\n  \"a\": 1\r\n}", 2}}},
		{name: "array", body: `[{"a":1},{"b":"x"}]`, want: []want{{`{"a":1}`, 0}, {`{"b":"x"}`, 0}}},
		{name: "pretty-printed array, elements re-serialized compactly",
			body: "[\n  {\"a\": 1},\n  {\"b\": [1, 2]}\n]\n", want: []want{{`{"a":1}`, 0}, {`{"b":[1,2]}`, 0}}},
		{name: "empty array", body: ` [ ] `, want: nil},
		{name: "array of non-objects is split, validation rejects later", body: `[1,"x"]`, want: []want{{`1`, 0}, {`"x"`, 0}}},
		{name: "NDJSON", body: "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n", want: []want{{`{"a":1}`, 1}, {`{"b":2}`, 2}, {`{"c":3}`, 3}}},
		{name: "NDJSON with blank lines and CRLF",
			body: "\r\n{\"a\":1}\r\n\r\n   \r\n{\"b\":2}\r\n\t{\"c\":3}",
			want: []want{{`{"a":1}`, 2}, {`{"b":2}`, 5}, {`{"c":3}`, 6}}},
		{name: "NDJSON forced, array line is one event", body: "[1,2]\n{\"a\":1}", ndjson: true,
			want: []want{{`[1,2]`, 1}, {`{"a":1}`, 2}}},
		{name: "NDJSON forced, single object", body: `{"a":1}`, ndjson: true, want: []want{{`{"a":1}`, 1}}},
		{name: "NDJSON forced, pretty-printed object is malformed on line 1", body: "{\n\"a\":1\n}", ndjson: true,
			errAt: 1, errHas: "malformed JSON"},
		{name: "NDJSON malformed on line 3", body: "{\"a\":1}\n{\"b\":2}\n{\"c\":}\n{\"d\":4}\n",
			errAt: 3, errHas: "line 3: malformed JSON: invalid character '}'"},
		{name: "NDJSON malformed line after blank lines counts them", body: "{\"a\":1}\r\n\r\n\r\n{\"b\"\r\n", errAt: 4, errHas: "malformed JSON"},
		{name: "NDJSON two objects on line 2", body: "{\"a\":1}\n{\"b\":2} {\"c\":3}\n", errAt: 2, errHas: "malformed JSON"},
		{name: "first line malformed", body: "{\"a\":\n{\"b\":2}\n", errAt: 2, errHas: "malformed JSON"},
		{name: "pretty-printed object malformed on line 3", body: "{\n  \"a\": 1,\n  \"b\": ,\n  \"c\": 2\n}\n",
			errAt: 3, errHas: "line 3: malformed JSON"},
		{name: "array malformed on line 3", body: "[\n{\"a\":1},\n{\"b\":}\n]", errAt: 3, errHas: "malformed JSON"},
		{name: "array not closed", body: "[\n{\"a\":1},\n{\"b\":2}\n", errAt: 3, errHas: "unexpected end of JSON input"},
		{name: "array with trailing garbage", body: `[{"a":1}] x`, errAt: 1, errHas: "malformed JSON"},
		{name: "empty body", body: "", errAt: 1, errHas: "empty body"},
		{name: "whitespace body", body: " \r\n\t\n ", errAt: 1, errHas: "empty body"},
		{name: "not JSON", body: "hello world", errAt: 1, errHas: "malformed JSON"},
	}
	var p fastjson.Parser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, err := splitBody([]byte(tt.body), tt.ndjson, &p, nil, nil)
			if tt.errAt != 0 {
				var be *BodyError
				if !errors.As(err, &be) {
					t.Fatalf("err = %v (%T), want a *BodyError; items %v", err, err, items)
				}
				if be.Line != tt.errAt || !strings.Contains(be.Error(), tt.errHas) {
					t.Fatalf("err = %q (line %d), want line %d containing %q", be, be.Line, tt.errAt, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("splitBody: %v", err)
			}
			var got []want
			for _, it := range items {
				got = append(got, want{string(it.raw), it.line})
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d items %v, want %d %v", len(got), got, len(tt.want), tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("item %d = %q line %d, want %q line %d", i, got[i].raw, got[i].line, tt.want[i].raw, tt.want[i].line)
				}
			}
		})
	}
}

// TestSplitBodyAppends checks that splitBody reuses dst's storage.
func TestSplitBodyAppends(t *testing.T) {
	var p fastjson.Parser
	dst := make([]item, 0, 8)
	items, err := splitBody([]byte("{\"a\":1}\n{\"b\":2}"), false, &p, dst, nil)
	if err != nil || len(items) != 2 || &items[0] != &dst[:1][0] {
		t.Fatalf("splitBody = %d items, %v; want 2 in dst's array", len(items), err)
	}
}

func FuzzSplitBody(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, "{\n \"a\": 1\n}", `[{"a":1},{"b":2}]`, "{\"a\":1}\r\n\r\n{\"b\":2}",
		"{\"a\":1}\n{\"b\":}\n", "[\n{\"a\":}\n]", "", " \n ", "{\n\"a\":\n", `[1,[2,[3]]]`, "\x00{", `{"a":1-2}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	var p, check fastjson.Parser
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		orig := bytes.Clone(body)
		items, err := splitBody(body, ndjson, &p, nil, nil)
		if !bytes.Equal(body, orig) {
			t.Fatal("splitBody modified the body")
		}
		if err != nil {
			var be *BodyError
			if !errors.As(err, &be) {
				t.Fatalf("err %v is %T, want *BodyError", err, err)
			}
			if be.Line < 1 || be.Line > 1+bytes.Count(body, []byte{'\n'}) || be.Reason == "" {
				t.Fatalf("BodyError %+v for a body of %d lines", be, 1+bytes.Count(body, []byte{'\n'}))
			}
			return
		}
		last := 0
		for i, it := range items {
			if _, err := check.ParseBytes(it.raw); err != nil {
				t.Fatalf("item %d %q is not JSON: %v", i, it.raw, err)
			}
			if it.line != 0 {
				if it.line <= last {
					t.Fatalf("item %d on line %d after line %d", i, it.line, last)
				}
				last = it.line
			}
		}
		if ndjson {
			return
		}
		// A body that is one JSON value is split by its structure.
		v, err := check.ParseBytes(body)
		if err != nil {
			return
		}
		switch v.Type() {
		case fastjson.TypeArray:
			if arr, _ := v.Array(); len(arr) != len(items) {
				t.Fatalf("array of %d elements split into %d items", len(arr), len(items))
			}
		case fastjson.TypeObject:
			if len(items) != 1 {
				t.Fatalf("one object split into %d items", len(items))
			}
		}
	})
}

// ndjsonBatch returns n city readings as NDJSON, cycling through kinds.
func ndjsonBatch(n int, baseMs int64) []byte {
	var b bytes.Buffer
	for i := range n {
		id := strconv.Itoa(i % 500)
		ts := strconv.FormatInt(baseMs+int64(i), 10)
		switch i % 3 {
		case 0:
			b.WriteString(`{"sensor_id":"tr-` + id + `","zone":"zone-0` + strconv.Itoa(i%8) + `","kind":"traffic","ts":` + ts + `,"speed_kmh":42.5,"vehicle_count":12,"occupancy":33.3}`)
		case 1:
			b.WriteString(`{"sensor_id":"air-` + id + `","zone":"zone-0` + strconv.Itoa(i%8) + `","kind":"air","ts":` + ts + `,"pm25":12.1,"pm10":20.4,"no2":31,"o3":44}`)
		default:
			b.WriteString(`{"sensor_id":"w-` + id + `","zone":"zone-0` + strconv.Itoa(i%8) + `","kind":"weather","ts":"2026-03-01T12:00:00.123Z","temp_c":-3.5,"humidity":80,"wind_ms":4.2}`)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// BenchmarkSplitParse measures decoding and validation without a broker,
// as the handler does it for city events: splitBody checking each event as
// it parses it, over 1,000-event NDJSON batches.
func BenchmarkSplitParse(b *testing.B) {
	body := ndjsonBatch(1000, 1772366400000)
	st := &state{}
	st.checkCity = st.checkCityEvent
	items := make([]item, 0, 1000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	events := 0
	for b.Loop() {
		var err error
		items, err = splitBody(body, true, &st.split, items[:0], st.checkCity)
		if err != nil {
			b.Fatal(err)
		}
		for _, it := range items {
			if !it.checked || it.err != nil {
				b.Fatalf("event %s: checked %v, %v", it.raw, it.checked, it.err)
			}
		}
		events += len(items)
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

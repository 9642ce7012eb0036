package stream

import (
	"math"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fastjson"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// RecordKind is what a result record does to the row of its identity
// (group fields and window start, or time) in a store.
type RecordKind uint8

// The record kinds.
const (
	// KindInsert is a window's first final, or a new events row.
	KindInsert RecordKind = iota
	// KindUpdate replaces a final emitted before: a late event within the
	// allowed lateness changed the window.
	KindUpdate
	// KindDelete withdraws a final emitted before: a session window that
	// merged into another one or grew to a new start.
	KindDelete
)

// KindHeader is the record header that carries a result record's kind:
// "insert", "update" or "delete". A delete is also a tombstone (a null
// value), so that a record without the header is still understood.
const KindHeader = "pulse-kind"

var kindNames = [...]string{KindInsert: "insert", KindUpdate: "update", KindDelete: "delete"}

// String returns the kind's header value.
func (k RecordKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// kindHeaders holds each kind's headers, shared by every record: a
// producer only reads them.
var kindHeaders = [...][]kgo.RecordHeader{
	KindInsert: {{Key: KindHeader, Value: []byte("insert")}},
	KindUpdate: {{Key: KindHeader, Value: []byte("update")}},
	KindDelete: {{Key: KindHeader, Value: []byte("delete")}},
}

// KindOf returns what r does to its row: a retraction deletes it.
func KindOf(r *Result) RecordKind {
	if r.Retract {
		return KindDelete
	}
	return r.Kind
}

// Record encodes r as a result-topic record: its key (the identity
// columns, AppendKey), its value (every column, AppendValue; nil for a
// delete: a tombstone) and its kind header. Key and value share one
// allocation.
func (s *Schema) Record(r *Result) (key, value []byte, headers []kgo.RecordHeader) {
	kind := KindOf(r)
	buf := s.AppendKey(make([]byte, 0, 64+32*len(s.Columns)), r)
	n := len(buf)
	if kind != KindDelete {
		buf = s.AppendValue(buf, r)
		value = buf[n:]
	}
	return buf[:n:n], value, kindHeaders[kind]
}

// AppendKey appends r's record key: a flat JSON object of its identity
// columns, the group fields then window_start (or time), e.g.
// {"sensor_id":"s-1","window_start":"2026-12-01T10:00:00Z"}.
func (s *Schema) AppendKey(dst []byte, r *Result) []byte {
	dst = append(dst, '{')
	dst = s.appendGroup(dst, r)
	if s.groups > 0 {
		dst = append(dst, ',')
	}
	dst = append(dst, s.members[s.groups]...)
	dst = AppendTimestamp(dst, r.Start)
	return append(dst, '}')
}

// AppendValue appends r's record value: a flat JSON object with one
// member per column, in the schema's order, null for a value r does not
// have (see appendCell for the types).
func (s *Schema) AppendValue(dst []byte, r *Result) []byte {
	dst = append(dst, '{')
	dst = s.appendGroup(dst, r)
	dst = s.appendBounds(dst, r, s.groups > 0)
	return append(s.appendValues(dst, r, false, true), '}')
}

// AppendStored appends r's value columns as a JSON object, leaving out
// those without a value: what a store keeps of a row besides its
// identity and bounds (DecodeStored reads it).
func (s *Schema) AppendStored(dst []byte, r *Result) []byte {
	return append(s.appendValues(append(dst, '{'), r, true, false), '}')
}

// AppendRow appends r as a row of the results API and the live views:
// {"output":...,"key":{group fields},"window_start":...,"window_end":...,
// "final":..., then the value columns that have a value}; an events or
// detect output's row has "time" for the bounds.
func (s *Schema) AppendRow(dst []byte, r *Result) []byte {
	dst = append(dst, `{"output":`...)
	dst = event.AppendJSONString(dst, s.Output)
	dst = s.AppendRowID(append(dst, ','), r)
	if s.bounds == 2 {
		dst = append(dst, ',')
		dst = append(dst, s.members[s.groups+1]...)
		dst = AppendTimestamp(dst, r.End)
	}
	dst = append(dst, `,"final":`...)
	dst = strconv.AppendBool(dst, r.Final)
	return append(s.appendValues(dst, r, true, true), '}')
}

// AppendRowID appends the JSON members that identify a row of the API
// and live views: "key", the object of group fields, and window_start
// (or time).
func (s *Schema) AppendRowID(dst []byte, r *Result) []byte {
	dst = append(dst, `"key":{`...)
	dst = s.appendGroup(dst, r)
	dst = append(dst, '}', ',')
	dst = append(dst, s.members[s.groups]...)
	return AppendTimestamp(dst, r.Start)
}

// AppendMember appends value column i (an index into Values) of r as a
// JSON member, "name":value; ok is false, and nothing is appended, when
// it has no value.
func (s *Schema) AppendMember(dst []byte, r *Result, i int) (_ []byte, ok bool) {
	return s.appendMember(dst, r, i, false)
}

// appendMember appends value column i of r as a member; without a value
// it appends "name":null when keepNull, else nothing, and ok is false.
func (s *Schema) appendMember(dst []byte, r *Result, i int, keepNull bool) (_ []byte, ok bool) {
	n := len(dst)
	j := s.groups + s.bounds + i
	dst = append(dst, s.members[j]...)
	m := len(dst)
	dst = appendCell(dst, s.Columns[j].Type, valueAt(r, i))
	if string(dst[m:]) == "null" {
		if keepNull {
			return dst, false
		}
		return dst[:n], false
	}
	return dst, true
}

// RowField is one member of an API row besides its identity.
type RowField struct {
	// Idx orders the members: -2 window_end, -1 final, then value
	// column Idx.
	Idx int
	// Member is the whole member, "name":value; its first NameLen bytes
	// are the "name": prefix.
	Member  []byte
	NameLen int
}

// RowFields appends the members of r's API row after its identity, as
// AppendRow writes them (value columns without a value left out), in
// Idx order; their bytes share one buffer.
func (s *Schema) RowFields(dst []RowField, r *Result) []RowField {
	type span struct{ from, to int }
	var buf []byte
	spans := make([]span, 0, 2+len(s.names))
	first := len(dst)
	mark := func(idx, from, name int) {
		dst = append(dst, RowField{Idx: idx, NameLen: name - from})
		spans = append(spans, span{from, len(buf)})
	}
	if s.bounds == 2 {
		buf = append(buf, s.members[s.groups+1]...)
		n := len(buf)
		buf = AppendTimestamp(buf, r.End)
		mark(-2, 0, n)
	}
	from := len(buf)
	buf = append(buf, `"final":`...)
	n := len(buf)
	buf = strconv.AppendBool(buf, r.Final)
	mark(-1, from, n)
	for i := range s.names {
		from := len(buf)
		var ok bool
		if buf, ok = s.AppendMember(buf, r, i); ok {
			mark(i, from, from+len(s.members[s.groups+s.bounds+i]))
		}
	}
	for i, sp := range spans {
		dst[first+i].Member = buf[sp.from:sp.to:sp.to]
	}
	return dst
}

// Cell returns the value of column i of r: a group field as a string, a
// bound as a timestamp (ms), a value column as it is.
func (s *Schema) Cell(r *Result, i int) event.Value {
	switch {
	case i < s.groups:
		if i < len(r.Key) {
			return event.StringValue(r.Key[i])
		}
		return event.StringValue("")
	case i == s.groups:
		return event.NumberValue(float64(r.Start))
	case i < s.groups+s.bounds:
		return event.NumberValue(float64(r.End))
	}
	return valueAt(r, i-s.groups-s.bounds)
}

// AppendCellText appends v as the plain text of a cell of type t, for CSV:
// a string as it is, a timestamp in RFC 3339 without quotes, numbers and
// booleans as in JSON, nothing for what JSON writes as null.
func AppendCellText(dst []byte, t pipeline.ColumnType, v event.Value) []byte {
	switch {
	case v.Kind == event.String && (t == pipeline.TypeString || t == TypeAny):
		return append(dst, v.Str...)
	case t == pipeline.TypeString && v.Kind != event.Null && finite(v):
		return v.AppendKeyText(dst)
	case t == pipeline.TypeTimestamp && v.Kind == event.Number && finite(v):
		return time.UnixMilli(int64(v.Num)).UTC().AppendFormat(dst, time.RFC3339Nano)
	}
	n := len(dst)
	if dst = appendCell(dst, t, v); string(dst[n:]) == "null" {
		return dst[:n]
	}
	return dst
}

func (s *Schema) appendGroup(dst []byte, r *Result) []byte {
	for i := range s.groups {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, s.members[i]...)
		k := ""
		if i < len(r.Key) {
			k = r.Key[i]
		}
		dst = event.AppendJSONString(dst, k)
	}
	return dst
}

func (s *Schema) appendBounds(dst []byte, r *Result, comma bool) []byte {
	if comma {
		dst = append(dst, ',')
	}
	dst = append(dst, s.members[s.groups]...)
	dst = AppendTimestamp(dst, r.Start)
	if s.bounds == 2 {
		dst = append(dst, ',')
		dst = append(dst, s.members[s.groups+1]...)
		dst = AppendTimestamp(dst, r.End)
	}
	return dst
}

// appendValues appends the value columns' members, each after a comma
// but the first unless comma; omit leaves out those without a value.
func (s *Schema) appendValues(dst []byte, r *Result, omit, comma bool) []byte {
	for i := range s.names {
		n := len(dst)
		if comma {
			dst = append(dst, ',')
		}
		var ok bool
		if dst, ok = s.appendMember(dst, r, i, !omit); !ok && omit {
			dst = dst[:n]
			continue
		}
		comma = true
	}
	return dst
}

func valueAt(r *Result, i int) event.Value {
	if i < len(r.Values) {
		return r.Values[i]
	}
	return event.Value{}
}

// appendCell appends v as a JSON value of a column of type t:
//   - string: a JSON string (a number or boolean as its key text);
//   - int64: a whole number (a fraction is cut off);
//   - float64: a number in its shortest form;
//   - decimal: a number; a string value that holds a decimal number
//     (exact, e.g. read from a record) is written as that number;
//   - bool: true or false;
//   - timestamp: ms since the epoch, written as an RFC 3339 UTC string;
//   - any: the value as it is.
//
// A null, a value of another kind, and NaN or an infinity (JSON has no
// such numbers) are written as null.
func appendCell(dst []byte, t pipeline.ColumnType, v event.Value) []byte {
	switch t {
	case TypeAny:
		return v.AppendJSON(dst)
	case pipeline.TypeString:
		if v.Kind == event.String {
			return event.AppendJSONString(dst, v.Str)
		}
		if v.Kind != event.Null && finite(v) {
			return event.AppendJSONString(dst, string(v.AppendKeyText(nil)))
		}
	case pipeline.TypeInt64:
		if v.Kind == event.Number && finite(v) {
			return event.AppendNumber(dst, math.Trunc(v.Num))
		}
	case pipeline.TypeFloat64:
		if v.Kind == event.Number && finite(v) {
			return event.AppendNumber(dst, v.Num)
		}
	case pipeline.TypeDecimal:
		if v.Kind == event.Number && finite(v) {
			return event.AppendNumber(dst, v.Num)
		}
		if v.Kind == event.String && isJSONNumber(v.Str) {
			return append(dst, v.Str...)
		}
	case pipeline.TypeBool:
		if v.Kind == event.Bool {
			return strconv.AppendBool(dst, v.B)
		}
	case pipeline.TypeTimestamp:
		if v.Kind == event.Number && finite(v) {
			return AppendTimestamp(dst, int64(v.Num))
		}
	}
	return append(dst, "null"...)
}

func finite(v event.Value) bool {
	return v.Kind != event.Number || !(math.IsNaN(v.Num) || math.IsInf(v.Num, 0))
}

// AppendTimestamp appends ms since the Unix epoch as a JSON string in
// RFC 3339, UTC, with as many fraction digits as needed
// ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00.25Z").
func AppendTimestamp(dst []byte, ms int64) []byte {
	dst = append(dst, '"')
	dst = time.UnixMilli(ms).UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// isJSONNumber reports whether s is a number as JSON writes one, and
// nothing else (no spaces around it).
func isJSONNumber(s string) bool {
	return s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && s[len(s)-1] >= '0' && s[len(s)-1] <= '9' &&
		fastjson.Validate(s) == nil
}

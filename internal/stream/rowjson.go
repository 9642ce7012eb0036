package stream

import (
	"strconv"
	"time"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// The rows of the results API, the live views and CSV, written by an
// output's schema.

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

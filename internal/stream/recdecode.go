package stream

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/valyala/fastjson"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// RecordDecoder reads result records of one output back into typed
// results: anyone can write to a result topic, so it checks every column
// against the schema. It reuses its parser's memory: one decoder per
// goroutine. The zero value is not usable; see NewRecordDecoder.
type RecordDecoder struct {
	s      *Schema
	p      fastjson.Parser
	groups []string // Result.GroupBy, shared
	// The record being read, set by the visitor.
	r     *Result
	seen  []bool // per column
	next  int    // the column the next member most likely is
	base  int    // the first column the visitor looks at
	err   error
	visit func(k []byte, v *fastjson.Value)
	// retract is set by a "retract":true member: a record in the format
	// before schemas (see legacy).
	retract bool
}

// ParseKind reads the value of a KindHeader; empty is an insert.
func ParseKind(v []byte) (RecordKind, error) {
	switch string(v) {
	case "", "insert":
		return KindInsert, nil
	case "update":
		return KindUpdate, nil
	case "delete":
		return KindDelete, nil
	}
	return 0, fmt.Errorf("header %s is %q: want insert, update or delete", KindHeader, v)
}

// NewRecordDecoder returns a decoder of s's records.
func NewRecordDecoder(s *Schema) *RecordDecoder {
	d := &RecordDecoder{s: s, seen: make([]bool, len(s.Columns))}
	for _, c := range s.Group() {
		d.groups = append(d.groups, c.Name)
	}
	d.visit = d.member // bound once: Visit then allocates nothing
	return d
}

// maxSafeInt is the largest whole number a float64 holds exactly: int64
// columns are whole numbers up to it.
const maxSafeInt = 1 << 53

// Decode reads a result-topic record: its key, its value and the value of
// its KindHeader (nil without one). A null value is a delete (a
// tombstone), identified by the key; any other value carries every column
// and is an insert, or the kind its header names. The result is final
// and owns its memory.
func (d *RecordDecoder) Decode(key, value, kind []byte) (Result, error) {
	k, err := ParseKind(kind)
	if err != nil {
		return Result{}, err
	}
	if value == nil {
		k = KindDelete
	}
	r := Result{Output: d.s.Output, GroupBy: d.groups, Final: true, Kind: k, Names: d.s.names}
	identity := d.s.groups + 1 // group fields and window_start (or time)
	if k == KindDelete {
		if err := d.object(key, &r, 0, identity); err != nil {
			return Result{}, fmt.Errorf("key of a delete: %w", err)
		}
		r.End = r.Start
		return r, nil
	}
	r.Values = make([]event.Value, len(d.s.names))
	if err := d.object(value, &r, 0, d.s.groups+d.s.bounds); err != nil {
		return Result{}, err
	}
	if d.retract {
		r.Kind, r.Values = KindDelete, nil
	}
	if d.s.bounds == 1 {
		r.End = r.Start
	}
	return r, nil
}

// DecodeStored reads the value columns a store kept of a row (written by
// AppendStored) into r.Values; columns absent from it are null. Members
// that are no column, or not of their column's type, are skipped: the
// row may predate a change of the pipeline file.
func (d *RecordDecoder) DecodeStored(blob []byte, r *Result) error {
	r.Names = d.s.names
	r.Values = make([]event.Value, len(d.s.names))
	return d.object(blob, r, d.s.groups+d.s.bounds, 0)
}

// object reads the JSON object src into r, looking at the columns from
// base on; the first required ones (from base) must be there. With
// required 0 the object is a stored row, read leniently.
func (d *RecordDecoder) object(src []byte, r *Result, base, required int) error {
	v, err := d.p.ParseBytes(src)
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	obj, err := v.Object()
	if err != nil {
		return errors.New("not a JSON object")
	}
	clear(d.seen)
	d.r, d.base, d.next, d.err, d.retract = r, base, base, nil, false
	if required > 0 && r.Key == nil && d.s.groups > 0 {
		r.Key = make([]string, d.s.groups)
	}
	obj.Visit(d.visit)
	d.r = nil
	if d.err != nil {
		return d.err
	}
	for i := base; i < base+required; i++ {
		if !d.seen[i] {
			return fmt.Errorf("no %q: a result of output %s has %s", d.s.Columns[i].Name, d.s.Output, d.s.columnList(base+required))
		}
	}
	return nil
}

// member reads one member of the object being decoded.
func (d *RecordDecoder) member(k []byte, v *fastjson.Value) {
	if d.err != nil {
		return
	}
	i := d.column(k)
	if i < 0 {
		if d.base == 0 {
			d.legacy(k, v)
		}
		return // not a column: ignored, as consumers ignore unknown fields
	}
	d.seen[i] = true
	c := d.s.Columns[i]
	groups, bounds := d.s.groups, d.s.groups+d.s.bounds
	switch {
	case i < groups:
		if v.Type() != fastjson.TypeString {
			d.err = fmt.Errorf("group field %q is %s, want a string", c.Name, v.Type())
			return
		}
		d.r.Key[i] = string(v.GetStringBytes())
	case i < bounds:
		ms, err := readTimestamp(v)
		if err != nil {
			d.err = fmt.Errorf("%s: %w", c.Name, err)
			return
		}
		if i == groups {
			d.r.Start = ms
		} else {
			d.r.End = ms
		}
	default:
		x, err := readCell(c.Type, v)
		if err != nil {
			if d.base > 0 {
				return // a stored row: the cell stays null
			}
			d.err = fmt.Errorf("%s: %w", c.Name, err)
			return
		}
		d.r.Values[i-bounds] = x
	}
}

// legacy reads the members of the result format that Pulse wrote before
// schemas, so that records still in a result topic are stored as they
// were: the group fields in an object "key", and "retract":true for a
// delete ("output", "final" and the flat aggregates need nothing).
func (d *RecordDecoder) legacy(k []byte, v *fastjson.Value) {
	switch {
	case string(k) == "retract" && v.Type() == fastjson.TypeTrue:
		d.retract = true
	case string(k) == "key" && v.Type() == fastjson.TypeObject:
		obj, _ := v.Object()
		obj.Visit(func(g []byte, x *fastjson.Value) {
			for _, c := range d.s.Group() {
				if c.Name == string(g) && d.err == nil {
					d.member(g, x) // as a flat group field
				}
			}
		})
	}
}

// column returns the index of the column named k (from base), or -1. The
// members of a record come in the schema's order: the next column is
// tried first.
func (d *RecordDecoder) column(k []byte) int {
	cols := d.s.Columns
	if d.next < len(cols) && cols[d.next].Name == string(k) {
		d.next++
		return d.next - 1
	}
	for i := d.base; i < len(cols); i++ {
		if cols[i].Name == string(k) {
			d.next = i + 1
			return i
		}
	}
	return -1
}

// readTimestamp reads an RFC 3339 string as ms since the epoch.
func readTimestamp(v *fastjson.Value) (int64, error) {
	if v.Type() != fastjson.TypeString {
		return 0, fmt.Errorf("is %s, want an RFC 3339 time string", v.Type())
	}
	t, err := time.Parse(time.RFC3339Nano, string(v.GetStringBytes()))
	if err != nil {
		return 0, fmt.Errorf("%q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", v.GetStringBytes())
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return 0, fmt.Errorf("%q is outside the years 0001 to 9999 (UTC)", v.GetStringBytes())
	}
	return t.UnixMilli(), nil
}

// readCell reads a value column's JSON value: null for any type, else
// the JSON type that appendCell writes for t.
func readCell(t pipeline.ColumnType, v *fastjson.Value) (event.Value, error) {
	jt := v.Type()
	if jt == fastjson.TypeNull {
		return event.Value{}, nil
	}
	switch t {
	case TypeAny:
		switch jt {
		case fastjson.TypeString:
			return event.StringValue(string(v.GetStringBytes())), nil
		case fastjson.TypeNumber:
			return event.NumberValue(v.GetFloat64()), nil
		case fastjson.TypeTrue, fastjson.TypeFalse:
			return event.BoolValue(jt == fastjson.TypeTrue), nil
		}
		return event.Value{}, fmt.Errorf("is %s, want a string, a number or a boolean", jt)
	case pipeline.TypeString:
		if jt == fastjson.TypeString {
			return event.StringValue(string(v.GetStringBytes())), nil
		}
	case pipeline.TypeInt64, pipeline.TypeFloat64:
		if jt != fastjson.TypeNumber {
			break
		}
		f := v.GetFloat64()
		if math.IsInf(f, 0) {
			return event.Value{}, fmt.Errorf("%s is out of range", v)
		}
		if t == pipeline.TypeInt64 && (f != math.Trunc(f) || math.Abs(f) > maxSafeInt) {
			return event.Value{}, fmt.Errorf("%s is not a whole number up to 2^53", v)
		}
		return event.NumberValue(f), nil
	case pipeline.TypeDecimal:
		if jt == fastjson.TypeNumber {
			return event.StringValue(string(v.MarshalTo(nil))), nil // exact
		}
	case pipeline.TypeBool:
		if jt == fastjson.TypeTrue || jt == fastjson.TypeFalse {
			return event.BoolValue(jt == fastjson.TypeTrue), nil
		}
	case pipeline.TypeTimestamp:
		ms, err := readTimestamp(v)
		if err != nil {
			return event.Value{}, err
		}
		return event.NumberValue(float64(ms)), nil
	}
	return event.Value{}, fmt.Errorf("is %s, want a %s", jt, t)
}

// columnList names the first n columns with their types, for errors.
func (s *Schema) columnList(n int) string {
	out := ""
	for i, c := range s.Columns[:n] {
		if i > 0 {
			out += ", "
		}
		out += c.Name + " (" + c.Type.String() + ")"
	}
	return out
}

package stream

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/event"
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

// Deleted reports whether r is a retraction: it deletes its row, which
// withdraws a result emitted before for its window.
func (r *Result) Deleted() bool { return r.Kind == KindDelete }

// Record encodes r as a result-topic record: its key (the identity
// columns, AppendKey), its value (every column, AppendValue; nil for a
// delete: a tombstone) and its kind header. Key and value share one
// allocation.
func (s *Schema) Record(r *Result) (key, value []byte, headers []kgo.RecordHeader) {
	kind := r.Kind
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

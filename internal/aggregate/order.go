package aggregate

import (
	"encoding/binary"

	"github.com/pulsehq/pulse/internal/event"
)

// orderState is first(x) (last false) or last(x) (last true): the non-null
// value with the smallest (largest) event time. On equal times first keeps
// the value added earliest and last the one added latest; Merge treats the
// receiver's values as added before the argument's.
type orderState struct {
	v    event.Value
	ts   int64
	seen bool
	last bool
}

func (s *orderState) Add(v event.Value, ts int64) {
	if v.Kind != event.Null {
		s.fold(v, ts)
	}
}

func (s *orderState) fold(v event.Value, ts int64) {
	if !s.seen || (s.last && ts >= s.ts) || (!s.last && ts < s.ts) {
		s.v, s.ts, s.seen = v, ts, true
	}
}

func (s *orderState) Merge(o State) {
	t, ok := o.(*orderState)
	if !ok || t.last != s.last {
		mismatch(s, o)
	}
	if t.seen {
		s.fold(t.v, t.ts)
	}
}

func (s *orderState) Result() (event.Value, bool) {
	return s.v, s.seen
}

func (s *orderState) tag() tag {
	if s.last {
		return tagLast
	}
	return tagFirst
}

// AppendBinary writes the header, then 0 for an empty state, or the value's
// kind (1 number, 2 string, 3 bool), the time (int64) and the value: a
// float64, a uvarint length and the bytes, or one byte 0/1.
func (s *orderState) AppendBinary(dst []byte) []byte {
	dst = appendHeader(dst, s.tag())
	if !s.seen {
		return append(dst, 0)
	}
	dst = append(dst, byte(s.v.Kind))
	dst = appendU64(dst, uint64(s.ts))
	switch s.v.Kind {
	case event.Number:
		dst = appendF64(dst, s.v.Num)
	case event.String:
		dst = binary.AppendUvarint(dst, uint64(len(s.v.Str)))
		dst = append(dst, s.v.Str...)
	case event.Bool:
		dst = appendBool(dst, s.v.B)
	}
	return dst
}

func (s *orderState) Decode(src []byte) error {
	b, err := readHeader(src, s.tag())
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return corrupt("first/last: missing kind")
	}
	kind := event.ValueKind(b[0])
	if kind == event.Null {
		if len(b) != 1 {
			return corrupt("first/last: %d bytes after an empty state", len(b)-1)
		}
		*s = orderState{last: s.last}
		return nil
	}
	if len(b) < 9 {
		return corrupt("first/last: truncated time")
	}
	ts := int64(u64At(b, 1))
	b = b[9:]
	v := event.Value{Kind: kind}
	switch kind {
	case event.Number:
		if len(b) != 8 {
			return corrupt("first/last: number of %d bytes", len(b))
		}
		v.Num = f64At(b, 0)
	case event.String:
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) != n {
			return corrupt("first/last: bad string length")
		}
		v.Str = string(b[k:])
	case event.Bool:
		if len(b) != 1 {
			return corrupt("first/last: bool of %d bytes", len(b))
		}
		if v.B, err = boolAt(b, 0); err != nil {
			return err
		}
	default:
		return corrupt("first/last: value kind %d", kind)
	}
	*s = orderState{v: v, ts: ts, seen: true, last: s.last}
	return nil
}

package aggregate

import (
	"github.com/axiomhq/hyperloglog"

	"github.com/pulsehq/pulse/internal/event"
)

// distinctPrecision is the HyperLogLog precision (2^14 registers, about
// 0.8% standard error once dense; nearly exact while sparse).
const distinctPrecision = 14

// distinctState is count_distinct(x): a HyperLogLog over the kind and text
// form of each non-null value, created on the first value.
type distinctState struct {
	hll *hyperloglog.Sketch
	buf []byte // scratch for the hashed bytes
}

func (s *distinctState) Add(v event.Value, _ int64) {
	if v.Kind == event.Null {
		return
	}
	if s.hll == nil {
		s.hll = hyperloglog.New14()
	}
	s.buf = v.AppendText(append(s.buf[:0], byte(v.Kind)))
	s.hll.Insert(s.buf)
}

func (s *distinctState) Merge(o State) {
	t, ok := o.(*distinctState)
	if !ok {
		mismatch(s, o)
	}
	switch {
	case t.hll == nil:
	case s.hll == nil:
		s.hll = t.hll.Clone()
	default:
		_ = s.hll.Merge(t.hll) // cannot fail: one precision for all
	}
}

func (s *distinctState) Result() (event.Value, bool) {
	if s.hll == nil {
		return event.NumberValue(0), true
	}
	return event.NumberValue(float64(s.hll.Estimate())), true
}

// AppendBinary writes the header then the sketch's MarshalBinary form
// (nothing for an empty state).
func (s *distinctState) AppendBinary(dst []byte) []byte {
	dst = appendHeader(dst, tagDistinct)
	if s.hll != nil {
		// AppendBinary only fails on a zero Sketch, which New14 is not.
		dst, _ = s.hll.AppendBinary(dst)
	}
	return dst
}

func (s *distinctState) Decode(src []byte) error {
	b, err := readHeader(src, tagDistinct)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		s.hll = nil
		return nil
	}
	// Byte 1 of the encoding is the precision: another one could not be
	// merged with this package's sketches.
	if len(b) >= 2 && b[1] != distinctPrecision {
		return corrupt("count_distinct: precision %d, want %d", b[1], distinctPrecision)
	}
	hll := new(hyperloglog.Sketch)
	if err := hll.UnmarshalBinary(b); err != nil {
		return corrupt("count_distinct: %v", err)
	}
	s.hll = hll
	return nil
}

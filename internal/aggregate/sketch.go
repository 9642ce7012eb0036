package aggregate

import (
	"math"

	"github.com/DataDog/sketches-go/ddsketch"
	enc "github.com/DataDog/sketches-go/ddsketch/encoding"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"

	"github.com/pulsehq/pulse/internal/event"
)

// sketchAccuracy is the relative accuracy of the percentile sketches.
const sketchAccuracy = 0.01

// sketchMapping is the index mapping of ddsketch.NewDefaultDDSketch(0.01),
// built once: it is immutable and shared by every sketch, so that a new
// state costs no mapping computation and encodings can omit it.
var (
	sketchMapping = mustMapping()
	// sketchMinIdx and sketchMaxIdx bound the indexes of the sketch's bins.
	sketchMinIdx = sketchMapping.Index(sketchMapping.MinIndexableValue())
	sketchMaxIdx = sketchMapping.Index(sketchMapping.MaxIndexableValue())
)

func mustMapping() mapping.IndexMapping {
	m, err := mapping.NewDefaultMapping(sketchAccuracy)
	if err != nil {
		panic(err)
	}
	return m
}

// newSketch is ddsketch.NewDefaultDDSketch(sketchAccuracy) with the shared
// mapping: both stores are store.DefaultProvider's, and negative values go
// to the negative store.
func newSketch() *ddsketch.DDSketch {
	return ddsketch.NewDDSketchFromStoreProvider(sketchMapping, store.DefaultProvider)
}

// sketchState is a percentile (q in [0, 1]) over a DDSketch, created on the
// first number so that empty states stay small.
type sketchState struct {
	sk *ddsketch.DDSketch
	q  float64
}

func (s *sketchState) Add(v event.Value, _ int64) {
	x, ok := number(v)
	if !ok || math.Abs(x) > sketchMapping.MaxIndexableValue() {
		return
	}
	if s.sk == nil {
		s.sk = newSketch()
	}
	_ = s.sk.Add(x) // cannot fail: x is finite and in range
}

func (s *sketchState) Merge(o State) {
	t, ok := o.(*sketchState)
	if !ok {
		mismatch(s, o)
	}
	switch {
	case t.sk == nil:
	case s.sk == nil:
		s.sk = t.sk.Copy()
	default:
		_ = s.sk.MergeWith(t.sk) // cannot fail: one mapping for all
	}
}

func (s *sketchState) Result() (event.Value, bool) {
	if s.sk == nil || s.sk.IsEmpty() {
		return event.Value{}, false
	}
	x, err := s.sk.GetValueAtQuantile(s.q)
	if err != nil {
		return event.Value{}, false
	}
	return event.NumberValue(x), true
}

// AppendBinary writes the header then the sketch's own Encode form without
// the index mapping (nothing for an empty state).
func (s *sketchState) AppendBinary(dst []byte) []byte {
	dst = appendHeader(dst, tagSketch)
	if s.sk != nil {
		s.sk.Encode(&dst, true)
	}
	return dst
}

func (s *sketchState) Decode(src []byte) error {
	b, err := readHeader(src, tagSketch)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		s.sk = nil
		return nil
	}
	// ddsketch.DecodeDDSketch trusts its input (unchecked bin counts,
	// indexes and store errors could exhaust memory, loop or panic), so
	// check every field first.
	if err := checkSketch(b); err != nil {
		return err
	}
	sk, err := ddsketch.DecodeDDSketch(b, store.DefaultProvider, sketchMapping)
	if err != nil {
		return corrupt("sketch: %v", err)
	}
	s.sk = sk
	return nil
}

// checkSketch walks an encoded sketch (the format of the ddsketch/encoding
// package) and accepts only what Encode(_, true) writes: zero counts and
// bins of the positive and negative stores, with indexes in the mapping's
// range and finite, non-negative counts of finite total.
func checkSketch(b []byte) error {
	total := 0.0
	count := func() error {
		c, err := enc.DecodeVarfloat64(&b)
		if err != nil {
			return corrupt("sketch: truncated count")
		}
		if !(c >= 0) || math.IsInf(c, 0) {
			return corrupt("sketch: count %v", c)
		}
		total += c
		return nil
	}
	index := func(i int64) error {
		if i < int64(sketchMinIdx) || i > int64(sketchMaxIdx) {
			return corrupt("sketch: bin index %d out of [%d, %d]", i, sketchMinIdx, sketchMaxIdx)
		}
		return nil
	}
	varint := func() (int64, error) {
		x, err := enc.DecodeVarint64(&b)
		if err != nil {
			return 0, corrupt("sketch: truncated index")
		}
		return x, nil
	}
	for len(b) > 0 {
		flag, _ := enc.DecodeFlag(&b)
		if flag == enc.FlagZeroCountVarFloat {
			if err := count(); err != nil {
				return err
			}
			continue
		}
		if t := flag.Type(); t != enc.FlagTypePositiveStore && t != enc.FlagTypeNegativeStore {
			return corrupt("sketch: unexpected flag %#x", flag)
		}
		n, err := enc.DecodeUvarint64(&b)
		if err != nil || n > uint64(len(b)) { // every bin takes a byte at least
			return corrupt("sketch: bad bin count")
		}
		switch flag.SubFlag() {
		case enc.BinEncodingIndexDeltasAndCounts, enc.BinEncodingIndexDeltas:
			withCounts := flag.SubFlag() == enc.BinEncodingIndexDeltasAndCounts
			i := int64(0)
			for range n {
				d, err := varint()
				if err != nil {
					return err
				}
				if i += d; index(i) != nil {
					return index(i)
				}
				if !withCounts {
					total++
				} else if err := count(); err != nil {
					return err
				}
			}
		case enc.BinEncodingContiguousCounts:
			i, err := varint()
			if err != nil {
				return err
			}
			d, err := varint()
			if err != nil {
				return err
			}
			for range n {
				if err := index(i); err != nil {
					return err
				}
				if err := count(); err != nil {
					return err
				}
				i += d
			}
		default:
			return corrupt("sketch: bin encoding %#x", flag.SubFlag())
		}
	}
	if math.IsInf(total, 0) {
		return corrupt("sketch: infinite total count")
	}
	return nil
}

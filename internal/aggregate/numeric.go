package aggregate

import (
	"math"

	"github.com/pulsehq/pulse/internal/event"
)

// number returns v's number when v is a Number other than NaN.
func number(v event.Value) (float64, bool) {
	return v.Num, v.Kind == event.Number && v.Num == v.Num
}

// countState is count() (field false: every Add counts) and count(x)
// (field true: non-null values count). Both encode alike and may be merged.
type countState struct {
	n     uint64
	field bool
}

func (s *countState) Add(v event.Value, _ int64) {
	if !s.field || v.Kind != event.Null {
		s.n++
	}
}

func (s *countState) isNew() bool { return s.n == 0 }

func (s *countState) Merge(o State) {
	c, ok := o.(*countState)
	if !ok {
		mismatch(s, o)
	}
	s.n += c.n
}

func (s *countState) Result() (event.Value, bool) {
	return event.NumberValue(float64(s.n)), true
}

func (s *countState) AppendBinary(dst []byte) []byte {
	return appendU64(appendHeader(dst, tagCount), s.n)
}

func (s *countState) Decode(src []byte) error {
	b, err := readFixed(src, tagCount, 8)
	if err != nil {
		return err
	}
	s.n = u64At(b, 0)
	return nil
}

// ksum is a Neumaier-compensated sum: the total is sum+c.
type ksum struct{ sum, c float64 }

func (k *ksum) add(x float64) {
	t := k.sum + x
	if math.Abs(k.sum) >= math.Abs(x) {
		k.c += (k.sum - t) + x
	} else {
		k.c += (x - t) + k.sum
	}
	k.sum = t
}

func (k *ksum) merge(o ksum) {
	k.add(o.sum)
	k.c += o.c
}

func (k ksum) total() float64 {
	if math.IsInf(k.sum, 0) {
		return k.sum // the compensation of an infinite sum is NaN
	}
	return k.sum + k.c
}

func (k ksum) appendTo(dst []byte) []byte { return appendF64(appendF64(dst, k.sum), k.c) }

func ksumAt(b []byte, i int) ksum { return ksum{f64At(b, i), f64At(b, i+8)} }

// sumState is sum(x) (avg false) or avg(x) (avg true): a count of the
// numbers and their compensated sum. The two encode with their own tags and
// merge only with their own kind.
type sumState struct {
	n   uint64
	k   ksum
	avg bool
}

func (s *sumState) tag() tag {
	if s.avg {
		return tagAvg
	}
	return tagSum
}

func (s *sumState) Add(v event.Value, _ int64) {
	if x, ok := number(v); ok {
		s.n++
		s.k.add(x)
	}
}

// isNew compares bits: a sum of -0 encodes unlike a new state's 0.
func (s *sumState) isNew() bool {
	return s.n == 0 && math.Float64bits(s.k.sum) == 0 && math.Float64bits(s.k.c) == 0
}

func (s *sumState) Merge(o State) {
	t, ok := o.(*sumState)
	if !ok || t.avg != s.avg {
		mismatch(s, o)
	}
	s.n += t.n
	s.k.merge(t.k)
}

func (s *sumState) Result() (event.Value, bool) {
	if s.n == 0 {
		return event.Value{}, false
	}
	if s.avg {
		return event.NumberValue(s.k.total() / float64(s.n)), true
	}
	return event.NumberValue(s.k.total()), true
}

func (s *sumState) AppendBinary(dst []byte) []byte {
	return s.k.appendTo(appendU64(appendHeader(dst, s.tag()), s.n))
}

func (s *sumState) Decode(src []byte) error {
	b, err := readFixed(src, s.tag(), 24)
	if err != nil {
		return err
	}
	s.n, s.k = u64At(b, 0), ksumAt(b, 8)
	return nil
}

// extremeState is min(x) (max false) or max(x) (max true).
type extremeState struct {
	v    float64
	seen bool
	max  bool
}

func (s *extremeState) Add(v event.Value, _ int64) {
	if x, ok := number(v); ok {
		s.fold(x)
	}
}

func (s *extremeState) fold(x float64) {
	if !s.seen || (s.max && x > s.v) || (!s.max && x < s.v) {
		s.v, s.seen = x, true
	}
}

func (s *extremeState) isNew() bool { return !s.seen && math.Float64bits(s.v) == 0 }

func (s *extremeState) Merge(o State) {
	t, ok := o.(*extremeState)
	if !ok || t.max != s.max {
		mismatch(s, o)
	}
	if t.seen {
		s.fold(t.v)
	}
}

func (s *extremeState) Result() (event.Value, bool) {
	if !s.seen {
		return event.Value{}, false
	}
	return event.NumberValue(s.v), true
}

func (s *extremeState) tag() tag {
	if s.max {
		return tagMax
	}
	return tagMin
}

func (s *extremeState) AppendBinary(dst []byte) []byte {
	return appendF64(appendBool(appendHeader(dst, s.tag()), s.seen), s.v)
}

func (s *extremeState) Decode(src []byte) error {
	b, err := readFixed(src, s.tag(), 9)
	if err != nil {
		return err
	}
	seen, err := boolAt(b, 0)
	if err != nil {
		return err
	}
	x := f64At(b, 1)
	if !seen && x != 0 || x != x {
		return corrupt("min/max value %v with seen=%v", x, seen)
	}
	s.seen, s.v = seen, x
	return nil
}

// stddevState is stddev(x), the population standard deviation: Welford's
// running mean and sum of squared deviations m2, over x − shift where shift
// is the first number seen. Shifting by a value near the data keeps the
// differences small, so that data with a large offset (timestamps, 1e9 ± 1)
// loses no precision in the mean.
type stddevState struct {
	n               uint64
	shift, mean, m2 float64
}

func (s *stddevState) Add(v event.Value, _ int64) {
	x, ok := number(v)
	if !ok {
		return
	}
	if s.n == 0 {
		s.shift = x
	}
	y := x - s.shift
	s.n++
	d := y - s.mean
	s.mean += d / float64(s.n)
	s.m2 += d * (y - s.mean)
}

// Merge uses the parallel formula of Chan, Golub and LeVeque, the other
// state's mean moved to the receiver's shift.
func (s *stddevState) Merge(o State) {
	t, ok := o.(*stddevState)
	if !ok {
		mismatch(s, o)
	}
	switch {
	case t.n == 0:
		return
	case s.n == 0:
		*s = *t
		return
	}
	na, nb := float64(s.n), float64(t.n)
	n := na + nb
	d := (t.mean + (t.shift - s.shift)) - s.mean
	s.mean += d * (nb / n)
	s.m2 += t.m2 + d*d*(na*nb/n)
	s.n += t.n
}

func (s *stddevState) Result() (event.Value, bool) {
	if s.n == 0 {
		return event.Value{}, false
	}
	return event.NumberValue(math.Sqrt(max(s.m2, 0) / float64(s.n))), true
}

func (s *stddevState) AppendBinary(dst []byte) []byte {
	dst = appendU64(appendHeader(dst, tagStddev), s.n)
	return appendF64(appendF64(appendF64(dst, s.shift), s.mean), s.m2)
}

func (s *stddevState) Decode(src []byte) error {
	b, err := readFixed(src, tagStddev, 32)
	if err != nil {
		return err
	}
	s.n, s.shift, s.mean, s.m2 = u64At(b, 0), f64At(b, 8), f64At(b, 16), f64At(b, 24)
	return nil
}

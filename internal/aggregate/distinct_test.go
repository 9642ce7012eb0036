package aggregate

import (
	"math"
	"strconv"
	"testing"
)

func TestCountDistinct(t *testing.T) {
	runTable(t, lookupField(t, "count_distinct"), []tableCase{
		{"empty", nil, n(0), true, 0},
		{"only nulls", at(null, null), n(0), true, 0},
		{"single", at(str("a")), n(1), true, 0},
		{"duplicates", at(str("a"), str("a"), null, str("b"), str("a")), n(2), true, 0},
		{"kinds differ", at(n(1), str("1"), bl(true), str("true"), n(1)), n(4), true, 0},
		{"numbers by value", at(n(-2), n(-2.0), n(0.5), n(5e-1)), n(2), true, 0},
		{"NaN is a value", at(n(math.NaN()), n(math.NaN())), n(1), true, 0},
	})
}

// TestCountDistinctAccuracy checks what the HyperLogLog provides: while its
// representation is sparse (25-bit keys, linear counting over 2^25 buckets)
// small counts come out exact unless two keys collide, which for at most
// 100 values is unlikely (p < 2e-4) and, the hash being fixed, stable; the
// library's own tests assert the same. Beyond that, within 2% as the
// library's tests do, whether added to one state or merged from many.
func TestCountDistinctAccuracy(t *testing.T) {
	f := lookupField(t, "count_distinct")
	for _, size := range []int{1, 2, 10, 50, 100, 1000, 5000, 10000, 50000} {
		s := f.New()
		parts := make([]State, 7)
		for i := range parts {
			parts[i] = f.New()
		}
		for i := range size {
			v := str("user-" + strconv.Itoa(i))
			if i%3 == 0 {
				v = n(float64(i) * 1.5)
			}
			s.Add(v, 0)
			s.Add(v, 0) // duplicates do not count
			parts[i%len(parts)].Add(v, 0)
		}
		for _, p := range parts[1:] {
			parts[0].Merge(p)
		}
		for how, st := range map[string]State{"added": s, "merged": parts[0]} {
			got := mustResult(t, st).Num
			if size <= 100 && got != float64(size) {
				t.Errorf("%s %d distinct: got %v, want exact", how, size, got)
			}
			if math.Abs(got-float64(size)) > 0.02*float64(size) {
				t.Errorf("%s %d distinct: got %v, more than 2%% off", how, size, got)
			}
		}
	}
}

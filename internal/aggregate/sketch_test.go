package aggregate

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

var quantiles = []struct {
	name string
	q    float64
}{{"p50", 0.5}, {"p90", 0.9}, {"p95", 0.95}, {"p99", 0.99}}

func TestPercentiles(t *testing.T) {
	for _, p := range quantiles {
		t.Run(p.name, func(t *testing.T) {
			runTable(t, lookupField(t, p.name), []tableCase{
				{"empty", nil, null, false, 0},
				{"only skipped", append(skipped, at(n(math.Inf(1)), n(math.Inf(-1)), n(-math.MaxFloat64))...), null, false, 0},
				{"single", at(n(100)), n(100), true, 0.01},
				{"single negative", at(n(-3.5)), n(-3.5), true, 0.01},
				{"zero", at(n(0), n(0)), n(0), true, 0},
				{"constant", append(at(n(7), n(7), n(7), n(7)), skipped...), n(7), true, 0.01},
			})
		})
	}
}

// exactBounds returns the exact quantile the sketch is compared against:
// with xs sorted and r = q·(n−1), any value between xs[⌊r⌋] and xs[⌈r⌉].
// (DDSketch picks the element of rank ⌊r⌋ among positive values and ⌈r⌉
// among negative ones.)
func exactBounds(sorted []float64, q float64) (lo, hi float64) {
	r := q * float64(len(sorted)-1)
	return sorted[int(math.Floor(r))], sorted[int(math.Ceil(r))]
}

// within reports whether x is in [lo, hi] widened by tol relative.
func within(x, lo, hi, tol float64) bool {
	return x >= lo-tol*math.Abs(lo) && x <= hi+tol*math.Abs(hi)
}

func TestPercentileAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	dists := map[string]func() float64{
		"lognormal":  func() float64 { return math.Exp(3 * r.NormFloat64()) },
		"uniform":    func() float64 { return r.Float64() * 1000 },
		"mixed sign": func() float64 { return 100 * r.NormFloat64() },
		"negative":   func() float64 { return -r.ExpFloat64() * 50 },
		"with zeros": func() float64 { return float64(r.IntN(3)) * r.Float64() },
		"integers":   func() float64 { return float64(r.IntN(20) - 5) },
	}
	for name, gen := range dists {
		for _, size := range []int{1, 2, 10, 101, 10000} {
			xs := make([]float64, size)
			for i := range xs {
				xs[i] = gen()
			}
			sorted := slices.Sorted(slices.Values(xs))
			for _, p := range quantiles {
				f := lookupField(t, p.name)
				s, parts := f.New(), []State{f.New(), f.New(), f.New()}
				for _, x := range xs {
					s.Add(n(x), 0)
					parts[r.IntN(len(parts))].Add(n(x), 0)
				}
				parts[2].Merge(parts[0])
				parts[2].Merge(parts[1])
				lo, hi := exactBounds(sorted, p.q)
				got, merged := mustResult(t, s).Num, mustResult(t, parts[2]).Num
				if !within(got, lo, hi, 0.02) {
					t.Errorf("%s n=%d %s: %v, exact in [%v, %v]", name, size, p.name, got, lo, hi)
				}
				if merged != got {
					t.Errorf("%s n=%d %s: merged %v, added %v", name, size, p.name, merged, got)
				}
			}
		}
	}
}

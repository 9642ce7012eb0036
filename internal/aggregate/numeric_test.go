package aggregate

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
)

// tableCase is one row of a function's table: inputs and the expected
// result (compared within rel, 0 meaning exactly).
type tableCase struct {
	name   string
	ins    []in
	want   event.Value
	wantOK bool
	rel    float64
}

// runTable checks each case on one state, on a round-tripped state, and on
// a state merged from two halves of the input.
func runTable(t *testing.T, f Func, cases []tableCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := feed(f, c.ins)
			a, b := feed(f, c.ins[:len(c.ins)/2]), feed(f, c.ins[len(c.ins)/2:])
			a.Merge(b)
			for _, st := range []struct {
				how string
				s   State
			}{{"added", s}, {"decoded", roundTrip(t, f, s)}, {"merged", a}} {
				got, ok := st.s.Result()
				if ok != c.wantOK {
					t.Fatalf("%s: ok = %v, want %v (result %+v)", st.how, ok, c.wantOK, got)
				}
				if !ok {
					continue
				}
				if c.rel > 0 && got.Kind == event.Number && c.want.Kind == event.Number {
					if !closeTo(got.Num, c.want.Num, c.rel) {
						t.Fatalf("%s: got %v, want %v within %g", st.how, got.Num, c.want.Num, c.rel)
					}
				} else if !sameValue(got, c.want) {
					t.Fatalf("%s: got %+v, want %+v", st.how, got, c.want)
				}
			}
		})
	}
}

// skipped holds the inputs every numeric function ignores.
var skipped = at(null, str("12"), bl(true), n(math.NaN()))

func TestCount(t *testing.T) {
	c, _ := Lookup("count")
	if c.NeedsField() || c.Name() != "count" {
		t.Fatalf("Lookup(count): NeedsField %v, Name %q", c.NeedsField(), c.Name())
	}
	runTable(t, c, []tableCase{
		{"empty", nil, n(0), true, 0},
		{"events of every kind", at(null, null, str("a"), n(-1), bl(false)), n(5), true, 0},
	})
	cf := lookupField(t, "count")
	if cf != CountField || !cf.NeedsField() || cf.Name() != "count" {
		t.Fatalf("LookupWithField(count) = %v, want CountField", cf)
	}
	runTable(t, cf, []tableCase{
		{"empty", nil, n(0), true, 0},
		{"only nulls", at(null, null), n(0), true, 0},
		{"non-null values of every kind", at(null, str("a"), n(-1), null, bl(false), n(0)), n(4), true, 0},
	})
}

func TestSum(t *testing.T) {
	runTable(t, lookupField(t, "sum"), []tableCase{
		{"empty", nil, null, false, 0},
		{"only skipped", skipped, null, false, 0},
		{"single", at(n(2.5)), n(2.5), true, 0},
		{"negative", at(n(-1), n(-2.5), str("x"), n(0.5)), n(-3), true, 0},
		{"zero sum is a result", at(n(1), n(-1)), n(0), true, 0},
		{"skips non-numbers", append(at(n(1), n(2)), skipped...), n(3), true, 0},
		{"compensated", at(n(1e16), n(1), n(-1e16)), n(1), true, 0},
		{"infinite", at(n(1), n(math.Inf(1))), n(math.Inf(1)), true, 0},
	})
}

func TestAvg(t *testing.T) {
	runTable(t, lookupField(t, "avg"), []tableCase{
		{"empty", nil, null, false, 0},
		{"only skipped", skipped, null, false, 0},
		{"single", at(n(-7)), n(-7), true, 0},
		{"mixed", append(at(n(1), n(2), n(-6)), skipped...), n(-1), true, 0},
		{"fractions", at(n(0.1), n(0.2), n(0.3)), n(0.2), true, 1e-15},
	})
}

func TestMinMax(t *testing.T) {
	runTable(t, lookupField(t, "min"), []tableCase{
		{"empty", nil, null, false, 0},
		{"only skipped", skipped, null, false, 0},
		{"single", at(n(3)), n(3), true, 0},
		{"negative", append(at(n(3), n(-4), n(-1)), skipped...), n(-4), true, 0},
		{"infinite", at(n(1), n(math.Inf(-1))), n(math.Inf(-1)), true, 0},
	})
	runTable(t, lookupField(t, "max"), []tableCase{
		{"empty", nil, null, false, 0},
		{"only skipped", skipped, null, false, 0},
		{"single", at(n(-3)), n(-3), true, 0},
		{"negative", append(at(n(-3), n(-4), n(-1)), skipped...), n(-1), true, 0},
		{"strings are not compared", at(n(1), str("9")), n(1), true, 0},
	})
}

func TestStddev(t *testing.T) {
	runTable(t, lookupField(t, "stddev"), []tableCase{
		{"empty", nil, null, false, 0},
		{"only skipped", skipped, null, false, 0},
		{"single", at(n(42)), n(0), true, 0},
		{"population", append(at(n(2), n(4), n(4), n(4), n(5), n(5), n(7), n(9)), skipped...), n(2), true, 1e-15},
		{"negative", at(n(-1), n(-3)), n(1), true, 1e-15},
	})
}

// twoPassStddev is the reference: the mean first (summed exactly), then
// the mean of squared deviations.
func twoPassStddev(xs []float64) float64 {
	sum := new(big.Float).SetPrec(2000)
	for _, x := range xs {
		sum.Add(sum, big.NewFloat(x))
	}
	mean, _ := sum.Quo(sum, big.NewFloat(float64(len(xs)))).Float64()
	m2 := 0.0
	for _, x := range xs {
		m2 += (x - mean) * (x - mean)
	}
	return math.Sqrt(m2 / float64(len(xs)))
}

func TestStddevAgainstTwoPass(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	f := lookupField(t, "stddev")
	for _, tc := range []struct {
		name          string
		offset, scale float64
	}{{"unit", 0, 1}, {"large offset", 1e9, 1}, {"tiny spread", 1e6, 1e-3}, {"negative", -5e4, 100}, {"timestamps", 1.7e12, 1000}} {
		xs := make([]float64, 10000)
		s := f.New()
		parts := []State{f.New(), f.New(), f.New()}
		for i := range xs {
			xs[i] = tc.offset + tc.scale*r.NormFloat64()
			s.Add(n(xs[i]), 0)
			parts[r.IntN(3)].Add(n(xs[i]), 0)
		}
		parts[0].Merge(parts[1])
		parts[0].Merge(parts[2])
		want := twoPassStddev(xs)
		for how, st := range map[string]State{"added": s, "merged": parts[0]} {
			got := mustResult(t, st).Num
			if math.Abs(got-want) > 1e-9*want {
				t.Errorf("%s %s: stddev %v, two-pass %v (rel %g)", tc.name, how, got, want, math.Abs(got-want)/want)
			}
		}
	}
}

func TestAddDoesNotAllocate(t *testing.T) {
	c, _ := Lookup("count")
	fs := []Func{c}
	for _, name := range []string{"count", "sum", "avg", "min", "max", "stddev"} {
		fs = append(fs, lookupField(t, name))
	}
	vs := []event.Value{n(1.5), n(-3), str("x"), null, bl(true)}
	for _, f := range fs {
		s := f.New()
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			s.Add(vs[i%len(vs)], int64(i))
			i++
		})
		if allocs != 0 {
			t.Errorf("%s (NeedsField %v): %v allocations per Add", f.Name(), f.NeedsField(), allocs)
		}
	}
}

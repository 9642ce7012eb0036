package aggregate

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
)

// in is one input of a state: a value and its event time.
type in struct {
	v  event.Value
	ts int64
}

var (
	null = event.Value{}
	n    = event.NumberValue
	str  = event.StringValue
	bl   = event.BoolValue
)

// at returns the inputs vs with times 0, 1, 2...
func at(vs ...event.Value) []in {
	out := make([]in, len(vs))
	for i, v := range vs {
		out[i] = in{v, int64(i)}
	}
	return out
}

// testFunc is a function under test with a label: "count()" for the event
// count, otherwise the name of the function of one field.
type testFunc struct {
	label string
	f     Func
}

func allFuncs(t testing.TB) []testFunc {
	c, ok := Lookup("count")
	if !ok {
		t.Fatal("no count")
	}
	fs := []testFunc{{"count()", c}}
	for _, name := range Names() {
		f, ok := LookupWithField(name)
		if !ok {
			t.Fatalf("LookupWithField(%q) failed", name)
		}
		fs = append(fs, testFunc{name, f})
	}
	return fs
}

func lookupField(t testing.TB, name string) Func {
	t.Helper()
	f, ok := LookupWithField(name)
	if !ok {
		t.Fatalf("LookupWithField(%q) failed", name)
	}
	return f
}

func feed(f Func, ins []in) State {
	s := f.New()
	for _, x := range ins {
		s.Add(x.v, x.ts)
	}
	return s
}

// randomInputs returns n inputs of mixed kinds; times are drawn from
// [0, tsRange) so that equal times occur.
func randomInputs(r *rand.Rand, count int, tsRange int64) []in {
	out := make([]in, count)
	for i := range out {
		var v event.Value
		switch k := r.IntN(10); {
		case k < 6:
			v = n(math.Round((r.Float64()*2000-1000)*1000) / 1000)
		case k < 7:
			v = str("s" + strconv.Itoa(r.IntN(50)))
		case k < 8:
			v = bl(r.IntN(2) == 1)
		case k < 9:
			v = n(float64(r.IntN(20))) // repeats, zeros
		}
		out[i] = in{v, r.Int64N(tsRange)}
	}
	return out
}

// sameValue reports whether a and b are identical (numbers bit for bit).
func sameValue(a, b event.Value) bool {
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case event.Number:
		return math.Float64bits(a.Num) == math.Float64bits(b.Num)
	case event.String:
		return a.Str == b.Str
	case event.Bool:
		return a.B == b.B
	}
	return true
}

// close reports whether a and b are within rel relative difference (or rel
// absolute difference for values below 1).
func closeTo(a, b, rel float64) bool {
	return math.Abs(a-b) <= rel*max(1, math.Abs(a), math.Abs(b))
}

func mustResult(t testing.TB, s State) event.Value {
	t.Helper()
	v, ok := s.Result()
	if !ok {
		t.Fatalf("%T: no result", s)
	}
	return v
}

func roundTrip(t testing.TB, f Func, s State) State {
	t.Helper()
	d := f.New()
	if err := d.Decode(s.AppendBinary(nil)); err != nil {
		t.Fatalf("%s: decode: %v", f.Name(), err)
	}
	return d
}

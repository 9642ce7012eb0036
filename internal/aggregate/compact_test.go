package aggregate

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
)

// TestLayoutCompact: the states of a window NewCompact makes, reached by
// State and folded by AddCompact or State's Add, behave as those of New,
// one by one, do not share memory, and only the aggregates outside the
// blocks get a state of their own.
func TestLayoutCompact(t *testing.T) {
	var fs []Func
	for _, name := range Names() {
		f, _ := LookupWithField(name)
		fs = append(fs, f)
	}
	count, _ := Lookup("count")
	fs = append(fs, count, fs[1], fs[2], fs[3], fs[4]) // a second block of each
	l := NewLayout(fs)
	var b Blocks
	rest := l.NewCompact(&b)
	if l.Len() != len(fs) || len(rest) != l.nr || l.nr == 0 || l.nr == len(fs) {
		t.Fatalf("%d aggregates, %d states outside the blocks (%d expected, some but not all)", l.Len(), len(rest), l.nr)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for i, f := range fs {
		one := f.New()
		for range 50 {
			v := event.NumberValue(float64(rng.IntN(1000)) / 10)
			if rng.IntN(5) == 0 {
				v = event.Value{}
			}
			if i%2 == 0 {
				l.AddCompact(&b, rest, i, v, 1)
			} else {
				l.State(&b, rest, i).Add(v, 1)
			}
			one.Add(v, 1)
		}
		if got, want := l.State(&b, rest, i).AppendBinary(nil), one.AppendBinary(nil); !slices.Equal(got, want) {
			t.Errorf("%s (#%d): state %x, want %x", f.Name(), i, got, want)
		}
	}
	before := make([][]byte, len(fs))
	for i := range fs {
		before[i] = l.State(&b, rest, i).AppendBinary(nil)
	}
	for i := range fs {
		l.State(&b, rest, i).Add(event.NumberValue(12345), 2)
		for j := range fs {
			if j != i && !slices.Equal(l.State(&b, rest, j).AppendBinary(nil), before[j]) {
				t.Fatalf("adding to %s (#%d) changed %s (#%d)", fs[i].Name(), i, fs[j].Name(), j)
			}
		}
		before[i] = l.State(&b, rest, i).AppendBinary(nil)
	}
	var only Blocks
	if rest := NewLayout([]Func{count, fs[1]}).NewCompact(&only); rest != nil {
		t.Fatalf("a layout of blocked functions only makes %d states of their own", len(rest))
	}
}

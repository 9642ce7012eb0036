package aggregate

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/pulsehq/pulse/internal/event"
)

func TestLookup(t *testing.T) {
	want := []string{"count", "sum", "avg", "min", "max", "first", "last", "stddev",
		"p50", "p90", "p95", "p99", "count_distinct"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v", got)
	}
	Names()[0] = "changed"
	if Names()[0] != "count" {
		t.Fatal("Names returns the package's slice")
	}
	for _, name := range want {
		f, ok := LookupWithField(name)
		if !ok || f.Name() != name || !f.NeedsField() {
			t.Errorf("LookupWithField(%q) = %v, %v", name, f, ok)
		}
		g, ok := Lookup(name)
		if !ok || g.Name() != name {
			t.Errorf("Lookup(%q) = %v, %v", name, g, ok)
		}
		if name == "count" {
			if g.NeedsField() || g == f {
				t.Error("Lookup(count) must count events")
			}
		} else if g != f {
			t.Errorf("Lookup(%q) differs from LookupWithField", name)
		}
	}
	for _, name := range []string{"", "COUNT", "median", "p75"} {
		if _, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) succeeded", name)
		}
		if _, ok := LookupWithField(name); ok {
			t.Errorf("LookupWithField(%q) succeeded", name)
		}
	}
}

// agree compares a merged result with the result of adding everything to
// one state: sums, averages and deviations depend on the order of floating
// point operations, everything else is exact.
func agree(label string, got, want event.Value) bool {
	switch label {
	case "sum", "avg", "stddev":
		return got.Kind == want.Kind && closeTo(got.Num, want.Num, 1e-9)
	}
	return sameValue(got, want)
}

// TestMergeEqualsAdd: splitting the input in consecutive parts, folding
// each part and merging them in order, left to right or as a tree, gives
// the result of adding everything to one state.
func TestMergeEqualsAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, tf := range allFuncs(t) {
		t.Run(tf.label, func(t *testing.T) {
			for trial := range 300 {
				ins := randomInputs(r, r.IntN(300), 1+r.Int64N(40))
				want, wantOK := feed(tf.f, ins).Result()
				cuts := []int{0, len(ins)}
				for range r.IntN(6) {
					cuts = append(cuts, r.IntN(len(ins)+1))
				}
				slices.Sort(cuts)
				var parts, tree []State
				for i := 1; i < len(cuts); i++ {
					parts = append(parts, feed(tf.f, ins[cuts[i-1]:cuts[i]]))
					tree = append(tree, feed(tf.f, ins[cuts[i-1]:cuts[i]]))
				}
				for _, p := range parts[1:] {
					parts[0].Merge(p)
				}
				for len(tree) > 1 {
					var next []State
					for i := 0; i < len(tree); i += 2 {
						if i+1 < len(tree) {
							tree[i].Merge(tree[i+1])
						}
						next = append(next, tree[i])
					}
					tree = next
				}
				for how, s := range map[string]State{"left fold": parts[0], "tree": tree[0]} {
					got, ok := s.Result()
					if ok != wantOK || ok && !agree(tf.label, got, want) {
						t.Fatalf("trial %d, %d inputs, %s: got %+v %v, want %+v %v", trial, len(ins), how, got, ok, want, wantOK)
					}
				}
			}
		})
	}
}

// TestRoundTrip: a decoded state has the original's result and behaves as
// the original under further Add and Merge; Decode replaces a state's
// content.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, tf := range allFuncs(t) {
		t.Run(tf.label, func(t *testing.T) {
			for trial := range 100 {
				size := r.IntN(200)
				if trial%10 == 9 {
					size = 20000 // dense HyperLogLog, many sketch bins
				}
				ins := randomInputs(r, size, 1000)
				orig := feed(tf.f, ins)
				enc := orig.AppendBinary([]byte("prefix"))[len("prefix"):]
				dec := feed(tf.f, randomInputs(r, 50, 1000)) // overwritten
				if err := dec.Decode(enc); err != nil {
					t.Fatalf("decode: %v", err)
				}
				more, other := randomInputs(r, 100, 1000), feed(tf.f, randomInputs(r, 100, 1000))
				for step := range 3 {
					got, gotOK := dec.Result()
					want, wantOK := orig.Result()
					if gotOK != wantOK || !sameValue(got, want) {
						t.Fatalf("trial %d step %d: decoded %+v %v, original %+v %v", trial, step, got, gotOK, want, wantOK)
					}
					switch step {
					case 0:
						for _, x := range more {
							orig.Add(x.v, x.ts)
							dec.Add(x.v, x.ts)
						}
					case 1:
						orig.Merge(other)
						dec.Merge(other)
					}
				}
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	fs := allFuncs(t)
	r := rand.New(rand.NewPCG(11, 12))
	for i, tf := range fs {
		enc := feed(tf.f, randomInputs(r, 100, 10)).AppendBinary(nil)
		bad := map[string][]byte{
			"nil":     nil,
			"version": append([]byte{9}, enc[1:]...),
			"type":    append([]byte{enc[0], 200}, enc[2:]...),
		}
		for name, b := range bad {
			if err := tf.f.New().Decode(b); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: %s: got %v", tf.label, name, err)
			}
		}
		// Another function's state is refused, except count() and count(x)
		// and the percentiles, which share their encodings.
		for _, other := range fs {
			o := feed(other.f, randomInputs(r, 10, 10)).AppendBinary(nil)
			same := o[1] == enc[1]
			if err := tf.f.New().Decode(o); (err == nil) != same {
				t.Errorf("%s decoding %s: %v", tf.label, other.label, err)
			}
		}
		// Truncations and a trailing byte must not panic.
		for j := range enc {
			_ = tf.f.New().Decode(enc[:j])
		}
		_ = tf.f.New().Decode(append(enc, byte(i)))
	}
}

func TestMergeMismatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	lookupField(t, "min").New().Merge(lookupField(t, "max").New())
}

// TestLayout: the states a Layout allocates in blocks behave as those of
// New, one by one, whether folded through Layout.Add or State.Add, and do
// not share memory.
func TestLayout(t *testing.T) {
	var fs []Func
	for _, name := range Names() {
		f, _ := LookupWithField(name)
		fs = append(fs, f)
	}
	count, _ := Lookup("count")
	fs = append(fs, count, fs[1], fs[2], fs[3], fs[4]) // a second block of each
	rng := rand.New(rand.NewPCG(7, 7))
	l := NewLayout(fs)
	var blocks Blocks
	states := l.New(&blocks)
	if len(states) != len(fs) {
		t.Fatalf("%d states for %d functions", len(states), len(fs))
	}
	for i, f := range fs {
		one := f.New()
		for range 50 {
			v := event.NumberValue(float64(rng.IntN(1000)) / 10)
			if rng.IntN(5) == 0 {
				v = event.Value{}
			}
			if i%2 == 0 {
				l.Add(&blocks, states, i, v, 1)
			} else {
				states[i].Add(v, 1)
			}
			one.Add(v, 1)
		}
		if got, want := states[i].AppendBinary(nil), one.AppendBinary(nil); !slices.Equal(got, want) {
			t.Errorf("%s (#%d): state %x, want %x", f.Name(), i, got, want)
		}
	}
	// Adding to one state changes no other: every block element is its own.
	before := make([][]byte, len(states))
	for i, s := range states {
		before[i] = s.AppendBinary(nil)
	}
	for i, s := range states {
		s.Add(event.NumberValue(12345), 2)
		for j, o := range states {
			if j != i && !slices.Equal(o.AppendBinary(nil), before[j]) {
				t.Fatalf("adding to %s (#%d) changed %s (#%d)", fs[i].Name(), i, fs[j].Name(), j)
			}
		}
		before[i] = s.AppendBinary(nil)
	}
}

// TestKeepsValues: only first and last hold on to values they were given;
// every other state keeps numbers, counts or hashes. A string passed to
// one of those may point into memory the caller reuses.
func TestKeepsValues(t *testing.T) {
	for _, name := range Names() {
		f, _ := LookupWithField(name)
		if want := name == "first" || name == "last"; KeepsValues(f) != want {
			t.Errorf("KeepsValues(%s) = %v", name, !want)
		}
		s := f.New()
		b := []byte("a string in a reused buffer")
		s.Add(event.StringValue(unsafe.String(&b[0], len(b))), 1) // no copy
		before := s.AppendBinary(nil)
		copy(b, "XXXXXXXXXXXXXXXXXXXXXXXXXXX")
		if !KeepsValues(f) && !slices.Equal(s.AppendBinary(nil), before) {
			t.Errorf("%s changed when the input's memory did", name)
		}
	}
}

// TestIsNew: IsNew never calls a state new unless it encodes exactly as a
// new state of its function; it knows the blocked states (count, sum, avg,
// min, max), also when they live in a Layout's blocks, and a sum or
// extreme whose float is -0 (only a decoded one can be) is not new.
func TestIsNew(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, tf := range allFuncs(t) {
		t.Run(tf.label, func(t *testing.T) {
			fresh := tf.f.New().AppendBinary(nil)
			blocked := tf.f.(*fn).block != noBlock
			if got := IsNew(tf.f.New()); got != blocked {
				t.Fatalf("IsNew of a new state = %v, want %v", got, blocked)
			}
			for trial := range 200 {
				s := feed(tf.f, randomInputs(r, r.IntN(4), 1000))
				if IsNew(s) && !slices.Equal(s.AppendBinary(nil), fresh) {
					t.Fatalf("trial %d: IsNew, but %x encodes unlike a new state %x", trial, s.AppendBinary(nil), fresh)
				}
			}
			if !blocked {
				return
			}
			var b Blocks
			for _, s := range NewLayout([]Func{tf.f}).New(&b) {
				if !IsNew(s) {
					t.Fatal("a new state in a layout's blocks is not new")
				}
			}
			// The last 8 bytes are a float (the compensation of a
			// sum, the value of an extreme; for count, its
			// integer): its sign bit set is not new.
			neg := slices.Clone(fresh)
			neg[len(neg)-1] |= 0x80
			s := tf.f.New()
			if err := s.Decode(neg); err != nil {
				t.Fatalf("decode %x: %v", neg, err)
			}
			if IsNew(s) {
				t.Fatalf("%x (the sign bit set) is called new", neg)
			}
		})
	}
}

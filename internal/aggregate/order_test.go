package aggregate

import (
	"math/rand/v2"
	"testing"
)

func TestFirstLast(t *testing.T) {
	first, last := lookupField(t, "first"), lookupField(t, "last")
	runTable(t, first, []tableCase{
		{"empty", nil, null, false, 0},
		{"only nulls", at(null, null), null, false, 0},
		{"single", at(n(-1)), n(-1), true, 0},
		{"any kind", at(null, str("a"), n(2)), str("a"), true, 0},
		{"bool", []in{{n(1), 5}, {bl(false), 4}}, bl(false), true, 0},
		{"by time, not arrival", []in{{n(1), 30}, {n(2), 10}, {n(3), 20}}, n(2), true, 0},
		{"tie keeps the earliest added", []in{{str("a"), 10}, {str("b"), 10}, {str("c"), 11}}, str("a"), true, 0},
		{"negative time", []in{{n(1), 0}, {n(2), -5}}, n(2), true, 0},
	})
	runTable(t, last, []tableCase{
		{"empty", nil, null, false, 0},
		{"only nulls", at(null, null), null, false, 0},
		{"single", at(str("")), str(""), true, 0},
		{"nulls skipped", at(n(1), bl(true), null), bl(true), true, 0},
		{"by time, not arrival", []in{{n(1), 30}, {n(2), 10}, {n(3), 20}}, n(1), true, 0},
		{"tie keeps the latest added", []in{{str("a"), 10}, {str("b"), 10}, {str("c"), 9}}, str("b"), true, 0},
	})
}

// TestFirstLastShuffled: with distinct times, first and last do not depend
// on the order of arrival, nor on how the input is split and merged.
func TestFirstLastShuffled(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	first, last := lookupField(t, "first"), lookupField(t, "last")
	for trial := range 200 {
		count := 1 + r.IntN(100)
		ins := make([]in, count)
		perm := r.Perm(count * 3)
		minI, maxI := 0, 0
		for i := range ins {
			ins[i] = in{n(float64(i)), int64(perm[i]) - 50}
			if ins[i].ts < ins[minI].ts {
				minI = i
			}
			if ins[i].ts > ins[maxI].ts {
				maxI = i
			}
		}
		for range 5 {
			r.Shuffle(len(ins), func(i, j int) { ins[i], ins[j] = ins[j], ins[i] })
			cut := r.IntN(count + 1)
			for _, tc := range []struct {
				f    Func
				want float64
			}{{first, float64(minI)}, {last, float64(maxI)}} {
				s := feed(tc.f, ins)
				a, b := feed(tc.f, ins[:cut]), feed(tc.f, ins[cut:])
				b.Merge(a) // either order: the times are distinct
				for _, st := range []State{s, b} {
					if got := mustResult(t, st); got.Num != tc.want {
						t.Fatalf("trial %d %s: got %v, want %v", trial, tc.f.Name(), got.Num, tc.want)
					}
				}
			}
		}
	}
}

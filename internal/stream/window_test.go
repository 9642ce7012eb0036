package stream

import (
	"reflect"
	"slices"
	"testing"
)

func TestTumblingStart(t *testing.T) {
	const min = 60_000
	tests := []struct {
		size, ts, want int64
	}{
		{min, 0, 0},
		{min, 1, 0},
		{min, min - 1, 0},     // end-1 belongs to the window
		{min, min, min},       // end starts the next one
		{min, min + 1, min},   //
		{min, 2*min - 1, min}, //
		{min, -1, -min},       // before the epoch: round down, not toward 0
		{min, -min + 1, -min}, //
		{min, -min, -min},     // start belongs to the window
		{min, -min - 1, -2 * min},
		{min, 1772366400000, 1772366400000},        // 2026-03-01T12:00:00Z
		{min, 1772366459999, 1772366400000},        // 12:00:59.999
		{min, 1772366460000, 1772366460000},        // 12:01:00
		{1, 12345, 12345},                          // 1 ms windows
		{1, -7, -7},                                //
		{3_600_000, 1772368199999, 1772366400000},  // hour window, 12:29:59.999
		{86_400_000, 1772366400000, 1772323200000}, // day window starts at 00:00Z
		{7, -7, -7},                                //
		{7, -8, -14},                               //
		{7, 6, 0},                                  //
	}
	for _, tt := range tests {
		if got := tumblingStart(tt.ts, tt.size); got != tt.want {
			t.Errorf("tumblingStart(%d, %d) = %d, want %d", tt.ts, tt.size, got, tt.want)
		}
	}
	// Every time lies in [start, start+size) and start is aligned.
	for _, size := range []int64{1, 7, 1000, min, 3_600_000} {
		for _, ts := range []int64{-3*size - 1, -size - 1, -size, -1, 0, 1, size - 1, size, 5*size + 3, 1772366400000, 1e15, -1e15} {
			s := tumblingStart(ts, size)
			if s > ts || ts >= s+size || s%size != 0 {
				t.Errorf("tumblingStart(%d, %d) = %d: not the aligned window holding ts", ts, size, s)
			}
		}
	}
}

func TestHoppingStarts(t *testing.T) {
	const min = 60_000
	tests := []struct {
		name            string
		ts, size, slide int64
		want            []int64
	}{
		{"first ms of a slide: in size/slide windows", 0, 5 * min, min, []int64{-4 * min, -3 * min, -2 * min, -min, 0}},
		{"inside a slide", 90_000, 5 * min, min, []int64{-3 * min, -2 * min, -min, 0, min}},
		{"last ms of a slide", min - 1, 5 * min, min, []int64{-4 * min, -3 * min, -2 * min, -min, 0}},
		{"the end of the oldest window excludes ts", 5 * min, 5 * min, min, []int64{min, 2 * min, 3 * min, 4 * min, 5 * min}},
		{"two windows", 30_000, 2 * min, min, []int64{-min, 0}},
		{"slide == size is tumbling", 90_000, min, min, []int64{min}},
		{"negative times round down", -1, 3 * min, min, []int64{-3 * min, -2 * min, -min}},
		{"negative on a boundary", -min, 3 * min, min, []int64{-3 * min, -2 * min, -min}},
		{"negative just before a boundary", -min - 1, 3 * min, min, []int64{-4 * min, -3 * min, -2 * min}},
		{"odd sizes", 10, 6, 2, []int64{6, 8, 10}},
		{"odd sizes, negative", -5, 6, 2, []int64{-10, -8, -6}},
		{"2026-03-01T12:07:30Z in 10m/5m: 12:00 and 12:05", 1772366850000, 10 * min, 5 * min, []int64{1772366400000, 1772366700000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hoppingStarts(nil, tt.ts, tt.size, tt.slide)
			if !slices.Equal(got, tt.want) {
				t.Errorf("hoppingStarts(%d, %d, %d) = %v, want %v", tt.ts, tt.size, tt.slide, got, tt.want)
			}
		})
	}
	// Every ts is in exactly size/slide windows, each aligned to slide,
	// holding ts, oldest first; appending keeps dst.
	for _, sz := range [][2]int64{{2, 1}, {6, 2}, {6, 3}, {10, 10}, {5 * min, min}, {3_600_000, 60_000}} {
		size, slide := sz[0], sz[1]
		for _, ts := range []int64{-2*size - 1, -size, -slide, -1, 0, 1, slide - 1, slide, size - 1, size, size + slide/2, 1772366400000} {
			got := hoppingStarts([]int64{42}, ts, size, slide)
			if got[0] != 42 || int64(len(got)-1) != size/slide {
				t.Fatalf("hoppingStarts(%d, %d, %d) = %v: want 42 then %d starts", ts, size, slide, got, size/slide)
			}
			for i, s := range got[1:] {
				if s > ts || ts >= s+size || s%slide != 0 || (i > 0 && s != got[i]+slide) {
					t.Errorf("hoppingStarts(%d, %d, %d) = %v: %d is not a window holding ts", ts, size, slide, got, s)
				}
			}
		}
	}
}

func TestWatermarks(t *testing.T) {
	type obs struct {
		p       int32
		ts, now int64
		op      byte // 'o' observe, 't' touch, 'a' assign
	}
	tests := []struct {
		name string
		obs  []obs
		now  int64
		want int64
	}{
		{"no partition: no watermark", nil, 0, NoWatermark},
		{"max event time minus disorder", []obs{{0, 10_000, 0, 'o'}, {0, 20_000, 0, 'o'}, {0, 15_000, 0, 'o'}}, 0, 19_000},
		{"an older event does not lower it", []obs{{0, 20_000, 0, 'o'}, {0, 1, 0, 'o'}}, 0, 19_000},
		{"minimum over partitions", []obs{{0, 50_000, 0, 'o'}, {1, 20_000, 0, 'o'}, {2, 30_000, 0, 'o'}}, 0, 19_000},
		{"a partition idle for less than the timeout holds it", []obs{{0, 50_000, 100, 'o'}, {1, 20_000, 0, 'o'}}, 29_999, 19_000},
		{"a partition idle for the timeout is skipped", []obs{{0, 50_000, 100, 'o'}, {1, 20_000, 0, 'o'}}, 30_000, 49_000},
		{"Touch keeps a partition active", []obs{{0, 50_000, 100, 'o'}, {1, 20_000, 0, 'o'}, {1, 0, 20_000, 't'}}, 49_999, 19_000},
		{"Touch of an unknown partition does nothing", []obs{{0, 50_000, 0, 'o'}, {3, 0, 0, 't'}}, 0, 49_000},
		{"all idle: the maximum", []obs{{0, 50_000, 0, 'o'}, {1, 20_000, 0, 'o'}, {2, 90_000, 10, 'o'}}, 30_010, 89_000},
		{"negative event times", []obs{{0, -120_000, 0, 'o'}, {1, -60_000, 0, 'o'}}, 0, -121_000},
		{"an assigned partition without events holds it back", []obs{{0, 50_000, 0, 'o'}, {1, 0, 0, 'a'}}, 29_999, NoWatermark},
		{"an assigned partition idle for the timeout is skipped", []obs{{0, 50_000, 10, 'o'}, {1, 0, 0, 'a'}}, 30_000, 49_000},
		{"only assigned partitions: none", []obs{{0, 0, 0, 'a'}, {1, 0, 0, 'a'}}, 1e9, NoWatermark},
		{"Touch keeps an assigned partition active", []obs{{0, 50_000, 0, 'o'}, {1, 0, 0, 'a'}, {1, 0, 25_000, 't'}}, 54_999, NoWatermark},
		{"Assign again does not reset", []obs{{1, 20_000, 0, 'o'}, {0, 50_000, 0, 'o'}, {1, 0, 10, 'a'}}, 0, 19_000},
		{"an assigned partition that delivers counts as usual", []obs{{1, 0, 0, 'a'}, {0, 50_000, 0, 'o'}, {1, 20_000, 5, 'o'}}, 10, 19_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := Watermarks{Disorder: 1000, IdleTimeout: 30_000}
			for _, o := range tt.obs {
				switch o.op {
				case 't':
					w.Touch(o.p, o.now)
				case 'a':
					w.Assign(o.p, o.now)
				default:
					w.Observe(o.p, o.ts, o.now)
				}
			}
			if got := w.Current(tt.now); got != tt.want {
				t.Errorf("Current(%d) = %d, want %d", tt.now, got, tt.want)
			}
		})
	}
}

// TestWatermarksMarkers drives watermarks as a window task does: from
// markers only, with idleness declared rather than timed.
func TestWatermarksMarkers(t *testing.T) {
	w := Watermarks{Disorder: 1000}
	w.Assign(0, 0)
	w.Assign(1, 0)
	w.Raise(0, 50_000)
	// Partition 1 delivered nothing and is not declared idle: it holds
	// the watermark however much processing time passes.
	if got := w.Current(1 << 40); got != NoWatermark {
		t.Fatalf("Current = %d with a silent partition, want none", got)
	}
	w.Raise(1, 20_000)
	w.Raise(1, 10_000) // lower: no effect
	if got := w.Current(1 << 40); got != 19_000 {
		t.Fatalf("Current = %d, want 19000", got)
	}
	w.SetIdle(1, true)
	if got := w.Current(0); got != 49_000 {
		t.Fatalf("Current = %d with partition 1 idle, want 49000", got)
	}
	if ts, seen, idle := w.Max(1, 0); ts != 20_000 || !seen || !idle {
		t.Fatalf("Max(1) = %d, %v, %v", ts, seen, idle)
	}
	w.SetIdle(1, false)
	w.Unassign(0)
	if got := w.Current(0); got != 19_000 {
		t.Fatalf("Current = %d after unassigning partition 0, want 19000", got)
	}
}

func TestGroupByField(t *testing.T) {
	got := groupByField([]int{-1, 3, 3, 5, 3, -1, 5})
	want := []fieldAggs{{-1, []int{0, 5}}, {3, []int{1, 2, 4}}, {5, []int{3, 6}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("groupByField = %v, want %v", got, want)
	}
}

package stream

import "testing"

// TestWatermarksAdvanceWhenIdle: once every partition is idle, event time
// advances with the clock in whole seconds, up to Horizon past the newest
// event time; a partition idle alone does not advance the others.
func TestWatermarksAdvanceWhenIdle(t *testing.T) {
	w := Watermarks{Disorder: 1000, IdleTimeout: 30_000, Horizon: 61_000}
	w.Observe(0, 100_000, 0)
	w.Observe(1, 50_000, 10_000)
	for _, c := range []struct {
		now, want int64
	}{
		{29_999, 49_000},  // both active: the minimum
		{30_000, 49_000},  // partition 0 idle: skipped, not advanced
		{40_000, 109_000}, // both idle: the maximum, partition 0's, idle 10 s beyond the timeout
		{45_999, 114_000}, // partition 0 idle 15.999 s beyond: 15 s in whole seconds
		{500_000, 160_000},
	} {
		if got := w.Current(c.now); got != c.want {
			t.Errorf("Current(%d) = %d, want %d", c.now, got, c.want)
		}
	}
	if ts, seen, idle := w.Max(0, 45_999); ts != 115_000 || !seen || !idle {
		t.Errorf("Max(0) = %d, %v, %v; want the advanced 115000, idle", ts, seen, idle)
	}
	// A backlog keeps a partition active however long it is silent.
	w.SetBacklog(1, true)
	if got := w.Current(500_000); got != 49_000 {
		t.Errorf("with a backlog on partition 1: Current = %d, want 49000", got)
	}
}

// TestWatermarksClock: with Clock, an event time ahead of the processing
// time counts as the processing time.
func TestWatermarksClock(t *testing.T) {
	w := Watermarks{Clock: true}
	w.Observe(0, 1_000_000, 5_000)
	if got := w.Current(5_000); got != 5_000 {
		t.Errorf("Current = %d, want the clock 5000", got)
	}
	w.Observe(0, 4_000, 6_000)
	if got := w.Current(6_000); got != 5_000 {
		t.Errorf("an older event lowered it: %d", got)
	}
}

// TestWatermarksMarkAdvanced: a window task takes an idle partition's
// advanced time from its marker, counts it only while every partition is
// idle, and forgets it once the partition is active again.
func TestWatermarksMarkAdvanced(t *testing.T) {
	var w Watermarks
	w.Mark(0, 50_000, true, false)
	w.Mark(1, 20_000, true, false)
	w.Mark(1, 90_000, true, true) // idle, advanced to 90 s
	if got := w.Current(0); got != 50_000 {
		t.Errorf("one idle: Current = %d, want partition 0's 50000", got)
	}
	w.Mark(0, 60_000, true, true)
	if got := w.Current(0); got != 90_000 {
		t.Errorf("all idle: Current = %d, want the advanced 90000", got)
	}
	w.Mark(1, 25_000, true, false) // active again: its delivered time
	w.Mark(0, 50_000, true, false)
	if got := w.Current(0); got != 25_000 {
		t.Errorf("active again: Current = %d, want 25000, not the advanced time", got)
	}
}

// TestHoldKeepsPartitionsActive: while the shuffle stage is held (a disk
// low on space, ingest refusing events) its partitions do not turn idle,
// so event time does not advance with the clock over events the senders
// will send again.
func TestHoldKeepsPartitionsActive(t *testing.T) {
	held := true
	s := NewShuffler(StageConfig{Plan: testPlan(t, ""), Hold: func() bool { return held }})
	s.own = map[int32]string{0: "city:0"}
	s.reset(0)
	s.wm.Observe(0, 50_000, 0)
	s.holdIdle(100_000) // held: touched
	if _, _, idle := s.wm.Max(0, 100_000); idle {
		t.Fatal("a partition turned idle during a hold")
	}
	held = false
	s.holdIdle(200_000) // not held: untouched
	if ts, _, idle := s.wm.Max(0, 200_000); !idle || ts <= 50_000 {
		t.Fatalf("Max = %d, idle %v; want idle and advanced once the hold ended", ts, idle)
	}
}

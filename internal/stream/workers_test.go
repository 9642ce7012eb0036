package stream

import (
	"sync/atomic"
	"testing"
)

// TestParallel: parallel calls fn once for every index and returns after
// the last call.
func TestParallel(t *testing.T) {
	for _, n := range []int{0, 1, 2, 5, 100} {
		calls := make([]atomic.Int32, n)
		parallel(n, func(i int) { calls[i].Add(1) })
		for i := range calls {
			if c := calls[i].Load(); c != 1 {
				t.Fatalf("n=%d: fn(%d) called %d times", n, i, c)
			}
		}
	}
}

// TestWorkerGauges: the workers of a stage share a gauge: lag and open
// windows show the sum of the workers' values, the watermark the lowest of
// the workers that have one; a worker without one (ok false) is left out.
func TestWorkerGauges(t *testing.T) {
	cfgs := StageConfig{}.workers(3)
	if len(cfgs) != 3 || cfgs[2].worker != 2 || cfgs[0].gauges != cfgs[2].gauges {
		t.Fatalf("workers: %d configs, the last is worker %d, gauges shared %v", len(cfgs), cfgs[2].worker, cfgs[0].gauges == cfgs[2].gauges)
	}
	g := cfgs[0].gauges
	steps := []struct {
		worker, gauge int
		v             float64
		ok            bool
		want          float64
		wantOK        bool
	}{
		{0, gaugeLag, 5, true, 5, true},
		{1, gaugeLag, 7, true, 12, true},
		{0, gaugeLag, 1, true, 8, true},
		{2, gaugeWatermark, 0, false, 0, false},
		{1, gaugeWatermark, 200, true, 200, true},
		{0, gaugeWatermark, 100, true, 100, true},
		{0, gaugeWatermark, 0, false, 200, true}, // worker 0 lost its tasks
		{2, gaugeOpen, 3, true, 3, true},
	}
	for i, st := range steps {
		got, ok := g.put(st.worker, st.gauge, st.v, st.ok)
		if ok != st.wantOK || (ok && got != st.want) {
			t.Fatalf("step %d: put(worker %d, gauge %d, %v, %v) = %v, %v; want %v, %v", i, st.worker, st.gauge, st.v, st.ok, got, ok, st.want, st.wantOK)
		}
	}
	if n := len(StageConfig{}.workers(0)); n != 1 {
		t.Fatalf("workers(0) returned %d configs, want 1", n)
	}
}

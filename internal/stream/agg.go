package stream

import (
	"math"

	"github.com/pulsehq/pulse/internal/event"
)

// Agg is the running count, sum, minimum and maximum of one metric.
type Agg struct {
	Count    int64
	Sum      float64
	Min, Max float64
}

// Add folds v into a.
func (a *Agg) Add(v float64) {
	if a.Count == 0 {
		a.Min, a.Max = v, v
	} else {
		a.Min = math.Min(a.Min, v)
		a.Max = math.Max(a.Max, v)
	}
	a.Count++
	a.Sum += v
}

// Merge folds b into a.
func (a *Agg) Merge(b Agg) {
	if b.Count == 0 {
		return
	}
	if a.Count == 0 {
		*a = b
		return
	}
	a.Count += b.Count
	a.Sum += b.Sum
	a.Min = math.Min(a.Min, b.Min)
	a.Max = math.Max(a.Max, b.Max)
}

// Avg is the mean, or 0 for an empty Agg.
func (a Agg) Avg() float64 {
	if a.Count == 0 {
		return 0
	}
	return a.Sum / float64(a.Count)
}

// WindowState is the aggregate of every reading in one window of one key.
type WindowState struct {
	Count   int64
	Has     uint16
	Metrics [event.NumMetrics]Agg
}

// Add folds a reading into the window.
func (w *WindowState) Add(r *event.Reading) {
	w.Count++
	w.Has |= r.Has
	for m := event.Metric(0); m < event.NumMetrics; m++ {
		if r.HasMetric(m) {
			w.Metrics[m].Add(r.Values[m])
		}
	}
}

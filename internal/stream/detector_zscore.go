package stream

import (
	"fmt"
	"math"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// Detector scores one numeric series (one field of one key of a detect
// output) point by point, in event-time order. Its state is a fixed
// number of float64s per series, all zero for a series that has seen
// nothing, so that the detect operator can keep, encode and (later) page
// out every detector's state alike.
type Detector interface {
	// StateLen is how many float64s the state of one series holds.
	StateLen() int
	// Columns names the columns Step appends for an anomaly; the row
	// begins with the field's name and the point's value.
	Columns() []string
	// Step compares x with the series state st, appends the columns of
	// an anomaly to row when x is one (reporting whether it is), then
	// folds x into st.
	Step(st []float64, x float64, row []event.Value) ([]event.Value, bool)
}

// newDetector returns the detector a detect output configures.
func newDetector(d *pipeline.Detect) (Detector, error) {
	switch d.Detector {
	case "zscore":
		return zscore{alpha: d.Alpha, threshold: d.Threshold, warmUp: float64(d.WarmUp)}, nil
	}
	return nil, fmt.Errorf("unknown detector %q", d.Detector)
}

// zscore is the EWMA z-score detector. Per series it keeps the number of
// points n, an exponentially weighted mean and variance. A point x is
// compared with the state before it: once n ≥ warm-up and the standard
// deviation s = sqrt(variance) is above 0, z = (x − mean) / s, and x is an
// anomaly when |z| ≥ threshold; when s is 0 (the series never varied), x
// is an anomaly when it differs from the mean, with no z (null). Then x updates the state, anomaly or not
// (West's incremental EWMA):
//
//	first point: mean = x, variance = 0
//	after:       d = x − mean; mean += alpha·d; variance = (1 − alpha)·(variance + alpha·d²)
type zscore struct {
	alpha, threshold, warmUp float64
}

var zscoreColumns = []string{"mean", "stddev", "z"}

func (zscore) StateLen() int     { return 3 } // n, mean, variance
func (zscore) Columns() []string { return zscoreColumns }

func (z zscore) Step(st []float64, x float64, row []event.Value) ([]event.Value, bool) {
	n, mean, variance := st[0], st[1], st[2]
	anomaly := false
	if n >= z.warmUp && n > 0 {
		switch sd := math.Sqrt(variance); {
		case sd > 0:
			score := (x - mean) / sd
			if math.Abs(score) >= z.threshold {
				row = append(row, event.NumberValue(mean), event.NumberValue(sd), event.NumberValue(score))
				anomaly = true
			}
		case x != mean:
			// A series that never varied, then moved (errors flat at 3 a
			// minute, then 20): any change is an anomaly, with no z.
			row = append(row, event.NumberValue(mean), event.NumberValue(0), event.Value{})
			anomaly = true
		}
	}
	if n == 0 {
		mean, variance = x, 0
	} else {
		d := x - mean
		mean += z.alpha * d
		variance = (1 - z.alpha) * (variance + z.alpha*d*d)
	}
	st[0], st[1], st[2] = n+1, mean, variance
	return row, anomaly
}

package stream

import (
	"fmt"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// The operators of outputs whose results are rows, not windows: events
// (op_events.go) and detect (op_detect.go). What they share with the
// runtime is here.

// rejecter is an Operator that can refuse an event as invalid (a value of
// the wrong type, an expression that fails on it): Add then returns 0 and
// Rejected the reason, until the next Add. The runtime sends the event to
// the dead-letter topic.
type rejecter interface {
	Rejected() error
}

// rejectedBy returns why op refused the event it was last given, or nil.
func rejectedBy(op Operator) error {
	if r, ok := op.(rejecter); ok {
		return r.Rejected()
	}
	return nil
}

// newRowOperator returns the operator of the events or detect output of
// plan (its only output), whose results are rows rather than windows.
func newRowOperator(plan *pipeline.Plan, dec *Decoder) Operator {
	if plan.Outputs[0].Kind == pipeline.KindEvents {
		return newEventsOp(plan, dec)
	}
	d, err := newDetectOp(plan, dec)
	if err != nil {
		panic("stream: " + err.Error()) // the pipeline parser accepts known detectors only
	}
	return d
}

// markWM applies a watermark marker to wm, as Engine.Mark does.
func markWM(wm *Watermarks, p int32, maxTS int64, seen, idle bool) {
	wm.Assign(p, 0)
	if seen {
		wm.Raise(p, maxTS)
	}
	wm.SetIdle(p, idle)
}

// lateReason says why an event of output o at ts was late, the output at
// watermark wm.
func lateReason(o *pipeline.Output, ts, wm int64) string {
	what := "its " + o.Name + " windows are final"
	if o.Kind == pipeline.KindDetect {
		what = "the " + o.Name + " detector has scored that time already"
	}
	return fmt.Sprintf("event time %s is behind the watermark %s: %s", fmtMillis(ts), fmtMillis(wm), what)
}

// markerWM returns the watermarks of a row operator: partition watermarks
// come from markers only (as Engine.UseMarkers), with the pipeline's
// out-of-orderness.
func markerWM(plan *pipeline.Plan) Watermarks {
	return Watermarks{Disorder: plan.Time.MaxOutOfOrderness.Milliseconds()}
}

// eventJSON renders the event whose encoded values are vals as the late
// topic shows events (every field the pipeline reads), for the dead
// letter of an event an operator refused.
func (w *Windower) eventJSON(vals []byte) []byte {
	full := Record{Vals: make([]event.Value, len(w.rec.Vals))}
	if readRecord(vals, &full, nil, nil) != nil {
		full = w.rec
	}
	return appendEventJSON(nil, &w.cfg.Plan.Source, w.dec.slots, &full)
}

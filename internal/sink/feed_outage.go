package sink

import (
	"log/slog"
	"time"

	"github.com/pulsehq/pulse/internal/telemetry"
)

// outage follows the failures of a feed: the first failure of an outage
// is logged at once and its end once more, the retries in between only
// at debug level, and pulse_sink_up says which state the sink is in.
type outage struct {
	name    string
	log     *slog.Logger
	metrics *telemetry.Metrics
	now     func() time.Time

	down    bool
	since   time.Time
	retries int
	last    string // the last failure's error
}

// failed records a failure of the feed.
func (o *outage) failed(err error) {
	if m := o.metrics; m != nil {
		m.SinkFailures.WithLabelValues(o.name).Inc()
		m.SinkUp.WithLabelValues(o.name).Set(0)
	}
	msg := err.Error()
	switch {
	case !o.down:
		o.down, o.since, o.retries = true, o.now(), 0
		o.log.Error(o.name+" sink failed; retrying with backoff until it works again (logged then), results wait in Kafka meanwhile", "err", err)
	default:
		o.retries++
		if msg != o.last {
			o.log.Debug(o.name+" sink still failing", "err", err, "retries", o.retries)
		}
	}
	o.last = msg
}

// ok records that the feed reached its database and reads again.
func (o *outage) ok() {
	if m := o.metrics; m != nil {
		m.SinkUp.WithLabelValues(o.name).Set(1)
	}
	if o.down {
		o.log.Info(o.name+" sink works again", "down_for", o.now().Sub(o.since).Round(time.Millisecond), "retries", o.retries, "last_err", o.last)
		o.down = false
	}
}

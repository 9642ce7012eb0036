package sink

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/ratelog"
	"github.com/pulsehq/pulse/internal/stream"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// Retainer deletes expired results. A store implements it next to its
// Appender; the deletes do not touch the stored offsets.
type Retainer interface {
	// DeleteBefore deletes at most limit stored rows of output s of
	// pipeline whose window start (or time) is before cutoff (ms), in one
	// short transaction, and returns how many it deleted.
	DeleteBefore(ctx context.Context, pipeline string, s *stream.Schema, cutoff int64, limit int) (int, error)
}

// RetentionConfig configures a Retention.
type RetentionConfig struct {
	Store Retainer
	// Plans whose outputs have a retention and a sink.
	Plans   []*pipeline.Plan
	Metrics *telemetry.Metrics
	Logger  *slog.Logger
	// Every is the time between rounds (default 1 min); Batch the rows
	// one delete removes at most (default 1,000); Pause the time between
	// two deletes of a round (default 50 ms), which leaves the database
	// to the sink meanwhile.
	Every, Pause time.Duration
	Batch        int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Retention deletes stored results older than their output's retention,
// in rounds of small deletes, so that no delete holds the store's lock
// for long.
type Retention struct {
	cfg     RetentionConfig
	outputs []retained
	warn    *ratelog.Logger
}

type retained struct {
	pipeline string
	schema   *stream.Schema
	keep     time.Duration
}

// NewRetention returns the retention of cfg.Plans' outputs that keep
// their results in a sink for a limited time; it has nothing to do when
// none does (Empty).
func NewRetention(cfg RetentionConfig) *Retention {
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if cfg.Pause <= 0 {
		cfg.Pause = 50 * time.Millisecond
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Retention{cfg: cfg, warn: ratelog.New(cfg.Logger, 10*time.Minute)}
	for _, p := range cfg.Plans {
		for i := range p.Outputs {
			o := &p.Outputs[i]
			if o.Retention > 0 && len(o.Sinks) > 0 {
				r.outputs = append(r.outputs, retained{pipeline: p.Name, schema: stream.SchemaOf(o), keep: o.Retention})
			}
		}
	}
	return r
}

// Empty reports whether no output has a retention.
func (r *Retention) Empty() bool { return len(r.outputs) == 0 }

// Run runs a round at once and then every cfg.Every until ctx ends.
func (r *Retention) Run(ctx context.Context) error {
	if r.Empty() {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(r.cfg.Every)
	defer t.Stop()
	for {
		r.Round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Round deletes what has expired of every output, a batch at a time, and
// returns the rows it deleted.
func (r *Retention) Round(ctx context.Context) int {
	total := 0
	for _, o := range r.outputs {
		n, err := r.expire(ctx, o)
		total += n
		if err != nil && ctx.Err() == nil {
			r.cfg.Metrics.SinkRetentionErr.WithLabelValues(o.pipeline, o.schema.Output).Inc()
			r.warn.Warn("retention "+o.pipeline+"/"+o.schema.Output, "retention round failed; the next round tries again",
				"pipeline", o.pipeline, "output", o.schema.Output, "err", err)
		}
	}
	return total
}

func (r *Retention) expire(ctx context.Context, o retained) (int, error) {
	cutoff := r.cfg.Now().Add(-o.keep).UnixMilli()
	total := 0
	for ctx.Err() == nil {
		n, err := r.cfg.Store.DeleteBefore(ctx, o.pipeline, o.schema, cutoff, r.cfg.Batch)
		total += n
		if n > 0 {
			r.cfg.Metrics.SinkExpired.WithLabelValues(o.pipeline, o.schema.Output).Add(float64(n))
		}
		if err != nil {
			return total, fmt.Errorf("delete results of %s/%s before %s: %w", o.pipeline, o.schema.Output, time.UnixMilli(cutoff).UTC().Format(time.RFC3339), err)
		}
		if n < r.cfg.Batch {
			return total, nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(r.cfg.Pause):
		}
	}
	return total, nil
}

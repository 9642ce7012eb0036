package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// Checkpoint is what a pipeline needs to resume: the next offset to read
// per input partition and its serialized engine state.
type Checkpoint struct {
	Offsets map[int32]int64
	State   []byte
}

// Store persists results and checkpoints atomically.
type Store interface {
	LoadCheckpoint(ctx context.Context, pipeline string) (Checkpoint, bool, error)
	Commit(ctx context.Context, pipeline string, results []Result, cp Checkpoint) error
}

// Config configures a Processor.
type Config struct {
	Pipeline Pipeline
	// Client consumes the pipeline's topic and produces to its late and
	// dead-letter topics. The processor adds its partitions itself.
	Client  *kgo.Client
	Store   Store
	Board   *Board
	Metrics *telemetry.Metrics
	Logger  *slog.Logger

	Disorder        time.Duration // allowed out-of-orderness
	IdleTimeout     time.Duration // a partition idle this long stops holding the watermark
	CheckpointEvery time.Duration
	LiveEvery       time.Duration
}

// Processor runs one pipeline over every partition of its input topic.
type Processor struct {
	cfg    Config
	engine *Engine
	parser event.CityParser
	ready  atomic.Bool

	sideErr atomic.Pointer[error] // first failed write to a side topic

	next    map[int32]int64 // next offset to read per partition
	hwm     map[int32]int64 // high watermark per partition
	pending []Result        // final results not yet committed
}

// NewProcessor returns a processor; Run starts it.
func NewProcessor(cfg Config) *Processor {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = time.Second
	}
	if cfg.LiveEvery <= 0 {
		cfg.LiveEvery = 500 * time.Millisecond
	}
	return &Processor{
		cfg:    cfg,
		engine: NewEngine(cfg.Pipeline.Outputs, cfg.Disorder.Milliseconds(), cfg.IdleTimeout.Milliseconds()),
		next:   make(map[int32]int64),
		hwm:    make(map[int32]int64),
	}
}

// Ready reports whether the processor has restored its state and consumes.
func (p *Processor) Ready() bool { return p.ready.Load() }

// LateTopic and DLQTopic name a pipeline's side topics.
func LateTopic(pipeline string) string { return pipeline + ".late" }

// DLQTopic names the dead-letter topic of a stream.
func DLQTopic(stream string) string { return stream + ".dlq" }

// Run restores the last checkpoint, consumes until ctx ends, then writes a
// final checkpoint so that a restart continues exactly where it stopped.
func (p *Processor) Run(ctx context.Context) error {
	name := p.cfg.Pipeline.Name
	cp, ok, err := p.cfg.Store.LoadCheckpoint(ctx, name)
	if err != nil {
		return err
	}
	if ok {
		if err := p.engine.Restore(cp.State, time.Now()); err != nil {
			return fmt.Errorf("restore pipeline %s: %w", name, err)
		}
		for part, off := range cp.Offsets {
			p.next[part] = off
		}
	}
	parts, err := bus.Partitions(ctx, p.cfg.Client, p.cfg.Pipeline.Topic)
	if err != nil {
		return fmt.Errorf("pipeline %s: %w", name, err)
	}
	assign := make(map[int32]kgo.Offset, len(parts))
	for _, part := range parts {
		p.engine.Assign(part, time.Now().UnixMilli())
		if off, ok := p.next[part]; ok {
			assign[part] = kgo.NewOffset().At(off)
		} else {
			assign[part] = kgo.NewOffset().AtStart()
		}
	}
	p.cfg.Client.AddConsumePartitions(map[string]map[int32]kgo.Offset{p.cfg.Pipeline.Topic: assign})
	p.cfg.Logger.Info("pipeline started", "pipeline", name, "partitions", len(parts), "restored", ok, "open_windows", p.engine.OpenWindows())
	p.ready.Store(true)
	defer p.ready.Store(false)

	lastCP, lastLive := time.Now(), time.Time{}
	for {
		pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		fetches := p.cfg.Client.PollRecords(pctx, 20000)
		cancel()
		fetches.EachError(func(t string, part int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				p.cfg.Logger.Warn("fetch failed", "pipeline", name, "topic", t, "partition", part, "err", err)
			}
		})
		now := time.Now()
		p.process(fetches, now.UnixMilli())
		p.pending = p.engine.Advance(now.UnixMilli(), p.pending)
		if ctx.Err() != nil {
			// Drain: everything fetched is processed; make it durable.
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return p.checkpoint(cctx)
		}
		if now.Sub(lastCP) >= p.cfg.CheckpointEvery || len(p.pending) > 50000 {
			if err := p.checkpoint(ctx); err != nil {
				if ctx.Err() != nil {
					continue
				}
				return err
			}
			lastCP = now
		}
		if p.cfg.Board != nil && now.Sub(lastLive) >= p.cfg.LiveEvery {
			p.publishLive(now)
			lastLive = now
		}
	}
}

func (p *Processor) process(fetches kgo.Fetches, now int64) {
	name := p.cfg.Pipeline.Name
	var r event.Reading
	var folded, late, rejected int
	fetches.EachPartition(func(ft kgo.FetchTopicPartition) {
		if len(ft.Records) == 0 {
			return
		}
		p.hwm[ft.Partition] = ft.HighWatermark
		for _, rec := range ft.Records {
			p.next[ft.Partition] = rec.Offset + 1
			if err := p.parser.Parse(rec.Value, &r); err != nil {
				rejected++
				p.produceSide(DLQTopic(p.cfg.Pipeline.Topic), rec, "pulse-error", err.Error())
				continue
			}
			if !p.engine.Add(ft.Partition, &r, now) {
				late++
				p.produceSide(LateTopic(name), rec, "pulse-late-reason", fmt.Sprintf(
					"event time %s is before the watermark %s: its window is already final",
					time.UnixMilli(r.TS).UTC().Format(time.RFC3339Nano), time.UnixMilli(p.engine.Watermark()).UTC().Format(time.RFC3339Nano)))
				continue
			}
			folded++
		}
		p.engine.Touch(ft.Partition, now)
	})
	m := p.cfg.Metrics
	if m == nil {
		return
	}
	m.PipelineEvents.WithLabelValues(name).Add(float64(folded))
	if late > 0 {
		m.LateEvents.WithLabelValues(name).Add(float64(late))
	}
	if rejected > 0 {
		m.PipelineRejected.WithLabelValues(name).Add(float64(rejected))
	}
	var lag int64
	for part, h := range p.hwm {
		if d := h - p.next[part]; d > 0 {
			lag += d
		}
	}
	m.ConsumerLag.WithLabelValues(name).Set(float64(lag))
	m.OpenWindows.WithLabelValues(name).Set(float64(p.engine.OpenWindows()))
	if wm := p.engine.Watermark(); wm != NoWatermark {
		m.Watermark.WithLabelValues(name).Set(float64(wm) / 1000)
	}
}

// produceSide copies a record to a late or dead-letter topic with the
// reason and its origin in headers. Delivery is confirmed at the next
// checkpoint, which flushes the client before committing.
func (p *Processor) produceSide(topic string, rec *kgo.Record, header, reason string) {
	out := &kgo.Record{
		Topic: topic,
		Key:   rec.Key,
		Value: rec.Value,
		Headers: []kgo.RecordHeader{
			{Key: header, Value: []byte(reason)},
			{Key: "pulse-pipeline", Value: []byte(p.cfg.Pipeline.Name)},
			{Key: "pulse-source", Value: []byte(rec.Topic + "/" + strconv.Itoa(int(rec.Partition)) + "/" + strconv.FormatInt(rec.Offset, 10))},
		},
	}
	p.cfg.Client.Produce(context.Background(), out, func(_ *kgo.Record, err error) {
		if err != nil {
			err = fmt.Errorf("write to %s: %w", topic, err)
			p.sideErr.CompareAndSwap(nil, &err)
		}
	})
}

func (p *Processor) checkpoint(ctx context.Context) error {
	start := time.Now()
	// Side records (late, dead letters) must be stored before the offsets
	// that skip past them are committed.
	if err := p.cfg.Client.Flush(ctx); err != nil {
		return fmt.Errorf("flush side topics of %s: %w", p.cfg.Pipeline.Name, err)
	}
	if err := p.sideErr.Load(); err != nil {
		// Not committing keeps the offsets before the records whose copy
		// failed, so a restart sends them again: nothing is lost.
		return fmt.Errorf("pipeline %s: %w", p.cfg.Pipeline.Name, *err)
	}
	state, err := p.engine.Snapshot()
	if err != nil {
		return err
	}
	offsets := make(map[int32]int64, len(p.next))
	for k, v := range p.next {
		offsets[k] = v
	}
	if err := p.cfg.Store.Commit(ctx, p.cfg.Pipeline.Name, p.pending, Checkpoint{Offsets: offsets, State: state}); err != nil {
		return err
	}
	if m := p.cfg.Metrics; m != nil {
		m.WindowResults.WithLabelValues(p.cfg.Pipeline.Name).Add(float64(len(p.pending)))
		m.Checkpoints.WithLabelValues(p.cfg.Pipeline.Name).Observe(time.Since(start).Seconds())
	}
	p.pending = p.pending[:0]
	return nil
}

func (p *Processor) publishLive(now time.Time) {
	wm := p.engine.Watermark()
	for _, o := range p.cfg.Pipeline.Outputs {
		if !p.cfg.Board.Watched(p.cfg.Pipeline.Name, o.Name, now) {
			continue
		}
		p.cfg.Board.Set(p.cfg.Pipeline.Name, o.Name, Live{Watermark: wm, Results: p.engine.Partials(o.Name, nil)})
	}
}

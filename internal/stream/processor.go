package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// Checkpoint is what a pipeline needs to resume: the next offset to read
// per input partition ("topic:partition") and its serialized engine state.
type Checkpoint struct {
	Offsets map[string]int64
	State   []byte
}

func tpKey(topic string, p int32) string { return topic + ":" + strconv.Itoa(int(p)) }

// Store persists results and checkpoints atomically.
type Store interface {
	LoadCheckpoint(ctx context.Context, pipeline string) (Checkpoint, bool, error)
	Commit(ctx context.Context, pipeline string, results []Result, cp Checkpoint) error
}

// Config configures a Processor.
type Config struct {
	Plan *pipeline.Plan
	// Client consumes the pipeline's topic and produces to its late and
	// dead-letter topics. The processor adds its partitions itself.
	Client  *kgo.Client
	Store   Store
	Board   *Board
	Metrics *telemetry.Metrics
	Logger  *slog.Logger

	CheckpointEvery time.Duration
}

// Processor runs one pipeline over every partition of its input topic.
type Processor struct {
	cfg      Config
	engine   *Engine
	decoder  *Decoder
	topicID  map[string]int32 // topic → index, for partition ids
	outTopic map[string]string
	stored   map[string]bool // outputs whose results the store keeps
	ready    atomic.Bool

	sideErr atomic.Pointer[error] // first failed write to a side topic
	epoch   *sync.WaitGroup       // side records of the checkpoint being built

	next    map[string]int64 // next offset to read per topic:partition
	hwm     map[string]int64 // high watermark per topic:partition
	low     map[string]int64 // log start offset per topic:partition
	pids    map[string]int32 // topic:partition → partition id
	pending []Result         // final results not yet committed
	sampled []int64          // ingest times (ms) of sampled records since the last live update
	// inflight receives the outcome of the checkpoint being committed.
	inflight chan error
	// lastPub is when each output's partials were last published;
	// minPartials the shortest emit.partials of a live output (0: none).
	lastPub     []time.Time
	minPartials time.Duration
	nrec        uint64
	rec         Record
}

// NewProcessor returns a processor; Run starts it.
func NewProcessor(cfg Config) *Processor {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = time.Second
	}
	dec := NewDecoder(cfg.Plan)
	p := &Processor{
		cfg:     cfg,
		decoder: dec,
		engine:  NewEngine(cfg.Plan, dec),
		topicID: map[string]int32{},
		epoch:   &sync.WaitGroup{},
		next:    make(map[string]int64),
		hwm:     make(map[string]int64),
		low:     make(map[string]int64),
		pids:    make(map[string]int32),
	}
	for i, t := range cfg.Plan.Source.Topics {
		p.topicID[t] = int32(i)
	}
	p.outTopic, p.stored = map[string]string{}, map[string]bool{}
	p.lastPub = make([]time.Time, len(cfg.Plan.Outputs))
	for _, o := range cfg.Plan.Outputs {
		if o.Live && o.Partials > 0 && (p.minPartials == 0 || o.Partials < p.minPartials) {
			p.minPartials = o.Partials
		}
		p.outTopic[o.Name] = o.Topic
		p.stored[o.Name] = slices.Contains(o.Sinks, "sqlite")
	}
	return p
}

// Ready reports whether the processor has restored its state and consumes.
func (p *Processor) Ready() bool { return p.ready.Load() }

// Run restores the last checkpoint, consumes until ctx ends, then writes a
// final checkpoint so that a restart continues exactly where it stopped.
func (p *Processor) Run(ctx context.Context) error {
	name := p.cfg.Plan.Name
	cp, ok, err := p.cfg.Store.LoadCheckpoint(ctx, name)
	if err != nil {
		return err
	}
	if ok {
		if err := p.engine.Restore(cp.State, time.Now()); err != nil {
			return fmt.Errorf("restore pipeline %s: %w", name, err)
		}
		for tp, off := range cp.Offsets {
			p.next[tp] = off
		}
	}
	assign := map[string]map[int32]kgo.Offset{}
	nparts := 0
	for _, topic := range p.cfg.Plan.Source.Topics {
		parts, err := bus.Partitions(ctx, p.cfg.Client, topic)
		if err != nil {
			return fmt.Errorf("pipeline %s: %w", name, err)
		}
		assign[topic] = map[int32]kgo.Offset{}
		for _, part := range parts {
			p.engine.Assign(p.partID(topic, part), time.Now().UnixMilli())
			p.pids[tpKey(topic, part)] = p.partID(topic, part)
			if off, ok := p.next[tpKey(topic, part)]; ok {
				assign[topic][part] = kgo.NewOffset().At(off)
			} else {
				assign[topic][part] = kgo.NewOffset().AtStart()
			}
			nparts++
		}
	}
	p.cfg.Client.AddConsumePartitions(assign)
	p.cfg.Logger.Info("pipeline started", "pipeline", name, "file", p.cfg.Plan.File, "partitions", nparts, "restored", ok, "open_windows", p.engine.OpenWindows())
	p.ready.Store(true)
	defer p.ready.Store(false)

	lastCP, lastLive, lastEnds := time.Now(), time.Time{}, time.Time{}
	for {
		if time.Since(lastEnds) >= time.Second {
			p.refreshOffsets(ctx)
			lastEnds = time.Now()
		}
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
		p.updateBacklog()
		p.pending = p.engine.Advance(now.UnixMilli(), p.pending)
		if ctx.Err() != nil {
			// Drain: everything fetched is processed; make it durable.
			// (A failed commit must not be followed by a later one: its
			// results would be skipped. The restart replays from the last
			// checkpoint that did commit.)
			if err := p.checkpoint(ctx); err != nil {
				return err
			}
			return p.waitCommit()
		}
		if now.Sub(lastCP) >= p.cfg.CheckpointEvery || len(p.pending) > 50000 {
			if err := p.checkpoint(ctx); err != nil {
				return err
			}
			lastCP = now
		}
		if p.cfg.Board != nil && p.minPartials > 0 && now.Sub(lastLive) >= p.minPartials {
			p.publishLive(now)
			lastLive = now
			if m := p.cfg.Metrics; m != nil {
				h := m.LiveLatency.WithLabelValues(p.cfg.Plan.Name)
				for _, ts := range p.sampled {
					h.Observe(float64(time.Now().UnixMilli()-ts) / 1000)
				}
			}
			p.sampled = p.sampled[:0]
		}
	}
}

func (p *Processor) partID(topic string, part int32) int32 { return p.topicID[topic]<<16 | part }

func (p *Processor) process(fetches kgo.Fetches, now int64) {
	name := p.cfg.Plan.Name
	var folded, late, rejected, filtered int
	fetches.EachPartition(func(ft kgo.FetchTopicPartition) {
		if len(ft.Records) == 0 {
			return
		}
		tp := tpKey(ft.Topic, ft.Partition)
		pid := p.partID(ft.Topic, ft.Partition)
		p.hwm[tp] = ft.HighWatermark
		for _, rec := range ft.Records {
			p.next[tp] = rec.Offset + 1
			if err := p.decoder.Decode(rec.Value, &p.rec); err != nil {
				if errors.Is(err, ErrFiltered) {
					filtered++
					continue
				}
				rejected++
				p.produceSide(pipeline.DLQTopic(ft.Topic), rec, "pulse-error", err.Error(), "")
				continue
			}
			lateMask := p.engine.Add(pid, &p.rec, now)
			if lateMask == 0 {
				folded++
				if p.nrec++; p.nrec%64 == 0 && len(p.sampled) < 1<<16 {
					p.sampled = append(p.sampled, rec.Timestamp.UnixMilli())
				}
				continue
			}
			late++
			for i, o := range p.cfg.Plan.Outputs {
				if lateMask&(1<<i) != 0 {
					p.produceSide(pipeline.LateTopic(name), rec, "pulse-late-reason", fmt.Sprintf(
						"event time %s is behind the watermark %s: its %s windows are final",
						time.UnixMilli(p.rec.TS).UTC().Format(time.RFC3339Nano), time.UnixMilli(p.engine.Watermark()).UTC().Format(time.RFC3339Nano), o.Name), o.Name)
				}
			}
		}
		p.engine.Touch(pid, now)
	})
	m := p.cfg.Metrics
	if m == nil {
		return
	}
	m.PipelineEvents.WithLabelValues(name).Add(float64(folded))
	if filtered > 0 {
		m.PipelineFiltered.WithLabelValues(name).Add(float64(filtered))
	}
	if late > 0 {
		m.LateEvents.WithLabelValues(name).Add(float64(late))
	}
	if rejected > 0 {
		m.PipelineRejected.WithLabelValues(name).Add(float64(rejected))
	}
	var lag int64
	for tp, h := range p.hwm {
		if d := h - p.next[tp]; d > 0 {
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
func (p *Processor) produceSide(topic string, rec *kgo.Record, header, reason, output string) {
	out := &kgo.Record{
		Topic: topic,
		Key:   rec.Key,
		Value: rec.Value,
		Headers: []kgo.RecordHeader{
			{Key: header, Value: []byte(reason)},
			{Key: "pulse-pipeline", Value: []byte(p.cfg.Plan.Name)},
			{Key: "pulse-source", Value: []byte(rec.Topic + "/" + strconv.Itoa(int(rec.Partition)) + "/" + strconv.FormatInt(rec.Offset, 10))},
		},
	}
	if output != "" {
		out.Headers = append(out.Headers, kgo.RecordHeader{Key: "pulse-output", Value: []byte(output)})
	}
	p.cfg.Client.Produce(context.Background(), out, p.sideDone(topic))
}

// publishLive refreshes the live partial results of every live output
// whose emit.partials interval has passed and that someone watches.
func (p *Processor) publishLive(now time.Time) {
	wm := p.engine.Watermark()
	for i, o := range p.cfg.Plan.Outputs {
		if !o.Live || o.Partials <= 0 || now.Sub(p.lastPub[i]) < o.Partials ||
			!p.cfg.Board.Watched(p.cfg.Plan.Name, o.Name, now) {
			continue
		}
		p.lastPub[i] = now
		p.cfg.Board.Set(p.cfg.Plan.Name, o.Name, Live{Watermark: wm, Results: p.engine.Partials(i, nil)})
	}
}

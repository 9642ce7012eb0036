package sink

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/backoff"
	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/ratelog"
	"github.com/pulsehq/pulse/internal/stream"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// FeedConfig configures a Feed.
type FeedConfig struct {
	// Store receives the rows and offsets (a SQLStore: SQLite or
	// PostgreSQL).
	Store Store
	// Plans whose outputs list the sqlite sink are fed.
	Plans []*pipeline.Plan
	// Opts are the Kafka client options: seed brokers and the like.
	Opts    []kgo.Opt
	Metrics *telemetry.Metrics
	// Clients gives the feed's Kafka client its metrics (nil: none).
	Clients *bus.ClientMetrics
	Logger  *slog.Logger
	// Hold, when it reports true, keeps the feed from writing: it waits
	// with what it read until Hold reports false (a disk low on space,
	// see internal/diskguard). Nil never holds.
	Hold func() bool
	// Shared makes the feed share the store with the other Pulse
	// processes that write it (a PostgreSQL database): the Store must be
	// a Claimer (feed_group.go). Without it the feed reads every
	// partition itself.
	Shared bool
	// SessionTimeout is a shared feed's consumer group session timeout
	// (0: franz-go's).
	SessionTimeout time.Duration
}

// Feed fills a store from the result topics. It reads committed records
// only, decodes each with its output's schema and applies it by its kind
// (an insert or update upserts, a delete deletes), and commits the
// offsets it consumed in the same batch as the rows, seeking to them on
// start: every final result is stored exactly once, whatever crashes.
// Unshared, every Pulse process feeds its own store from all partitions,
// so each holds every result; shared (FeedConfig.Shared), the processes
// writing one database split the partitions (feed_group.go).
type Feed struct {
	cfg     FeedConfig
	targets map[string]target // by topic
	ready   atomic.Bool
	lastErr atomic.Pointer[string] // why the last run ended
	// recreated holds the result topics created again after they went
	// missing: their stored offsets point into the old topic. kick makes
	// the running feed start again to read them from the start.
	mu        sync.Mutex
	recreated map[string]bool
	kick      chan struct{}
	// name is the store's database, in metrics and logs: sqlite or
	// postgres.
	name string
	// claims are a shared feed's claims of its partitions (feed_group.go).
	claims    *claims
	claimWarn *ratelog.Logger
	out       *outage // used by Run's goroutine only
	// writers is how many transactions a chunk is stored in at once,
	// each with the partitions it holds (one for SQLite, whose writes
	// are serial).
	writers int
}

// pgWriters is how many transactions at once store a chunk in
// PostgreSQL: the server spreads them over its cores (docs/benchmarks.md,
// "SQL result tables").
const pgWriters = 4

// preparer is a store that makes its tables for the plans' outputs
// before the first batch (SQLStore.Prepare).
type preparer interface {
	Prepare(ctx context.Context, plans []*pipeline.Plan) error
}

// target is an output whose result topic the feed reads.
type target struct {
	pipeline string
	schema   *stream.Schema
	// decs holds a decoder per writer: each used by one goroutine at a
	// time.
	decs []*stream.RecordDecoder
}

// NewFeed returns a feed; Run starts it.
func NewFeed(cfg FeedConfig) *Feed {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	f := &Feed{cfg: cfg, targets: map[string]target{}, recreated: map[string]bool{}, kick: make(chan struct{}, 1), name: "sqlite", writers: 1,
		claimWarn: ratelog.New(cfg.Logger, claimWarnEvery)}
	if d, ok := cfg.Store.(interface{ Dialect() string }); ok {
		f.name = d.Dialect()
	}
	if f.name == "postgres" {
		f.writers = pgWriters
	}
	f.out = &outage{name: f.name, log: cfg.Logger, metrics: cfg.Metrics, now: time.Now}
	for _, p := range cfg.Plans {
		for i := range p.Outputs {
			o := &p.Outputs[i]
			for _, s := range o.Sinks {
				if s == "sqlite" {
					schema := stream.SchemaOf(o)
					tg := target{pipeline: p.Name, schema: schema}
					for range f.writers {
						tg.decs = append(tg.decs, stream.NewRecordDecoder(schema))
					}
					f.targets[o.Topic] = tg
				}
			}
		}
	}
	return f
}

// Health returns nil while the feed consumes, else why not (for
// /readyz).
func (f *Feed) Health(context.Context) error {
	if f.ready.Load() || len(f.targets) == 0 {
		return nil
	}
	if e := f.lastErr.Load(); e != nil {
		return errors.New("starting again; last error: " + *e)
	}
	return errors.New("starting")
}

// TopicRecreated tells the feed that topic was created again after it
// went missing (see bus.Keeper.OnRecreate): the feed forgets its offsets
// in the old topic and reads the new one from its start.
func (f *Feed) TopicRecreated(topic string) {
	if _, ok := f.targets[topic]; !ok {
		return
	}
	f.mu.Lock()
	f.recreated[topic] = true
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Run consumes until ctx ends; what it read is committed when it returns.
// A failure starts it again after a backoff, from the offsets stored with
// the last batch; an outage is logged when it begins and when it ends
// (feed_outage.go).
func (f *Feed) Run(ctx context.Context) error {
	if len(f.targets) == 0 {
		<-ctx.Done()
		return nil
	}
	retry := backoff.Backoff{Min: 500 * time.Millisecond, Max: 10 * time.Second}
	for {
		began := time.Now()
		err := f.run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errRecreated) {
			continue
		}
		msg := err.Error()
		f.lastErr.Store(&msg)
		if time.Since(began) > time.Minute {
			retry.Reset()
		}
		f.out.failed(err)
		if !retry.Wait(ctx) {
			return nil
		}
	}
}

func (f *Feed) run(ctx context.Context) error {
	if p, ok := f.cfg.Store.(preparer); ok {
		if err := p.Prepare(ctx, f.cfg.Plans); err != nil {
			return err
		}
	}
	var topics []string
	for t := range f.targets {
		topics = append(topics, t)
	}
	opts := append(append(append([]kgo.Opt{}, f.cfg.Opts...), f.cfg.Clients.Opts("pulse-sink-"+f.name)...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(32<<20),
	)
	shared := f.cfg.Shared
	if shared {
		claimer, ok := f.cfg.Store.(Claimer)
		if !ok {
			return fmt.Errorf("%s sink: the store cannot be shared by several processes", f.name)
		}
		g, err := f.groupOpts(ctx, claimer, topics)
		if err != nil {
			return err
		}
		opts = append(opts, g...)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("%s sink client: %w", f.name, err)
	}
	defer cl.Close()
	if shared {
		// A poll blocks rebalances until AllowRebalance, and Close
		// waits for them: a run that ends after a poll allows them.
		defer cl.AllowRebalance()
	} else if err := f.assign(ctx, cl, topics); err != nil {
		return err
	}
	f.out.ok()
	f.ready.Store(true)
	defer f.ready.Store(false)
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-f.kick:
			stop()
		case <-pctx.Done():
		}
	}()
	for {
		fetches := cl.PollRecords(pctx, 20000)
		if ctx.Err() != nil {
			return nil
		}
		if pctx.Err() != nil {
			return errRecreated
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("read %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		if err := f.storeAll(ctx, fetches.Records()); err != nil {
			return err
		}
		if shared {
			cl.AllowRebalance()
		}
	}
}

// storeAll stores the records of one poll, in paced chunks, each with
// its own offsets (store).
func (f *Feed) storeAll(ctx context.Context, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	f.hold(ctx)
	return f.store(ctx, recs)
}

// assign assigns an unshared feed every partition of topics, from the
// offsets the store holds (or the start of a topic created again).
func (f *Feed) assign(ctx context.Context, cl *kgo.Client, topics []string) error {
	offsets, err := f.cfg.Store.Offsets(ctx)
	if err != nil {
		return err
	}
	td, err := kadm.NewClient(cl).ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("describe result topics: %w", err)
	}
	f.mu.Lock()
	fresh := f.recreated
	f.recreated = map[string]bool{}
	f.mu.Unlock()
	restart := map[TopicPartition]int64{} // the recreated topics' partitions start over
	assign := map[string]map[int32]kgo.Offset{}
	for _, t := range topics {
		d, ok := td[t]
		if !ok || d.Err != nil {
			return fmt.Errorf("describe result topic %s: %v", t, d.Err)
		}
		assign[t] = map[int32]kgo.Offset{}
		for _, p := range d.Partitions.Numbers() {
			if fresh[t] {
				restart[TopicPartition{t, p}] = 0
				assign[t][p] = kgo.NewOffset().AtStart()
			} else if next, ok := offsets[TopicPartition{t, p}]; ok {
				assign[t][p] = kgo.NewOffset().At(next)
			} else {
				assign[t][p] = kgo.NewOffset().AtStart()
			}
		}
	}
	if len(restart) > 0 {
		if err := Commit(ctx, f.cfg.Store, nil, restart); err != nil {
			f.mu.Lock()
			maps.Copy(f.recreated, fresh)
			f.mu.Unlock()
			return fmt.Errorf("forget the offsets of recreated result topics: %w", err)
		}
		f.cfg.Logger.Warn("result topics were created again: reading them from the start", "topics", len(fresh))
	}
	cl.AddConsumePartitions(assign)
	return nil
}

// hold waits while Hold reports true, or until ctx ends.
func (f *Feed) hold(ctx context.Context) {
	for f.cfg.Hold != nil && f.cfg.Hold() && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// errRecreated ends a run of the feed to read recreated topics afresh.
var errRecreated = errors.New("result topics were created again")

// feedChunk is how many result records one transaction stores at most
// (of writers at once): 1,000 for SQLite, whose transactions hold the
// process's one writer; 5,000 for PostgreSQL, where bigger COPYs and
// fewer commits stored 74,000 → 92,000 rows/s on average in
// BenchmarkFeedPostgres (docs/benchmarks.md).
const (
	feedChunk   = 1000
	pgFeedChunk = 5000
)

// store writes the results of recs and their offsets, each by its kind:
// an insert or update upserts its row, a delete deletes it. The
// partitions are spread over the writers (one for SQLite, whose writes
// are serial; several for PostgreSQL, whose server spreads them over its
// cores), which work at once, each storing its records in chunks of
// feedChunk: a transaction holds a chunk's rows and the offsets of its
// records, so each commits exactly once on its own, and a crash between
// chunks loses nothing. The commits are not cut short by shutdown: what
// was read is stored, or nothing is.
func (f *Feed) store(ctx context.Context, recs []*kgo.Record) error {
	parts := make([][]*kgo.Record, f.writers)
	for _, rec := range recs {
		i := slot(TopicPartition{rec.Topic, rec.Partition}, len(parts))
		parts[i] = append(parts[i], rec)
	}
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, part := range parts {
		if len(part) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.write(ctx, i, part)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// write stores one writer's records in chunks. Once a minute every
// window of a busy output fires at once: tens of thousands of results.
// Each chunk is followed by a pause as long as it kept this process's
// CPU busy (all of the chunk for SQLite, which runs in the process; the
// decoding for PostgreSQL, whose server does the rest), so that the feed
// takes at most about half of it and the pipeline stages sharing the
// machine keep their latency.
func (f *Feed) write(ctx context.Context, i int, recs []*kgo.Record) error {
	chunk := feedChunk
	if f.name == "postgres" {
		chunk = pgFeedChunk
	}
	for len(recs) > 0 {
		n := min(len(recs), chunk)
		began := time.Now()
		g, err := f.decode(recs[:n], i)
		if err != nil {
			return err
		}
		busy := time.Since(began)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err = CommitFenced(cctx, f.cfg.Store, g.writes, g.offsets, g.epochs)
		cancel()
		if err != nil {
			return err
		}
		f.count(&g)
		if f.name != "postgres" {
			busy = time.Since(began)
		}
		if recs = recs[n:]; len(recs) > 0 && ctx.Err() == nil {
			select {
			case <-ctx.Done(): // the rest is stored at once
			case <-time.After(busy):
			}
		}
	}
	return nil
}

// decode reads recs with the decoders of writer i. A shared feed fences
// the batch with its claims of the records' partitions.
func (f *Feed) decode(recs []*kgo.Record, i int) (feedGroup, error) {
	g := feedGroup{offsets: map[TopicPartition]int64{}}
	for _, rec := range recs {
		tp := TopicPartition{rec.Topic, rec.Partition}
		g.offsets[tp] = rec.Offset + 1
		if f.claims != nil {
			e, ok := f.claims.epoch(tp)
			if !ok {
				return g, fmt.Errorf("%w (%s/%d was not claimed by this process)", ErrFenced, tp.Topic, tp.Partition)
			}
			if g.epochs == nil {
				g.epochs = map[TopicPartition]int64{}
			}
			g.epochs[tp] = e
		}
		tg := f.targets[rec.Topic]
		r, err := tg.decs[i].Decode(rec.Key, rec.Value, kindOf(rec))
		if err != nil {
			g.malformed++
			f.cfg.Logger.Warn("result record skipped", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
			continue
		}
		g.writes = append(g.writes, Write{Pipeline: tg.pipeline, Schema: tg.schema, Result: r})
		if r.Deleted() {
			g.del++
		} else {
			g.up++
		}
	}
	return g, nil
}

// feedGroup is what one transaction stores.
type feedGroup struct {
	writes             []Write
	offsets            map[TopicPartition]int64
	epochs             map[TopicPartition]int64 // a shared feed's claims of them
	up, del, malformed int
}

// slot spreads partitions over n transactions.
func slot(tp TopicPartition, n int) int {
	h := fnv.New32a()
	h.Write([]byte(tp.Topic))
	return int((h.Sum32() + uint32(tp.Partition)) % uint32(n))
}

// count adds a committed group to the metrics.
func (f *Feed) count(g *feedGroup) {
	m := f.cfg.Metrics
	if m == nil {
		return
	}
	m.SinkRows.WithLabelValues(f.name, "upserted").Add(float64(g.up))
	m.SinkRows.WithLabelValues(f.name, "retracted").Add(float64(g.del))
	if g.malformed > 0 {
		m.SinkRows.WithLabelValues(f.name, "malformed").Add(float64(g.malformed))
	}
}

// kindOf returns the value of rec's kind header, nil without one.
func kindOf(rec *kgo.Record) []byte {
	for _, h := range rec.Headers {
		if h.Key == stream.KindHeader {
			return h.Value
		}
	}
	return nil
}

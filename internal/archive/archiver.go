package archive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/backoff"
	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/ratelog"
)

// Roll bounds a roll of one partition: it is published once it holds
// Rows events, Bytes bytes of record values, files for Files hours, or
// is Age old, whichever comes first.
type Roll struct {
	Rows  int
	Bytes int64
	Files int
	Age   time.Duration
}

// DefaultRoll is the roll bound unless configured.
var DefaultRoll = Roll{Rows: 1_000_000, Bytes: 256 << 20, Files: 8, Age: 5 * time.Minute}

// Config configures an Archiver.
type Config struct {
	// Sources are the streams to archive.
	Sources []Source
	// Kafka are the client options reaching the cluster (seed brokers).
	Kafka []kgo.Opt
	// Store is where the files go.
	Store Store
	Roll  Roll
	// RowGroupRows is the most rows of a row group (default 122,880,
	// DuckDB's own).
	RowGroupRows int
	// Compression is zstd (the default) or snappy.
	Compression string
	// Hold, when it reports true, pauses archiving (the data disk is low).
	Hold       func() bool
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Tick is the longest a poll waits for records before the rolls'
	// age is checked (default 1 s).
	Tick time.Duration
	// Clients gives the workers' Kafka clients their metrics (nil: none).
	Clients *bus.ClientMetrics
	// Workers is the number of goroutines archiving, each the partitions
	// p with p % Workers == its number, with a Kafka client of its own
	// (default 1).
	Workers int
}

// errAhead is an archive that holds offsets its topic does not have.
var errAhead = errors.New("the archive is ahead of its topic")

// stream is one archived stream in a session.
type stream struct {
	Source
	codec codec
	m     streamMetrics
	rolls map[int32]*roll
}

func (s *stream) skipped(a *Archiver, rec *kgo.Record, err error) {
	s.m.skipped.Inc()
	msg := "record not archived: it is not a valid event of its stream (the pipelines send it to the dead-letter topic)"
	if s.Schema == SchemaResult {
		msg = "record not archived: it is not a result of its output (the sinks skip it too)"
	}
	a.rlog.Warn("skip "+s.Stream, msg, "stream", s.Stream, "partition", rec.Partition, "offset", rec.Offset, "reason", err)
}

// Archiver copies the streams' topics into Parquet files. See the
// package documentation for how it archives every event exactly once.
type Archiver struct {
	cfg   Config
	store Store
	wopts writerOptions
	log   *slog.Logger
	rlog  *ratelog.Logger
	m     *metrics
	now   func() time.Time

	mu      sync.Mutex
	failing int // workers failing
}

// worker archives one share of the partitions.
type worker struct {
	a       *Archiver
	id, n   int
	retry   backoff.Backoff
	failing bool
}

// New returns an Archiver; it registers its metrics with cfg.Registerer.
func New(cfg Config) (*Archiver, error) {
	if cfg.Store == nil {
		return nil, errors.New("archive: no store")
	}
	codec, err := Codec(cfg.Compression)
	if err != nil {
		return nil, fmt.Errorf("--archive-compression: %w", err)
	}
	for _, src := range cfg.Sources {
		if _, err := newCodec(src); err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
	}
	def := DefaultRoll
	cfg.Roll = Roll{Rows: cmp.Or(cfg.Roll.Rows, def.Rows), Bytes: cmp.Or(cfg.Roll.Bytes, def.Bytes),
		Files: cmp.Or(cfg.Roll.Files, def.Files), Age: cmp.Or(cfg.Roll.Age, def.Age)}
	cfg.RowGroupRows = cmp.Or(cfg.RowGroupRows, 122_880)
	cfg.Tick = cmp.Or(cfg.Tick, time.Second)
	cfg.Workers = max(cfg.Workers, 1)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("archive metrics: %w", err)
	}
	return &Archiver{cfg: cfg, store: cfg.Store, wopts: writerOptions{codec: codec, rowGroupRows: cfg.RowGroupRows},
		log: cfg.Logger, rlog: ratelog.New(cfg.Logger, time.Minute), m: m, now: time.Now}, nil
}

// Run archives until ctx ends, then publishes what it holds. An error of
// the store or of Kafka stops archiving: it logs once, sets
// pulse_archive_failing, and tries again from the files published.
func (a *Archiver) Run(ctx context.Context) error {
	// Before any worker writes: what is in the spool was left by a
	// process that stopped while writing.
	_ = backoff.Retry(ctx, &backoff.Backoff{Min: time.Second, Max: 30 * time.Second}, func(context.Context) error {
		n, err := cleanSpool(a.store.SpoolDir())
		if n > 0 {
			a.log.Info("removed unfinished archive files of an earlier run", "files", n, "dir", a.store.SpoolDir())
		}
		return err
	}, func(err error, _ time.Duration) {
		a.rlog.Error("archive", "cannot clean the archive spool; retrying", "err", err)
	})
	var wg sync.WaitGroup
	for i := range a.cfg.Workers {
		w := &worker{a: a, id: i, n: a.cfg.Workers, retry: backoff.Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second}}
		wg.Go(func() {
			_ = backoff.Retry(ctx, &w.retry, w.session, w.failed)
		})
	}
	wg.Wait()
	return nil
}

// failed notes a failed session.
func (w *worker) failed(err error, wait time.Duration) {
	a := w.a
	a.m.errors.Inc()
	if !w.failing {
		w.failing = true
		a.mu.Lock()
		a.failing++
		a.m.failing.Set(1)
		a.mu.Unlock()
	}
	a.rlog.Error("archive", "archiving stopped; retrying from the last published file (the events wait in Kafka)",
		"store", a.store.String(), "err", err, "next_try_in", wait.Round(time.Millisecond))
}

// published notes a published roll.
func (w *worker) published() {
	w.retry.Reset()
	if !w.failing {
		return
	}
	w.failing = false
	a := w.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failing--; a.failing == 0 {
		a.m.failing.Set(0)
		a.rlog.Resolved("archive")
		a.log.Info("archiving works again", "store", a.store.String())
	}
}

// session archives from the files published until ctx ends (nil) or a
// write fails (the error); the caller starts a new session then.
func (w *worker) session(ctx context.Context) (err error) {
	a := w.a
	if s3, ok := a.store.(*S3Store); ok {
		if err := s3.checkBucket(ctx); err != nil {
			return err
		}
	}
	streams, offsets, err := w.resume(ctx)
	if err != nil {
		return err
	}
	opts := append(append([]kgo.Opt{
		kgo.ConsumePartitions(offsets),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(32 << 20),
	}, a.cfg.Kafka...), a.cfg.Clients.Opts(fmt.Sprintf("pulse-archive-%d", w.id))...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("archive Kafka client: %w", err)
	}
	defer cl.Close()
	defer func() {
		if err != nil {
			for _, s := range streams {
				for _, r := range s.rolls {
					r.discard()
				}
			}
		}
	}()
	byTopic := map[string]*stream{}
	for _, s := range streams {
		byTopic[s.Topic] = s
	}
	for ctx.Err() == nil {
		if a.cfg.Hold != nil && a.cfg.Hold() {
			select {
			case <-ctx.Done():
			case <-time.After(a.cfg.Tick):
			}
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, a.cfg.Tick)
		fetches := cl.PollRecords(pctx, 20_000)
		cancel()
		fetches.EachError(func(topic string, p int32, ferr error) {
			if !errors.Is(ferr, context.DeadlineExceeded) && !errors.Is(ferr, context.Canceled) {
				a.rlog.Warn("fetch "+topic, "archive cannot read a partition; retrying", "topic", topic, "partition", p, "err", ferr)
			}
		})
		touched := map[*roll]bool{}
		for it := fetches.RecordIter(); !it.Done(); {
			rec := it.Next()
			s := byTopic[rec.Topic]
			r := s.rolls[rec.Partition]
			if r == nil {
				continue // a partition added since the session started: the next one reads it
			}
			if r.end >= 0 && rec.Offset >= r.end {
				r.next = r.end // the log holds nothing more below end (control records)
				if err := a.complete(ctx, r); err != nil {
					return err
				}
			}
			if err := a.add(r, rec); err != nil {
				return err
			}
			touched[r] = true
			if (r.end >= 0 && r.next >= r.end) || (r.end < 0 && a.full(r)) {
				if err := a.complete(ctx, r); err != nil {
					return err
				}
			}
		}
		for r := range touched {
			if err := a.flush(r); err != nil {
				return err
			}
		}
		now := a.now()
		for _, s := range streams {
			for _, r := range s.rolls {
				if a.due(r, now) {
					if err := a.complete(ctx, r); err != nil {
						return err
					}
				}
			}
		}
	}
	// Drain: publish what was read, with a bounded time of its own.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 8*time.Second)
	defer cancel()
	for _, s := range streams {
		for _, r := range s.rolls {
			if r.end >= 0 && r.next < r.end {
				r.discard() // the last roll written again, not read to its end: the next start does it
				continue
			}
			if err := a.complete(dctx, r); err != nil {
				a.log.Warn("archive could not publish its last files before stopping; the next start writes them", "err", err)
				for _, s := range streams {
					for _, r := range s.rolls {
						r.discard()
					}
				}
				return nil
			}
		}
	}
	return nil
}

// complete flushes and publishes r.
func (a *Archiver) complete(ctx context.Context, r *roll) error {
	if err := a.flush(r); err != nil {
		return err
	}
	return a.publish(ctx, r)
}

// resume derives from the published files where every partition
// continues: at the start of its last roll, which it writes again, up to
// the roll's end (see the package documentation).
func (w *worker) resume(ctx context.Context) ([]*stream, map[string]map[int32]kgo.Offset, error) {
	a := w.a
	topics := make([]string, 0, len(a.cfg.Sources))
	for _, src := range a.cfg.Sources {
		topics = append(topics, src.Topic)
	}
	cl, err := kgo.NewClient(a.cfg.Kafka...)
	if err != nil {
		return nil, nil, fmt.Errorf("archive Kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("describe topics to archive: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets of topics to archive: %w", err)
	}
	offsets := map[string]map[int32]kgo.Offset{}
	var streams []*stream
	for _, src := range a.cfg.Sources {
		d, ok := td[src.Topic]
		if !ok || d.Err != nil {
			return nil, nil, fmt.Errorf("describe topic %s to archive: %v", src.Topic, d.Err)
		}
		last, err := a.lastRolls(ctx, src.Stream)
		if err != nil {
			return nil, nil, err
		}
		c, _ := newCodec(src)
		s := &stream{Source: src, codec: c, m: a.m.stream(src.Stream), rolls: map[int32]*roll{}}
		offsets[src.Topic] = map[int32]kgo.Offset{}
		for _, p := range d.Partitions.Numbers() {
			if int(p)%w.n != w.id {
				continue // another worker's
			}
			r := &roll{w: w, src: s, part: p, from: -1, next: -1, end: -1, files: map[int64]*fileWriter{}}
			if lr, ok := last[p]; ok {
				end, ok := ends.Lookup(src.Topic, p)
				if !ok || end.Err != nil {
					return nil, nil, fmt.Errorf("end offset of %s partition %d: %v", src.Topic, p, end.Err)
				}
				if end.Offset < lr.To {
					return nil, nil, fmt.Errorf("partition %d of topic %s ends at offset %d, but the archive holds its offsets up to %d "+
						"(was the topic deleted and created again?): move stream=%s out of the archive to archive the new topic from its start: %w",
						p, src.Topic, end.Offset, lr.To-1, src.Stream, errAhead)
				}
				r.from, r.next, r.end = lr.From, lr.From, lr.To
				offsets[src.Topic][p] = kgo.NewOffset().At(lr.From)
			} else {
				offsets[src.Topic][p] = kgo.NewOffset().AtStart()
			}
			s.rolls[p] = r
		}
		streams = append(streams, s)
	}
	return streams, offsets, nil
}

// lastRolls returns, per partition, the range of the last roll
// published (the greatest end offset).
func (a *Archiver) lastRolls(ctx context.Context, streamName string) (map[int32]Part, error) {
	names, err := a.store.List(ctx, "stream="+streamName+"/")
	if err != nil {
		return nil, err
	}
	last := map[int32]Part{}
	for _, n := range names {
		p, err := ParsePart(n)
		if err != nil || p.Stream != streamName {
			continue // not an archive file (a user's file, a temporary one)
		}
		if l, ok := last[p.Partition]; !ok || p.To > l.To {
			last[p.Partition] = p
		}
	}
	return last, nil
}

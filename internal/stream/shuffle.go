package stream

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/pipeline"
)

// Shuffler is a pipeline's first stage, one member of the consumer group
// "pulse.<pipeline>.shuffle": it reads its share of the source partitions,
// decodes, filters and derives, and writes every event to the repartition
// topic of each output, partitioned by the output's group key, with the
// watermark markers of its partitions. Outputs, dead letters and the
// consumed offsets commit in one transaction.
type Shuffler struct {
	cfg        StageConfig
	dec        *Decoder
	topicID    map[string]int32
	groupSlots [][]int
	repart     []string
	nparts     []int32
	dlqParts   map[string]int32
	layout     uint32
	asg        assignment
	prog       *progress

	wm   Watermarks
	own  map[int32]string // owned source partition id → "topic:partition"
	next map[string]int64 // next offset per topic:partition, this transaction on
	hwm  map[string]int64
	low  map[string]int64
	rec  Record
	fail atomic.Pointer[error] // first failed produce of the transaction
	// counts are the transaction's events, counted once it commits.
	counts shuffleCounts
	// lastMarks is what the last marker said, per source partition.
	lastMarks map[int32]mark
	lastEnds  time.Time // when refreshOffsets last ran
	buf       []byte
	ev        []byte     // the event being framed
	nrec      uint64     // events accepted, for sampling latency
	sampled   []int64    // ingest times of the sampled events of this transaction
	batches   [][][]byte // per output and repartition partition, the record being filled
	// free holds batch buffers whose records were written, for reuse.
	free chan []byte
	// statusAt is when the board last had the partitions' status (ms).
	statusAt int64
}

// NewShuffler returns the shuffle stage of cfg.Plan; Run starts it.
func NewShuffler(cfg StageConfig) *Shuffler {
	cfg.defaults(10 * time.Millisecond)
	plan := cfg.Plan
	s := &Shuffler{cfg: cfg, dec: NewDecoder(plan), topicID: map[string]int32{}, dlqParts: map[string]int32{}, free: make(chan []byte, 64),
		prog: newProgress(cfg.StallTimeout)}
	s.dec.SetMaxFuture(cfg.MaxFuture)
	s.layout = layoutOf(s.dec)
	for i, t := range plan.Source.Topics {
		s.topicID[t] = int32(i)
	}
	for i, o := range plan.Outputs {
		s.groupSlots = append(s.groupSlots, s.dec.groupSlots(&plan.Outputs[i]))
		s.repart = append(s.repart, RepartitionTopic(plan, o.Name))
	}
	s.reset(0)
	return s
}

// Health returns nil while the stage runs and commits what it reads
// within StageConfig.StallTimeout, else why not: for /readyz.
func (s *Shuffler) Health(ctx context.Context) error { return s.prog.health(ctx) }

func (s *Shuffler) partID(topic string, part int32) int32 { return s.topicID[topic]<<16 | part }

// reset forgets what the transaction in progress did; the session rewinds
// to the committed offsets.
func (s *Shuffler) reset(now int64) {
	s.wm = Watermarks{Disorder: 0, IdleTimeout: s.cfg.Plan.Time.IdleTimeout.Milliseconds(), Horizon: IdleHorizon(s.cfg.Plan), Clock: true}
	for pid := range s.own {
		s.wm.Assign(pid, now)
	}
	s.next = map[string]int64{}
	s.lastMarks = nil
	if s.hwm == nil {
		s.hwm, s.low, s.own = map[string]int64{}, map[string]int64{}, map[int32]string{}
	}
}

// Run consumes until ctx ends, then commits the transaction in progress.
// A failed session is closed and started again.
func (s *Shuffler) Run(ctx context.Context) error {
	l := &taskLoop{cfg: &s.cfg, name: "shuffle", topics: s.cfg.Plan.Source.Topics, asg: &s.asg, prog: s.prog,
		fail: &s.fail, abortNote: "its records are read again", st: s,
		opts: []kgo.Opt{kgo.KeepControlRecords()}}
	return l.run(ctx)
}

// The Shuffler's hooks of the task loop.

func (s *Shuffler) open(ctx context.Context, cl *kgo.Client) error {
	plan := s.cfg.Plan
	var err error
	if s.nparts, err = partitionCounts(ctx, cl, s.repart); err != nil {
		return err
	}
	s.batches = make([][][]byte, len(s.repart))
	for i, n := range s.nparts {
		s.batches[i] = make([][]byte, n)
	}
	for _, t := range plan.Source.Topics {
		n, err := partitionCounts(ctx, cl, []string{pipeline.DLQTopic(t)})
		if err != nil {
			return err
		}
		s.dlqParts[pipeline.DLQTopic(t)] = n[0]
	}
	s.reset(time.Now().UnixMilli())
	return nil
}

// tick: markers of partitions that turned idle are due without records.
func (s *Shuffler) tick() time.Duration                                     { return s.cfg.CommitEvery }
func (s *Shuffler) pollWait(time.Time) time.Duration                        { return 0 }
func (s *Shuffler) prepare(context.Context, *kgo.Client, kgo.Fetches) error { return nil }
func (s *Shuffler) polled(time.Time)                                        {}
func (s *Shuffler) drop()                                                   {}
func (s *Shuffler) began()                                                  { s.counts = shuffleCounts{} }
func (s *Shuffler) sync(parts map[string][]int32, now time.Time) {
	s.syncAssignment(parts, now.UnixMilli())
}
func (s *Shuffler) process(ctx context.Context, sess *kgo.GroupTransactSession, f kgo.Fetches) error {
	s.processFetches(ctx, sess, f, time.Now().UnixMilli())
	return nil
}

// finish refreshes the source partitions' offsets once a second, and
// writes the watermark markers that are due.
func (s *Shuffler) finish(ctx context.Context, sess *kgo.GroupTransactSession, inTxn bool, begin func() error) error {
	now := time.Now()
	if now.Sub(s.lastEnds) >= time.Second {
		s.refreshOffsets(ctx, sess.Client())
		s.lastEnds = now
	}
	if marks := s.marksDue(now.UnixMilli(), inTxn); marks != nil && (inTxn || !s.cfg.held()) {
		if err := begin(); err != nil {
			return err
		}
		s.writeMarkers(ctx, sess, marks)
	}
	s.holdIdle(now.UnixMilli())
	s.publishStatus(now.UnixMilli())
	return nil
}

func (s *Shuffler) committed(context.Context, *kgo.Client) {
	s.counts.publish(&s.cfg)
	done := time.Now().UnixMilli()
	for _, ingest := range s.sampled {
		s.cfg.observeLatency("shuffle_committed", done, ingest)
	}
	s.sampled = s.sampled[:0]
}

// aborted forgets what the transaction did; the session rewinds to the
// committed offsets.
func (s *Shuffler) aborted() {
	s.reset(time.Now().UnixMilli())
	s.sampled = s.sampled[:0]
}

// syncAssignment follows the group's partition assignment.
func (s *Shuffler) syncAssignment(parts map[string][]int32, now int64) {
	own := map[int32]string{}
	for t, ps := range parts {
		for _, p := range ps {
			pid := s.partID(t, p)
			own[pid] = tpKey(t, p)
			if _, had := s.own[pid]; !had {
				s.wm.Assign(pid, now)
			}
		}
	}
	for pid, tp := range s.own {
		if _, keep := own[pid]; !keep {
			s.wm.Unassign(pid)
			delete(s.next, tp)
		}
	}
	s.own = own
	s.cfg.Logger.Info("source partitions assigned", "pipeline", s.cfg.Plan.Name, "partitions", len(own))
}

func (s *Shuffler) produced(r *kgo.Record, err error) {
	if err != nil {
		err = writeFailed(r, err)
		s.fail.CompareAndSwap(nil, &err)
	}
}

func (s *Shuffler) processFetches(ctx context.Context, sess *kgo.GroupTransactSession, fetches kgo.Fetches, now int64) {
	// Records of a transaction are written even when shutdown began: the
	// last transaction commits what was processed.
	pctx := context.WithoutCancel(ctx)
	var accepted, filtered, rejected int
	s.dec.SetClock(time.UnixMilli(now))
	fetches.EachPartition(func(ft kgo.FetchTopicPartition) {
		if len(ft.Records) == 0 {
			return
		}
		tp := tpKey(ft.Topic, ft.Partition)
		pid := s.partID(ft.Topic, ft.Partition)
		s.hwm[tp] = ft.HighWatermark
		s.next[tp] = ft.Records[len(ft.Records)-1].Offset + 1
		for _, rec := range ft.Records {
			if rec.Attrs.IsControl() {
				// A transaction's end marker (the stage keeps them): it
				// counts in the next offset, so that a source written
				// in transactions (another pipeline's output) shows no
				// backlog once its last record was read, and goes idle.
				continue
			}
			kind, err := s.decode(rec)
			if err != nil {
				if errors.Is(err, ErrFiltered) {
					// Every event read advances its partition's event
					// time, filtered or not: a filter that drops most
					// events must not freeze the watermark.
					filtered++
					s.wm.Observe(pid, s.rec.TS, now)
					continue
				}
				rejected++
				dlq := pipeline.DLQTopic(ft.Topic)
				sess.Produce(pctx, &kgo.Record{
					Topic: dlq, Partition: partitionFor(rec.Key, s.dlqParts[dlq]), Key: rec.Key, Value: rec.Value,
					Headers: []kgo.RecordHeader{
						{Key: "pulse-error", Value: []byte(err.Error())},
						{Key: "pulse-pipeline", Value: []byte(s.cfg.Plan.Name)},
						{Key: "pulse-source", Value: []byte(sourceOf(rec))},
					},
				}, s.produced)
				continue
			}
			accepted++
			ingest := rec.Timestamp.UnixMilli()
			if s.nrec++; s.nrec%64 == 0 && len(s.sampled) < 1<<16 {
				s.sampled = append(s.sampled, ingest)
				s.cfg.observeLatency("shuffle_polled", now, ingest)
			}
			s.wm.Observe(pid, s.rec.TS, now)
			s.ev = appendEvent(s.ev[:0], srcEvent{pid: pid, offset: rec.Offset, ingest: ingest, kind: kind}, &s.rec)
			for i := range s.repart {
				s.buf = appendGroupText(s.buf[:0], s.groupSlots[i], &s.rec)
				p := partitionFor(s.buf, s.nparts[i])
				b := &s.batches[i][p]
				if len(*b) == 0 {
					*b = appendBatchHeader(s.newBuf(), s.layout)
				}
				*b = appendFramed(*b, s.ev)
				if len(*b) >= maxBatchBytes {
					s.writeBatch(pctx, sess, i, p)
				}
			}
		}
		s.wm.Touch(pid, now)
	})
	for i := range s.batches {
		for p := range s.batches[i] {
			if len(s.batches[i][p]) > 0 {
				s.writeBatch(pctx, sess, i, int32(p))
			}
		}
	}
	s.counts.accepted += accepted
	s.counts.filtered += filtered
	s.counts.rejected += rejected
}

// decode decodes a source record into s.rec and returns its kind.
func (s *Shuffler) decode(rec *kgo.Record) (RecordKind, error) {
	return decodeSource(s.dec, &s.cfg.Plan.Source, rec, &s.rec)
}

// decodeSource decodes a record of src into r and returns its kind. A
// topic's records are inserts; another pipeline's output says in a header
// whether a record inserts, updates or deletes its row, and a delete is a
// tombstone whose key names the row.
func decodeSource(dec *Decoder, src *pipeline.Source, rec *kgo.Record, r *Record) (RecordKind, error) {
	if src.Pipeline == "" {
		return KindInsert, dec.Decode(rec.Value, r)
	}
	kind := KindInsert
	for _, h := range rec.Headers {
		if h.Key == KindHeader {
			var err error
			if kind, err = ParseKind(h.Value); err != nil {
				return 0, err
			}
		}
	}
	if rec.Value == nil || kind == KindDelete {
		return KindDelete, dec.DecodeDelete(rec.Key, r)
	}
	return kind, dec.Decode(rec.Value, r)
}

// shuffleCounts counts the events of a transaction, for the metrics once
// it commits: the events of an aborted one are read and counted again.
type shuffleCounts struct{ accepted, filtered, rejected int }

// publish adds what a committed transaction did to the metrics.
func (c shuffleCounts) publish(cfg *StageConfig) {
	m := cfg.Metrics
	if m == nil {
		return
	}
	name := cfg.Plan.Name
	m.PipelineEvents.WithLabelValues(name).Add(float64(c.accepted))
	if c.filtered > 0 {
		m.PipelineFiltered.WithLabelValues(name).Add(float64(c.filtered))
	}
	if c.rejected > 0 {
		m.PipelineRejected.WithLabelValues(name).Add(float64(c.rejected))
	}
}

// writeBatch writes the batch of output i's repartition partition p and
// empties it.
func (s *Shuffler) writeBatch(ctx context.Context, sess *kgo.GroupTransactSession, i int, p int32) {
	sess.Produce(ctx, &kgo.Record{Topic: s.repart[i], Partition: p, Value: s.batches[i][p]}, s.producedBatch)
	s.batches[i][p] = nil
}

// newBuf returns an empty batch buffer, reused when one is free.
func (s *Shuffler) newBuf() []byte {
	select {
	case b := <-s.free:
		return b
	default:
		return make([]byte, 0, 16<<10)
	}
}

// producedBatch is the promise of a batch record: the client is done with
// its value, which the next batch reuses.
func (s *Shuffler) producedBatch(r *kgo.Record, err error) {
	s.produced(r, err)
	if cap(r.Value) <= 2*maxBatchBytes {
		select {
		case s.free <- r.Value[:0]:
		default:
		}
	}
}

// marksDue returns the watermark of every owned source partition when a
// marker is due: always in a transaction that carries events (their
// partitions' highest event times moved), otherwise only when a
// partition's state changed since the last marker (it turned idle).
func (s *Shuffler) marksDue(now int64, events bool) []mark {
	if len(s.own) == 0 {
		return nil
	}
	marks := make([]mark, 0, len(s.own))
	changed := events || len(s.lastMarks) != len(s.own)
	for pid := range s.own {
		ts, seen, idle := s.wm.Max(pid, now)
		m := mark{pid: pid, maxTS: ts, seen: seen, idle: idle}
		marks = append(marks, m)
		if s.lastMarks[pid] != m {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return marks
}

// writeMarkers writes marks to every partition of every repartition topic.
func (s *Shuffler) writeMarkers(ctx context.Context, sess *kgo.GroupTransactSession, marks []mark) {
	// Records of a transaction are written even when shutdown began: the
	// last transaction commits what was processed.
	pctx := context.WithoutCancel(ctx)
	val := appendMarker(nil, marks)
	for i, topic := range s.repart {
		for p := range s.nparts[i] {
			sess.Produce(pctx, &kgo.Record{Topic: topic, Partition: p, Value: val}, s.produced)
		}
	}
	s.lastMarks = make(map[int32]mark, len(marks))
	for _, m := range marks {
		s.lastMarks[m.pid] = m
	}
}

// refreshOffsets reads the start and end offsets of the owned source
// partitions, so that a partition whose records wait counts as having a
// backlog (and is never idle) however long it has been silent.
func (s *Shuffler) refreshOffsets(ctx context.Context, cl *kgo.Client) {
	adm := kadm.NewClient(cl)
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	topics := s.cfg.Plan.Source.Topics
	ends, err := adm.ListEndOffsets(lctx, topics...)
	if err != nil {
		return // the next fetch or refresh updates them
	}
	starts, err := adm.ListStartOffsets(lctx, topics...)
	if err != nil {
		return
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > s.hwm[tpKey(o.Topic, o.Partition)] {
			s.hwm[tpKey(o.Topic, o.Partition)] = o.Offset
		}
	})
	starts.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			s.low[tpKey(o.Topic, o.Partition)] = o.Offset
		}
	})
	committed := cl.CommittedOffsets()
	var lag, unread int64
	for pid, tp := range s.own {
		next, ok := s.next[tp]
		if !ok {
			t, p := s.cfg.Plan.Source.Topics[pid>>16], pid&0xffff
			if eo, ok := committed[t][p]; ok {
				next = eo.Offset
			}
		}
		next = max(next, s.low[tp])
		s.wm.SetBacklog(pid, s.hwm[tp] > next)
		lag += max(s.hwm[tp]-next, 0)
		if s.hwm[tp]-next > 1 { // one offset may be a transaction's end marker
			unread += s.hwm[tp] - next
		}
	}
	s.prog.behind(unread)
	s.cfg.setGauge(gaugeLag, float64(lag), true)
}

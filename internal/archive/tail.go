package archive

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The tail of a stream is what its topic holds past the archive: per
// partition, the records from the greatest TO of the partition's files
// (0 when it has none) up to the topic's last stable offset. A history
// read covers the files first, then the tail, so a range that ended a
// moment ago is complete although its events are in no published file
// yet.
//
// The last roll of a partition may be published in part (a crash or a
// fault between two of its files, or a read during its publication):
// its files are published in hour order, so the hours missing are those
// after the last hour with a file. A read whose range reaches past that
// hour reads the roll's offsets again from Kafka and keeps only the
// events of the later hours (RollRest): exact whether the roll is whole
// or not.

// ArchivedEnd is where the archive of one partition ends: its last roll
// (the greatest TO) holds [From, To), with files up to the hour starting
// at LastHour (Unix milliseconds).
type ArchivedEnd struct {
	From, To, LastHour int64
}

// ArchivedEnds returns, from a listing of the archive (names relative to
// its root), the archived end of every partition of stream. Partitions
// without a file are absent.
func ArchivedEnds(names []string, stream string) map[int32]ArchivedEnd {
	ends := map[int32]ArchivedEnd{}
	for _, n := range names {
		p, err := ParsePart(n)
		if err != nil || p.Stream != stream {
			continue // not an archive file of the stream
		}
		h := p.Hour.UnixMilli()
		e, ok := ends[p.Partition]
		switch {
		case !ok || p.To > e.To:
			ends[p.Partition] = ArchivedEnd{From: p.From, To: p.To, LastHour: h}
		case p.To == e.To && h > e.LastHour:
			e.LastHour = h
			ends[p.Partition] = e
		}
	}
	return ends
}

// InLastRoll reports whether the file p is of the last roll of e and of
// an hour after e.LastHour: published after the listing that gave e, its
// events are read from Kafka (see TailStart).
func (e ArchivedEnd) InLastRoll(p Part) bool {
	return p.From == e.From && p.To == e.To && p.Hour.UnixMilli() > e.LastHour
}

// RollRest is the part of a partition's last roll a tail read takes
// from Kafka: of the offsets below To, only the events with an event time
// of at least MinTime (the hours after the roll's last file). The zero
// RollRest takes nothing extra.
type RollRest struct{ To, MinTime int64 }

// TailStart returns where the tail of a partition with archived end e
// (ok: it has files) starts for a read of event times before to: at the
// end of its last roll, or at its start with the rest of it when to
// reaches past the roll's last hour with a file.
func TailStart(e ArchivedEnd, ok bool, to int64) (int64, RollRest) {
	switch {
	case !ok:
		return 0, RollRest{}
	case to > e.LastHour+3600_000:
		return e.From, RollRest{To: e.To, MinTime: e.LastHour + 3600_000}
	}
	return e.To, RollRest{}
}

// TailPosition is where a tail read stands: Next[p] is the next offset of
// partition p to read. A partition beyond len(Next) starts at the start
// of its log.
type TailPosition struct{ Next []int64 }

// Clone returns a copy of p that later reads do not change.
func (p TailPosition) Clone() TailPosition { return TailPosition{Next: slices.Clone(p.Next)} }

// TailQuery selects the tail's events with an event time in [From, To)
// (Unix milliseconds), reading each partition from Start.
type TailQuery struct {
	From, To int64
	Start    TailPosition
	// Rest, by partition, is the part of the last roll read again (see
	// RollRest); a partition beyond len(Rest) has none.
	Rest []RollRest
	// MaxRecords bounds the records read (valid or not, control records
	// included); the read stops there with a position before the ends.
	MaxRecords int64
}

// TailStats counts what a tail read did.
type TailStats struct {
	Records int64 // records read from Kafka, control records included
	Skipped int64 // records that are no valid event of the stream
	Rows    int64 // rows with an event time in the query's range
}

// TailDefaults: the most records one read takes from Kafka unless told,
// and the longest it waits.
const (
	TailMaxRecords = 1_000_000
	TailTimeout    = 30 * time.Second
)

// tailBatch is the most matching records turned into rows at once.
const tailBatch = 4096

// Tail reads the tail of one stream's topic, read_committed, up to the
// last stable offsets listed when it was opened. It holds a Kafka client:
// open one per request and Close it.
type Tail struct {
	src     Source
	cl      *kgo.Client
	codec   codec
	starts  []int64 // the log start offsets, by partition
	ends    []int64 // the last stable offsets, by partition
	timeout time.Duration
}

// OpenTail connects to the cluster of kafka and lists the log start and
// last stable offsets of every partition of src's topic. Its error says
// what could not be reached.
func OpenTail(ctx context.Context, kafka []kgo.Opt, src Source, timeout time.Duration) (*Tail, error) {
	c, err := newCodec(src)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	opts := append([]kgo.Opt{
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// A partition whose last offsets are a transaction marker then
		// still reaches its end: the marker comes back and is skipped.
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(16 << 20),
		kgo.ClientID("pulse-history"),
	}, kafka...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client for the tail of %s: %w", src.Topic, err)
	}
	t := &Tail{src: src, cl: cl, codec: c, timeout: cmp.Or(timeout, TailTimeout)}
	adm := kadm.NewClient(cl)
	lso, err := adm.ListCommittedOffsets(ctx, src.Topic)
	if err == nil {
		t.ends, err = offsetsOf(lso, src.Topic)
	}
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("list the last stable offsets of topic %s: %w", src.Topic, err)
	}
	logStart, err := adm.ListStartOffsets(ctx, src.Topic)
	if err == nil {
		t.starts, err = offsetsOf(logStart, src.Topic)
	}
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("list the start offsets of topic %s: %w", src.Topic, err)
	}
	if len(t.starts) != len(t.ends) {
		cl.Close()
		return nil, fmt.Errorf("topic %s: %d partitions listed, then %d (was it changed meanwhile? try again)", src.Topic, len(t.ends), len(t.starts))
	}
	return t, nil
}

// offsetsOf returns the offsets of topic's partitions 0 to n-1.
func offsetsOf(l kadm.ListedOffsets, topic string) ([]int64, error) {
	ps := l[topic]
	if len(ps) == 0 {
		return nil, fmt.Errorf("topic %s does not exist", topic)
	}
	out := make([]int64, len(ps))
	for p, o := range ps {
		if o.Err != nil {
			return nil, fmt.Errorf("partition %d: %w", p, o.Err)
		}
		if p < 0 || int(p) >= len(ps) {
			return nil, fmt.Errorf("partition %d of %d: the partitions are not numbered 0 to %d", p, len(ps), len(ps)-1)
		}
		out[p] = o.Offset
	}
	return out, nil
}

// Close closes the Kafka client.
func (t *Tail) Close() { t.cl.Close() }

// Partitions returns the number of partitions of the topic.
func (t *Tail) Partitions() int { return len(t.ends) }

// Ends returns the last stable offset of each partition, as listed when
// the tail was opened.
func (t *Tail) Ends() []int64 { return slices.Clone(t.ends) }

// Done reports whether pos is at the end of every partition.
func (t *Tail) Done(pos TailPosition) bool {
	for p, end := range t.ends {
		if p >= len(pos.Next) || pos.Next[p] < end {
			return false
		}
	}
	return true
}

// Read calls fn for every event of the tail with an event time in
// [q.From, q.To), partition by partition in order, each in offset order,
// with the row as the archive would hold it (the schema and types of the
// stream's files; records that are no valid event are skipped as the
// archiver skips them) and the position just after it. The row and the
// position are only valid during the call. fn returning ErrStop ends the
// read without an error. Read returns where it ended: at every
// partition's end, or before when it read q.MaxRecords records. An error
// (the request's context, the read's deadline) says where it stopped and
// why; the rows before it were given to fn.
func (t *Tail) Read(ctx context.Context, q TailQuery, st *TailStats, fn func(s *parquet.Schema, row parquet.Row, at *TailPosition) error) (TailPosition, error) {
	pos := TailPosition{Next: make([]int64, len(t.ends))}
	for p := range pos.Next {
		var s int64
		if p < len(q.Start.Next) {
			s = q.Start.Next[p]
		}
		// Records Kafka deleted (retention) cannot be read; a start past
		// the end (an archive ahead of a topic created again) reads nothing.
		pos.Next[p] = max(s, t.starts[p])
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	budget := cmp.Or(q.MaxRecords, TailMaxRecords)
	b := &tailBatcher{t: t, q: q, fn: fn, pos: &pos}
	for p := range pos.Next {
		if pos.Next[p] >= t.ends[p] {
			continue
		}
		if budget <= 0 {
			return pos, nil
		}
		n, err := b.partition(ctx, int32(p), budget, st)
		budget -= n
		if errors.Is(err, ErrStop) {
			return pos, nil
		}
		if err != nil {
			return pos, err
		}
	}
	return pos, nil
}

// tailBatcher turns the matching records of one partition into rows, a
// batch at a time, through the codec's own writer and an in-memory
// Parquet file.
type tailBatcher struct {
	t    *Tail
	q    TailQuery
	fn   func(*parquet.Schema, parquet.Row, *TailPosition) error
	pos  *TailPosition
	buf  bytes.Buffer
	w    rowWriter
	offs []int64 // the offsets of the batch's rows
	recs []*kgo.Record
	rows []parquet.Row
}

// partition reads partition p from pos.Next[p] to its end or budget
// records, and returns how many it read.
func (b *tailBatcher) partition(ctx context.Context, p int32, budget int64, st *TailStats) (int64, error) {
	t, topic := b.t, b.t.src.Topic
	end := t.ends[p]
	t.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(b.pos.Next[p])}})
	defer t.cl.RemoveConsumePartitions(map[string][]int32{topic: {p}})
	next := b.pos.Next[p] // after the last record read
	var read int64
	var fetchErr error
	for next < end && read < budget {
		fetches := t.cl.PollRecords(ctx, int(min(budget-read, 10_000)))
		if err := ctx.Err(); err != nil {
			if ferr := b.flush(p, next); ferr != nil {
				return read, ferr
			}
			if fetchErr != nil {
				err = fmt.Errorf("%w (the last fetch error: %v)", err, fetchErr)
			}
			return read, fmt.Errorf("read partition %d of topic %s: stopped at offset %d of %d: %w", p, topic, next, end, err)
		}
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				fetchErr = err
			}
		})
		for it := fetches.RecordIter(); !it.Done(); {
			rec := it.Next()
			if rec.Topic != topic || rec.Partition != p || rec.Offset < next || rec.Offset >= end || read >= budget {
				continue // before the start, past the end (later pages read it), or past the bound
			}
			read++
			st.Records++
			next = rec.Offset + 1
			if rec.Attrs.IsControl() {
				continue
			}
			ms, err := t.codec.parse(rec)
			if err != nil {
				st.Skipped++
				continue
			}
			if ms < b.q.From || ms >= b.q.To || int(p) < len(b.q.Rest) && rec.Offset < b.q.Rest[p].To && ms < b.q.Rest[p].MinTime {
				continue // out of range, or in a published file of the last roll
			}
			st.Rows++
			b.add(rec)
			if len(b.offs) == tailBatch {
				if err := b.flush(p, next); err != nil {
					return read, err
				}
			}
		}
		if err := b.flush(p, next); err != nil {
			return read, err
		}
	}
	return read, nil
}

// add adds the row of rec, the record the codec parsed last.
func (b *tailBatcher) add(rec *kgo.Record) {
	if b.w == nil {
		b.buf.Reset()
		b.w = b.t.codec.newWriter(&b.buf, parquet.Compression(&parquet.Uncompressed), parquet.MaxRowsPerRowGroup(tailBatch))
	}
	b.w.add()
	b.offs = append(b.offs, rec.Offset)
	b.recs = append(b.recs, rec) // the writer's rows point into the record until written
}

// flush gives the batch's rows to fn, each with the position after it,
// then leaves pos.Next[p] at next (the records read after the last row
// had no matching event).
func (b *tailBatcher) flush(p int32, next int64) error {
	if b.w == nil {
		b.pos.Next[p] = next
		return nil
	}
	w := b.w
	b.w = nil
	defer func() { clear(b.recs); b.recs, b.offs = b.recs[:0], b.offs[:0] }()
	if _, err := w.flush(); err != nil {
		return fmt.Errorf("encode the tail of %s: %w", b.t.src.Topic, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("encode the tail of %s: %w", b.t.src.Topic, err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(b.buf.Bytes()), int64(b.buf.Len()))
	if err != nil {
		return fmt.Errorf("decode the tail of %s: %w", b.t.src.Topic, err)
	}
	schema := f.Schema()
	if b.rows == nil {
		b.rows = make([]parquet.Row, 256)
	}
	i := 0
	for _, rg := range f.RowGroups() {
		if err := b.rowGroup(rg, schema, p, &i); err != nil {
			return err
		}
	}
	if i != len(b.offs) {
		return fmt.Errorf("decode the tail of %s: %d rows of %d came back", b.t.src.Topic, i, len(b.offs))
	}
	b.pos.Next[p] = next
	return nil
}

func (b *tailBatcher) rowGroup(rg parquet.RowGroup, schema *parquet.Schema, p int32, i *int) error {
	rr := rg.Rows()
	defer rr.Close()
	for {
		k, err := rr.ReadRows(b.rows)
		for _, row := range b.rows[:k] {
			if *i >= len(b.offs) {
				return fmt.Errorf("decode the tail of %s: more rows than records", b.t.src.Topic)
			}
			b.pos.Next[p] = b.offs[*i] + 1
			*i++
			if err := b.fn(schema, row, b.pos); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("decode the tail of %s: %w", b.t.src.Topic, err)
		}
	}
}

package sink

import (
	"context"
	"errors"

	"github.com/pulsehq/pulse/internal/stream"
)

// The store contract. A result store keeps the final results of outputs
// as rows identified by (pipeline, output, group key, window start or
// time), and the offsets of the result topics it has read up to, changed
// together in one transaction, so that a feed that seeks to the stored
// offsets on start stores every result exactly once whatever crashes.
// SQLStore implements it in SQLite and PostgreSQL.

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// OffsetReader reads where a feed resumes.
type OffsetReader interface {
	// Offsets returns the next offset to read of every partition the
	// store has read from.
	Offsets(ctx context.Context) (map[TopicPartition]int64, error)
}

// Appender collects the changes of one batch; nothing is visible to
// queries until Commit, which applies them all with the offsets, or
// none. After Commit or Rollback the appender is spent. An Appender is
// not safe for concurrent use.
type Appender interface {
	// Upsert stores r (a final: an insert or an update) as the row of
	// its identity, replacing the row there.
	Upsert(pipeline string, s *stream.Schema, r *stream.Result) error
	// Delete removes the row of r's identity, if there is one; only the
	// identity of r is read.
	Delete(pipeline string, s *stream.Schema, r *stream.Result) error
	// SetOffset records next as the offset to resume tp from.
	SetOffset(tp TopicPartition, next int64)
	// Fence makes Commit write tp's offset only while tp is still claimed
	// with epoch (Claimer): if another writer claimed it since, Commit
	// fails with ErrFenced and writes nothing.
	Fence(tp TopicPartition, epoch int64)
	// Commit applies the batch in the order it was given.
	Commit() error
	// Rollback discards the batch.
	Rollback() error
}

// Appendable starts batches. ctx bounds the batch's Commit.
type Appendable interface {
	Appender(ctx context.Context) Appender
}

// Store is what a feed writes to.
type Store interface {
	OffsetReader
	Appendable
}

// ErrFenced is the error of a Commit whose claim on a partition another
// writer has taken since (Claimer): the batch wrote nothing.
var ErrFenced = errors.New("another process claimed a result partition of this batch since (it took the partition over in a rebalance): the batch was not written")

// A Claimer is a store that several processes may write at once, each
// the partitions its consumer group gave it. A partition's writer claims
// it first, and its batches commit only while no other writer has
// claimed it since: a writer that was paused (SIGSTOP, a long GC, a
// network partition) past its group session cannot overwrite the rows of
// the writer that took its partitions over.
type Claimer interface {
	// Instance identifies the database: processes that write the same
	// database share one consumer group named after it.
	Instance(ctx context.Context) (string, error)
	// Claim makes the caller the writer of tps. It returns the offset to
	// resume each from (absent: none stored) and the epoch of each claim,
	// for Appender.Fence.
	Claim(ctx context.Context, tps []TopicPartition) (offsets, epochs map[TopicPartition]int64, err error)
}

// Querier answers the results API.
type Querier interface {
	// Query returns the stored (final) results that q selects, in the
	// order of output, window start (or time) and key. Live partials are
	// not stored: the stream.Board holds them.
	Query(ctx context.Context, q Query) ([]Row, error)
}

// Query selects stored results.
type Query struct {
	Pipeline string
	// Outputs are the outputs to read, each by its schema, which decodes
	// its rows. None reads nothing.
	Outputs []*stream.Schema
	Key     []string // nil: every key; else the group values
	// From and To bound the window start (or time), half-open [From,
	// To), in ms. Zero means unbounded.
	From, To int64
	// After, when set, skips the rows up to and including that position
	// in the query's order: the next page after a row's Cursor.
	After *Cursor
	Limit int // 0: 100,000
}

// Row is one stored result, typed by its output's schema.
type Row struct {
	stream.Result
	Schema *stream.Schema
}

// Apply writes r to a by its kind: a delete deletes, anything else
// upserts.
func Apply(a Appender, pipeline string, s *stream.Schema, r *stream.Result) error {
	if r.Deleted() {
		return a.Delete(pipeline, s, r)
	}
	return a.Upsert(pipeline, s, r)
}

// Write is one change to stored results, for Commit.
type Write struct {
	Pipeline string
	Schema   *stream.Schema
	Result   stream.Result
}

// WritesOf returns the writes of results of one output.
func WritesOf(pipeline string, s *stream.Schema, results ...stream.Result) []Write {
	out := make([]Write, len(results))
	for i, r := range results {
		out[i] = Write{Pipeline: pipeline, Schema: s, Result: r}
	}
	return out
}

// Commit applies writes and offsets to st as one batch.
func Commit(ctx context.Context, st Appendable, writes []Write, offsets map[TopicPartition]int64) error {
	return CommitFenced(ctx, st, writes, offsets, nil)
}

// CommitFenced is Commit with the offset of each partition in epochs
// written only while its claim still holds that epoch (Appender.Fence).
func CommitFenced(ctx context.Context, st Appendable, writes []Write, offsets, epochs map[TopicPartition]int64) error {
	a := st.Appender(ctx)
	for tp, e := range epochs {
		a.Fence(tp, e)
	}
	for i := range writes {
		w := &writes[i]
		if err := Apply(a, w.Pipeline, w.Schema, &w.Result); err != nil {
			return errors.Join(err, a.Rollback())
		}
	}
	for tp, next := range offsets {
		a.SetOffset(tp, next)
	}
	return a.Commit()
}

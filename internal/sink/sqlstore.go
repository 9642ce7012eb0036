package sink

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/stream"
)

// SQLStore is a result store in a SQL database, SQLite or PostgreSQL
// (OpenSQLite, OpenPostgres): one typed table per output (tables.go),
// the offsets the rows came from in pulse_offsets, changed in one
// transaction. It implements Store and Querier and is safe for
// concurrent use.
type SQLStore struct {
	d    dialect
	c    conn
	sink string // the sink column of pulse_offsets
	// copyUpserts writes upserts by COPY into a staging table and a
	// merge from it, where the database can (see postgres.go).
	copyUpserts bool
	log         *slog.Logger
	// noLegacy is set once the database has no results of Pulse
	// before typed tables left (legacy.go).
	noLegacy atomic.Bool

	mu       sync.Mutex
	loaded   bool
	tables   map[outputID]*table // the current version of each output's table
	names    map[string]outputID // every table in the catalog
	versions map[outputID]int    // the highest version of each output's table
}

type outputID struct{ pipeline, output string }

// offsetsSink is the sink column of the rows the result store's feed
// writes in pulse_offsets.
const offsetsSink = "results"

func newSQLStore(d dialect, c conn) *SQLStore {
	return &SQLStore{d: d, c: c, sink: offsetsSink, log: slog.Default(),
		tables: map[outputID]*table{}, names: map[string]outputID{}, versions: map[outputID]int{}}
}

// Dialect names the database: "sqlite" or "postgres".
func (s *SQLStore) Dialect() string { return s.d.name() }

// Close closes the database.
func (s *SQLStore) Close() error { return s.c.close() }

// Offsets returns the next offset to read of every result partition the
// store has read from.
func (s *SQLStore) Offsets(ctx context.Context) (map[TopicPartition]int64, error) {
	rs, err := s.c.query(ctx, `SELECT topic, partition, next FROM pulse_offsets WHERE next >= 0 AND sink = `+s.d.param(1, ""), s.sink)
	if err != nil {
		return nil, fmt.Errorf("load sink offsets: %w", err)
	}
	defer rs.Close()
	out := map[TopicPartition]int64{}
	for rs.Next() {
		var tp TopicPartition
		var next int64
		if err := rs.Scan(&tp.Topic, &tp.Partition, &next); err != nil {
			return nil, fmt.Errorf("read sink offset: %w", err)
		}
		out[tp] = next
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("load sink offsets: %w", err)
	}
	return out, nil
}

// Appender starts a batch. It keeps the changes in memory and writes them
// and the offsets in one transaction on Commit. Rows are upserted by
// their identity (group fields and window start, or time), so writing
// the same final twice leaves one row.
func (s *SQLStore) Appender(ctx context.Context) Appender {
	return &sqlAppender{s: s, ctx: ctx, byOutput: map[outputID]*tableBatch{}, offsets: map[TopicPartition]int64{}}
}

type sqlAppender struct {
	s        *SQLStore
	ctx      context.Context
	batches  []*tableBatch
	byOutput map[outputID]*tableBatch
	offsets  map[TopicPartition]int64
	epochs   map[TopicPartition]int64 // Fence: claims the offsets' writes hold
	spent    bool
	key      []byte
}

// tableBatch holds the changes of one output: the last change of each
// row, as applying them in order leaves it.
type tableBatch struct {
	id     outputID
	schema *stream.Schema
	ops    []rowOp
	at     map[string]int // row identity → index in ops
	dels   int
}

// rowOp is the last change of one row. The result is kept as given (its
// slices are not copied) until Commit encodes it. A fresh row is a
// first final (KindInsert) and the only change of its row in the batch:
// stored exactly once, its row is not in the table yet.
type rowOp struct {
	del, fresh bool
	r          stream.Result
}

var errSpent = errors.New("sql sink: the batch was committed or rolled back already: start another with Appender")

func (a *sqlAppender) add(pipelineName string, s *stream.Schema, r *stream.Result, del bool) error {
	if a.spent {
		return errSpent
	}
	id := outputID{pipelineName, s.Output}
	b := a.byOutput[id]
	if b == nil || b.schema != s {
		if b != nil && signature(b.schema) != signature(s) {
			return fmt.Errorf("output %s/%s is written with two schemas in one batch", pipelineName, s.Output)
		}
		if b == nil {
			b = &tableBatch{id: id, schema: s, at: map[string]int{}}
			a.byOutput[id] = b
			a.batches = append(a.batches, b)
		}
	}
	a.key = strconv.AppendInt(append(append(a.key[:0], event.JoinKey(r.Key)...), 0), r.Start, 10)
	op := rowOp{del: del, r: *r}
	i, ok := b.at[string(a.key)]
	op.fresh = !ok && !del && r.Kind == stream.KindInsert
	if !ok {
		i = len(b.ops)
		b.at[string(a.key)] = i
		b.ops = append(b.ops, rowOp{})
	} else if b.ops[i].del {
		b.dels--
	}
	if del {
		b.dels++
	}
	b.ops[i] = op
	return nil
}

// rowArgs returns the arguments that write r: every column of s in its
// order, or for a delete the identity (group fields and start).
func rowArgs(d dialect, s *stream.Schema, r *stream.Result, del bool) []any {
	groups := len(s.Group())
	n := groups + 1
	if !del {
		n = len(s.Columns)
	}
	args := make([]any, 0, n)
	for i := range groups {
		k := ""
		if i < len(r.Key) {
			k = r.Key[i]
		}
		args = append(args, d.text(k))
	}
	args = append(args, d.timeArg(r.Start))
	if del {
		return args
	}
	if s.Windowed() {
		args = append(args, d.timeArg(r.End))
	}
	for i, c := range s.Values() {
		var v event.Value
		if i < len(r.Values) {
			v = r.Values[i]
		}
		args = append(args, cellArg(d, c.Type, v))
	}
	return args
}

func (a *sqlAppender) Upsert(pipelineName string, s *stream.Schema, r *stream.Result) error {
	return a.add(pipelineName, s, r, false)
}

func (a *sqlAppender) Delete(pipelineName string, s *stream.Schema, r *stream.Result) error {
	return a.add(pipelineName, s, r, true)
}

func (a *sqlAppender) SetOffset(tp TopicPartition, next int64) { a.offsets[tp] = next }

func (a *sqlAppender) Fence(tp TopicPartition, epoch int64) {
	if a.epochs == nil {
		a.epochs = map[TopicPartition]int64{}
	}
	a.epochs[tp] = epoch
}

func (a *sqlAppender) Rollback() error {
	a.spent, a.batches, a.byOutput, a.offsets = true, nil, nil, nil
	return nil
}

// Commit writes the batch in one transaction. The context given to
// Appender bounds it.
func (a *sqlAppender) Commit() error {
	if a.spent {
		return errSpent
	}
	a.spent = true
	ctx, s := a.ctx, a.s
	tables := make([]*table, len(a.batches))
	for i, b := range a.batches {
		t, err := s.ensure(ctx, b.id.pipeline, b.schema)
		if err != nil {
			return err
		}
		tables[i] = t
	}
	err := s.commit(ctx, a, tables, true)
	if errors.Is(err, errNotFresh) {
		// A first final whose row is there already (the result topic
		// read again from its start): the batch again, by merges.
		err = s.commit(ctx, a, tables, false)
	}
	return err
}

// commit writes the batch in one transaction. With direct, first finals
// (fresh rows) are copied into their tables without a conflict check,
// where the database can.
func (s *SQLStore) commit(ctx context.Context, a *sqlAppender, tables []*table, direct bool) error {
	tx, err := s.c.begin(ctx)
	if err != nil {
		return fmt.Errorf("begin sink transaction: %w", err)
	}
	defer tx.rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after commit
	for i, b := range a.batches {
		if err := s.writeBatch(ctx, tx, tables[i], b, direct); err != nil {
			return err
		}
	}
	plain, fenced := a.offsets, map[TopicPartition]int64{}
	if len(a.epochs) > 0 {
		plain = map[TopicPartition]int64{}
		for tp, next := range a.offsets {
			if _, ok := a.epochs[tp]; ok {
				fenced[tp] = next
			} else {
				plain[tp] = next
			}
		}
	}
	if err := s.writeFencedOffsets(ctx, tx, fenced, a.epochs); err != nil {
		return err
	}
	if err := s.writeOffsets(ctx, tx, plain); err != nil {
		return err
	}
	if err := tx.commit(ctx); err != nil {
		return fmt.Errorf("commit sink transaction: %w", err)
	}
	return nil
}

// writeBatch deletes and upserts the rows of one table.
func (s *SQLStore) writeBatch(ctx context.Context, tx txn, t *table, b *tableBatch, direct bool) error {
	if b.dels > 0 {
		dels := make([][]any, 0, b.dels)
		for i := range b.ops {
			if op := &b.ops[i]; op.del {
				dels = append(dels, rowArgs(s.d, b.schema, &op.r, true))
			}
		}
		if err := s.chunks(ctx, tx, t, false, t.ids, dels); err != nil {
			return fmt.Errorf("delete results of %s/%s from %s: %w", b.id.pipeline, b.id.output, t.name, err)
		}
	}
	if len(b.ops) == b.dels {
		return nil
	}
	var err error
	if cp, ok := tx.(copier); ok && s.copyUpserts {
		err = s.copyMerge(ctx, tx, cp, t, b, direct)
	} else {
		ups := make([][]any, 0, len(b.ops)-b.dels)
		for i := range b.ops {
			if op := &b.ops[i]; !op.del {
				ups = append(ups, rowArgs(s.d, b.schema, &op.r, false))
			}
		}
		err = s.chunks(ctx, tx, t, true, len(b.schema.Columns), ups)
	}
	if err != nil {
		return fmt.Errorf("write results of %s/%s to %s: %w", b.id.pipeline, b.id.output, t.name, err)
	}
	return nil
}

// maxRows bounds the rows of one statement.
const maxRows = 512

// chunks runs the multi-row upsert (or delete) of rows in statements of
// at most maxRows rows and the database's arguments; the row counts of
// the statements are powers of two from 16 on, so that few distinct
// statements are prepared.
func (s *SQLStore) chunks(ctx context.Context, tx txn, t *table, upsert bool, width int, rows [][]any) error {
	per := maxRows
	for per > 1 && per*width > s.d.maxParams() {
		per /= 2
	}
	args := make([]any, 0, min(per, len(rows))*width)
	for len(rows) > 0 {
		n := per
		for n > len(rows) && n > 16 {
			n /= 2
		}
		n = min(n, len(rows))
		args = args[:0]
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		if err := tx.exec(ctx, s.statement(t, upsert, n), args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// statement returns t's upsert or delete of n rows.
func (s *SQLStore) statement(t *table, upsert bool, n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := stmtKey{upsert, n}
	if q, ok := t.stmts[k]; ok {
		return q
	}
	if t.stmts == nil {
		t.stmts = map[stmtKey]string{}
	}
	q := s.buildStatement(t, upsert, n)
	t.stmts[k] = q
	return q
}

// buildStatement writes t's upsert (INSERT ... ON CONFLICT DO UPDATE) or
// delete (DELETE ... WHERE identity IN (VALUES ...)) of n rows.
func (s *SQLStore) buildStatement(t *table, upsert bool, n int) string {
	cols := t.write
	if !upsert {
		cols = cols[:t.ids]
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	var b strings.Builder
	if upsert {
		b.WriteString("INSERT INTO " + quote(t.name) + " (" + quoteList(names) + ") VALUES ")
	} else {
		b.WriteString("DELETE FROM " + quote(t.name) + " WHERE (" + quoteList(names) + ") IN (VALUES ")
	}
	p := 1
	for r := range n {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for i, c := range cols {
			if i > 0 {
				b.WriteByte(',')
			}
			cast := ""
			if !upsert {
				cast = castType(s.d, c.Type)
			}
			b.WriteString(s.d.param(p, cast))
			p++
		}
		b.WriteByte(')')
	}
	if !upsert {
		b.WriteByte(')')
		return b.String()
	}
	b.WriteString(" ON CONFLICT (" + quoteList(t.pk) + ") ")
	b.WriteString(upsertSet(t))
	return b.String()
}

// upsertSet is the conflict action of t's upserts: every written column
// outside the key takes the new row's value.
func upsertSet(t *table) string {
	var set []string
	for _, c := range t.write[t.ids:] {
		set = append(set, quote(c.Name)+" = excluded."+quote(c.Name))
	}
	if len(set) == 0 {
		return "DO NOTHING"
	}
	return "DO UPDATE SET " + strings.Join(set, ", ")
}

// writeOffsets upserts the offsets of a batch, in a fixed order.
func (s *SQLStore) writeOffsets(ctx context.Context, tx txn, offsets map[TopicPartition]int64) error {
	if len(offsets) == 0 {
		return nil
	}
	tps := make([]TopicPartition, 0, len(offsets))
	for tp := range offsets {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b TopicPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	at := s.d.timeArg(now().UnixMilli())
	for len(tps) > 0 {
		n := min(len(tps), 1000)
		var b strings.Builder
		b.WriteString("INSERT INTO pulse_offsets (sink, topic, partition, next, updated_at) VALUES ")
		args := make([]any, 0, 5*n)
		for i, tp := range tps[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			p := len(args)
			fmt.Fprintf(&b, "(%s,%s,%s,%s,%s)", s.d.param(p+1, ""), s.d.param(p+2, ""), s.d.param(p+3, ""), s.d.param(p+4, ""), s.d.param(p+5, ""))
			args = append(args, s.sink, tp.Topic, tp.Partition, offsets[tp], at)
		}
		b.WriteString(" ON CONFLICT (sink, topic, partition) DO UPDATE SET next = excluded.next, updated_at = excluded.updated_at")
		if err := tx.exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("write offsets of %d result partitions: %w", n, err)
		}
		tps = tps[n:]
	}
	return nil
}

package sink

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

const schema = `
CREATE TABLE IF NOT EXISTS window_results (
	pipeline     TEXT    NOT NULL,
	output       TEXT    NOT NULL,
	group_by     TEXT    NOT NULL,
	group_key    TEXT    NOT NULL,
	window_start INTEGER NOT NULL,
	window_end   INTEGER NOT NULL,
	aggs         TEXT    NOT NULL,
	updated_at   INTEGER NOT NULL,
	PRIMARY KEY (pipeline, output, window_start, group_key)
);
CREATE INDEX IF NOT EXISTS window_results_by_key
	ON window_results (pipeline, output, group_key, window_start);
CREATE TABLE IF NOT EXISTS sink_offsets (
	topic     TEXT    NOT NULL,
	partition INTEGER NOT NULL,
	next      INTEGER NOT NULL,
	PRIMARY KEY (topic, partition)
);
`

// SQLite is the embedded result store. It keeps each row's identity and
// bounds in columns and its value columns as the JSON object the output's
// schema writes (stream.Schema.AppendStored).
type SQLite struct {
	db *sql.DB
}

// OpenSQLite opens (creating if needed) the database at path.
func OpenSQLite(path string) (*SQLite, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create directory for %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create schema in %s: %w", path, err)
	}
	if err := migrateKeys(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return &SQLite{db: db}, nil
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

// Offsets returns the next offset to read of every result partition the
// store has read from.
func (s *SQLite) Offsets(ctx context.Context) (map[TopicPartition]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT topic, partition, next FROM sink_offsets`)
	if err != nil {
		return nil, fmt.Errorf("load sink offsets: %w", err)
	}
	defer rows.Close()
	out := map[TopicPartition]int64{}
	for rows.Next() {
		var tp TopicPartition
		var next int64
		if err := rows.Scan(&tp.Topic, &tp.Partition, &next); err != nil {
			return nil, fmt.Errorf("read sink offset: %w", err)
		}
		out[tp] = next
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load sink offsets: %w", err)
	}
	return out, nil
}

// Appender starts a batch. It keeps the changes in memory and writes them
// and the offsets in one SQLite transaction on Commit. Results are
// upserted by (pipeline, output, window start, key), so writing the same
// final twice leaves one row.
func (s *SQLite) Appender(ctx context.Context) Appender {
	return &sqliteAppender{s: s, ctx: ctx, offsets: map[TopicPartition]int64{}}
}

type sqliteAppender struct {
	s       *SQLite
	ctx     context.Context
	writes  []sqliteWrite
	offsets map[TopicPartition]int64
	spent   bool
}

// sqliteWrite is one row change; values is nil for a delete.
type sqliteWrite struct {
	pipeline, output, groupBy, key string
	start, end                     int64
	values                         []byte
}

var errSpent = errors.New("sqlite sink: the batch was committed or rolled back already: start another with Appender")

func (a *sqliteAppender) add(pipeline string, s *stream.Schema, r *stream.Result, del bool) error {
	if a.spent {
		return errSpent
	}
	w := sqliteWrite{pipeline: pipeline, output: s.Output, key: event.JoinKey(r.Key), start: r.Start, end: r.End}
	if !del {
		names := make([]string, 0, len(s.Group()))
		for _, c := range s.Group() {
			names = append(names, c.Name)
		}
		w.groupBy = strings.Join(names, ",")
		w.values = s.AppendStored(nil, r)
	}
	a.writes = append(a.writes, w)
	return nil
}

func (a *sqliteAppender) Upsert(pipeline string, s *stream.Schema, r *stream.Result) error {
	return a.add(pipeline, s, r, false)
}

func (a *sqliteAppender) Delete(pipeline string, s *stream.Schema, r *stream.Result) error {
	return a.add(pipeline, s, r, true)
}

func (a *sqliteAppender) SetOffset(tp TopicPartition, next int64) { a.offsets[tp] = next }

func (a *sqliteAppender) Rollback() error {
	a.spent, a.writes, a.offsets = true, nil, nil
	return nil
}

// Commit writes the batch in one transaction. The context given to
// Appender bounds it.
func (a *sqliteAppender) Commit() error {
	if a.spent {
		return errSpent
	}
	a.spent = true
	ctx := a.ctx
	tx, err := a.s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin sink transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	now := time.Now().UnixMilli()
	if len(a.writes) > 0 {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO window_results
			(pipeline, output, group_by, group_key, window_start, window_end, aggs, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (pipeline, output, window_start, group_key) DO UPDATE SET
				window_end = excluded.window_end, aggs = excluded.aggs, updated_at = excluded.updated_at`)
		if err != nil {
			return fmt.Errorf("prepare result upsert: %w", err)
		}
		defer stmt.Close()
		del, err := tx.PrepareContext(ctx, `DELETE FROM window_results
			WHERE pipeline = ? AND output = ? AND window_start = ? AND group_key = ?`)
		if err != nil {
			return fmt.Errorf("prepare result delete: %w", err)
		}
		defer del.Close()
		for i := range a.writes {
			w := &a.writes[i]
			if w.values == nil {
				if _, err := del.ExecContext(ctx, w.pipeline, w.output, w.start, w.key); err != nil {
					return fmt.Errorf("delete result %s/%s/%s: %w", w.pipeline, w.output, w.key, err)
				}
				continue
			}
			if _, err := stmt.ExecContext(ctx, w.pipeline, w.output, w.groupBy, w.key, w.start, w.end, string(w.values), now); err != nil {
				return fmt.Errorf("write result %s/%s/%s: %w", w.pipeline, w.output, w.key, err)
			}
		}
	}
	if len(a.offsets) > 0 {
		up, err := tx.PrepareContext(ctx, `INSERT INTO sink_offsets (topic, partition, next) VALUES (?, ?, ?)
			ON CONFLICT (topic, partition) DO UPDATE SET next = excluded.next`)
		if err != nil {
			return fmt.Errorf("prepare offset upsert: %w", err)
		}
		defer up.Close()
		for tp, next := range a.offsets {
			if _, err := up.ExecContext(ctx, tp.Topic, tp.Partition, next); err != nil {
				return fmt.Errorf("write offset of %s partition %d: %w", tp.Topic, tp.Partition, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit sink transaction: %w", err)
	}
	return nil
}

// Cursor returns the row's position in the query order, for Query.After.
func (r *Row) Cursor() Cursor {
	key := r.groupKey
	if key == "" {
		key = event.JoinKey(r.Key)
	}
	return Cursor{Output: r.Output, Start: r.Start, Key: key}
}

// Query returns the matching results ordered by output, window start and
// key, each decoded by its output's schema.
func (s *SQLite) Query(ctx context.Context, q Query) ([]Row, error) {
	if len(q.Outputs) == 0 {
		return nil, nil
	}
	type reader struct {
		schema *stream.Schema
		dec    *stream.RecordDecoder
	}
	readers := map[string]reader{}
	where := []string{"pipeline = ?", "output IN (?" + strings.Repeat(",?", len(q.Outputs)-1) + ")"}
	args := []any{q.Pipeline}
	for _, o := range q.Outputs {
		args = append(args, o.Output)
		readers[o.Output] = reader{o, stream.NewRecordDecoder(o)}
	}
	if q.Key != nil {
		cond, keyArgs := keyFilter(q.Outputs, q.Key)
		if cond == "" {
			return nil, nil
		}
		where = append(where, cond)
		args = append(args, keyArgs...)
	}
	if c := q.After; c != nil {
		where = append(where, "(output, window_start, group_key) > (?, ?, ?)")
		args = append(args, c.Output, c.Start, c.Key)
	}
	if q.From != 0 {
		where = append(where, "window_start >= ?")
		args = append(args, q.From)
	}
	if q.To != 0 {
		where = append(where, "window_start < ?")
		args = append(args, q.To)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100000
	}
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, `SELECT output, group_by, group_key, window_start, window_end, aggs
		FROM window_results WHERE `+strings.Join(where, " AND ")+`
		ORDER BY output, window_start, group_key LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("query results of %s: %w", q.Pipeline, err)
	}
	defer rows.Close()
	var out []Row
	var values sql.RawBytes
	for rows.Next() {
		var r Row
		var groupBy, key string
		if err := rows.Scan(&r.Output, &groupBy, &key, &r.Start, &r.End, &values); err != nil {
			return nil, fmt.Errorf("read result row: %w", err)
		}
		if groupBy != "" {
			r.GroupBy = strings.Split(groupBy, ",")
			r.Key = splitStoredKey(key, len(r.GroupBy))
		}
		r.groupKey, r.Final = key, true
		rd := readers[r.Output]
		r.Schema = rd.schema
		if err := rd.dec.DecodeStored(values, &r.Result); err != nil {
			return nil, fmt.Errorf("read result %s/%s/%s: %w", q.Pipeline, r.Output, key, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read results of %s: %w", q.Pipeline, err)
	}
	return out, nil
}

// keyFilter returns the condition that selects the rows of outputs whose
// group fields hold key, and its arguments; "" when no output has as
// many group fields. A window output's rows are identified by their
// group fields alone: its group_key is key. An events or detect row's
// identity has one more column after them (event_id, field): its
// group_key begins with key and a separator (event.JoinKey).
func keyFilter(outputs []*stream.Schema, key []string) (string, []any) {
	var conds []string
	var args []any
	for _, o := range outputs {
		switch n := len(o.Group()) - len(key); {
		case n == 0:
			conds = append(conds, "(output = ? AND group_key = ?)")
			args = append(args, o.Output, event.JoinKey(key))
		case n == 1 && o.Kind != pipeline.KindWindow && len(key) == 0:
			conds = append(conds, "output = ?")
			args = append(args, o.Output)
		case n == 1 && o.Kind != pipeline.KindWindow:
			// The keys that begin with prefix sort from it to the
			// prefix with its last byte, the separator, one higher.
			// An events row stored before rows had an event_id has
			// key alone.
			k := event.JoinKey(key)
			prefix := k + string(rune(event.KeySep))
			conds = append(conds, "(output = ? AND (group_key = ? OR (group_key >= ? AND group_key < ?)))")
			args = append(args, o.Output, k, prefix, k+string(rune(event.KeySep+1)))
		}
	}
	if len(conds) == 0 {
		return "", nil
	}
	return "(" + strings.Join(conds, " OR ") + ")", args
}

// splitStoredKey decodes a group_key column of n fields. A row that an
// earlier version stored ambiguously (a field held the separator, and the
// migration could not tell the fields apart) is split into n fields at
// its first separators.
func splitStoredKey(key string, n int) []string {
	if fields, err := event.SplitKey(key, n); err == nil {
		return fields
	}
	fields := strings.SplitN(key, "\x1f", n)
	for len(fields) < n {
		fields = append(fields, "")
	}
	return fields
}

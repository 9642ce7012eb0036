package sink

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/pulsehq/pulse/internal/event"
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

// SQLite is the embedded result store.
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

// Write is one change a commit makes to the stored results: a final
// result upserted, or withdrawn (Retract) when a session window merged
// into another.
type Write struct {
	Pipeline string
	Row
	Retract bool
}

// WritesOf turns engine results into writes.
func WritesOf(pipeline string, results ...stream.Result) []Write {
	out := make([]Write, len(results))
	for i := range results {
		r := &results[i]
		out[i] = Write{Pipeline: pipeline, Retract: r.Retract,
			Row: Row{Output: r.Output, GroupBy: r.GroupBy, Key: r.Key, Start: r.Start, End: r.End}}
		if !r.Retract {
			out[i].Aggs = stream.AppendValuesJSON(nil, r)
		}
	}
	return out
}

// Offsets returns the next offset to read of every result partition the
// store has read from, by "topic:partition".
func (s *SQLite) Offsets(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT topic, partition, next FROM sink_offsets`)
	if err != nil {
		return nil, fmt.Errorf("load sink offsets: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var topic string
		var part int32
		var next int64
		if err := rows.Scan(&topic, &part, &next); err != nil {
			return nil, fmt.Errorf("read sink offset: %w", err)
		}
		out[topic+":"+strconv.Itoa(int(part))] = next
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load sink offsets: %w", err)
	}
	return out, nil
}

// Commit applies the writes and records the offsets ("topic:partition" →
// next offset to read) in one transaction. Results are upserted by
// (pipeline, output, window start, key), so writing the same final result
// twice leaves one row.
func (s *SQLite) Commit(ctx context.Context, writes []Write, offsets map[string]int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin sink transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	now := time.Now().UnixMilli()
	if len(writes) > 0 {
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
		for i := range writes {
			w := &writes[i]
			key := event.JoinKey(w.Key)
			if w.Retract {
				if _, err := del.ExecContext(ctx, w.Pipeline, w.Output, w.Start, key); err != nil {
					return fmt.Errorf("withdraw result %s/%s/%s: %w", w.Pipeline, w.Output, key, err)
				}
				continue
			}
			if _, err := stmt.ExecContext(ctx, w.Pipeline, w.Output, strings.Join(w.GroupBy, ","), key, w.Start, w.End, string(w.Aggs), now); err != nil {
				return fmt.Errorf("write result %s/%s/%s: %w", w.Pipeline, w.Output, key, err)
			}
		}
	}
	if len(offsets) > 0 {
		up, err := tx.PrepareContext(ctx, `INSERT INTO sink_offsets (topic, partition, next) VALUES (?, ?, ?)
			ON CONFLICT (topic, partition) DO UPDATE SET next = excluded.next`)
		if err != nil {
			return fmt.Errorf("prepare offset upsert: %w", err)
		}
		defer up.Close()
		for tp, next := range offsets {
			i := strings.LastIndexByte(tp, ':')
			part, err := strconv.Atoi(tp[i+1:])
			if i < 0 || err != nil {
				return fmt.Errorf("offset key %q is not topic:partition", tp)
			}
			if _, err := up.ExecContext(ctx, tp[:i], part, next); err != nil {
				return fmt.Errorf("write offset of %s: %w", tp, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit sink transaction: %w", err)
	}
	return nil
}

// Query selects window results.
type Query struct {
	Pipeline string
	Outputs  []string // empty: every output
	Key      []string // nil: every key; else the group values
	// From and To bound the window start, half-open [From, To), in ms.
	// Zero means unbounded.
	From, To int64
	// After, when set, skips the rows up to and including that position
	// in the query's order: the next page after a row's Cursor.
	After *Cursor
	Limit int // 0: 100,000
}

// Row is one stored window result.
type Row struct {
	Output  string
	GroupBy []string
	Key     []string
	Start   int64
	End     int64
	// Aggs is the JSON object of named aggregates.
	Aggs json.RawMessage
	// groupKey is the stored group_key column, set by Query.
	groupKey string
}

// Cursor returns the row's position in the query order, for Query.After.
func (r *Row) Cursor() Cursor {
	key := r.groupKey
	if key == "" {
		key = event.JoinKey(r.Key)
	}
	return Cursor{Output: r.Output, Start: r.Start, Key: key}
}

// Query returns the matching results ordered by output, window start and key.
func (s *SQLite) Query(ctx context.Context, q Query) ([]Row, error) {
	var where []string
	args := []any{q.Pipeline}
	where = append(where, "pipeline = ?")
	if len(q.Outputs) > 0 {
		where = append(where, "output IN (?"+strings.Repeat(",?", len(q.Outputs)-1)+")")
		for _, o := range q.Outputs {
			args = append(args, o)
		}
	}
	if q.Key != nil {
		where = append(where, "group_key = ?")
		args = append(args, event.JoinKey(q.Key))
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
	for rows.Next() {
		var r Row
		var aggs, groupBy, key string
		if err := rows.Scan(&r.Output, &groupBy, &key, &r.Start, &r.End, &aggs); err != nil {
			return nil, fmt.Errorf("read result row: %w", err)
		}
		if groupBy != "" {
			r.GroupBy = strings.Split(groupBy, ",")
			r.Key = splitStoredKey(key, len(r.GroupBy))
		}
		r.groupKey = key
		r.Aggs = json.RawMessage(aggs)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read results of %s: %w", q.Pipeline, err)
	}
	return out, nil
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

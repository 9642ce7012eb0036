package sink

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

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
CREATE TABLE IF NOT EXISTS checkpoints (
	pipeline   TEXT    PRIMARY KEY,
	offsets    TEXT    NOT NULL,
	state      BLOB,
	updated_at INTEGER NOT NULL
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
	return &SQLite{db: db}, nil
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

// LoadCheckpoint returns the last checkpoint of pipeline, if any.
func (s *SQLite) LoadCheckpoint(ctx context.Context, pipeline string) (stream.Checkpoint, bool, error) {
	var offsets string
	var cp stream.Checkpoint
	err := s.db.QueryRowContext(ctx, `SELECT offsets, state FROM checkpoints WHERE pipeline = ?`, pipeline).Scan(&offsets, &cp.State)
	if err == sql.ErrNoRows {
		return stream.Checkpoint{}, false, nil
	}
	if err != nil {
		return stream.Checkpoint{}, false, fmt.Errorf("load checkpoint of %s: %w", pipeline, err)
	}
	if err := json.Unmarshal([]byte(offsets), &cp.Offsets); err != nil {
		return stream.Checkpoint{}, false, fmt.Errorf("decode checkpoint offsets of %s: %w", pipeline, err)
	}
	return cp, true, nil
}

// Commit writes the results and the checkpoint of pipeline in one
// transaction. Results are upserted by (output, window start, key), so
// writing the same final result twice leaves one row.
func (s *SQLite) Commit(ctx context.Context, pipeline string, results []stream.Result, cp stream.Checkpoint) error {
	offsets, err := json.Marshal(cp.Offsets)
	if err != nil {
		return fmt.Errorf("encode offsets: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin checkpoint of %s: %w", pipeline, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	now := time.Now().UnixMilli()
	if len(results) > 0 {
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
		var buf []byte
		for i := range results {
			r := &results[i]
			key := strings.Join(r.Key, KeySeparator)
			if r.Retract {
				if _, err := del.ExecContext(ctx, pipeline, r.Output, r.Start, key); err != nil {
					return fmt.Errorf("withdraw result %s/%s/%s: %w", pipeline, r.Output, key, err)
				}
				continue
			}
			buf = stream.AppendValuesJSON(buf[:0], r)
			if _, err := stmt.ExecContext(ctx, pipeline, r.Output, strings.Join(r.GroupBy, ","), key, r.Start, r.End, string(buf), now); err != nil {
				return fmt.Errorf("write result %s/%s/%s: %w", pipeline, r.Output, key, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (pipeline, offsets, state, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (pipeline) DO UPDATE SET offsets = excluded.offsets, state = excluded.state, updated_at = excluded.updated_at`,
		pipeline, string(offsets), cp.State, now); err != nil {
		return fmt.Errorf("write checkpoint of %s: %w", pipeline, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit checkpoint of %s: %w", pipeline, err)
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
	Limit    int
}

// KeySeparator joins the values of a multi-field group key in the
// group_key column.
const KeySeparator = "\x1f"

// Row is one stored window result.
type Row struct {
	Output  string
	GroupBy []string
	Key     []string
	Start   int64
	End     int64
	// Aggs is the JSON object of named aggregates.
	Aggs json.RawMessage
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
		args = append(args, strings.Join(q.Key, KeySeparator))
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
			r.Key = strings.Split(key, KeySeparator)
		}
		r.Aggs = json.RawMessage(aggs)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read results of %s: %w", q.Pipeline, err)
	}
	return out, nil
}

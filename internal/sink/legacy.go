package sink

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/stream"
)

// Pulse before typed tables kept every output's rows in one SQLite table,
// window_results (pipeline, output, group_by, group_key, window_start,
// window_end, aggs as JSON, updated_at), and the offsets in sink_offsets.
// Migration 2 renames window_results to pulse_legacy_results and moves
// the offsets into pulse_offsets; Prepare then moves each output's rows
// into its typed table, decoding the JSON with the output's schema.

// legacySchema is the schema of the store before typed tables, for tests
// that make such a database.
const legacySchema = `
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

func legacyResults(ctx context.Context, tx txn, d dialect) error {
	if _, ok := d.(sqliteDialect); !ok {
		return nil
	}
	if ok, err := sqliteHas(ctx, tx, "window_results"); err != nil || !ok {
		return err
	}
	if err := migrateKeys(ctx, tx); err != nil {
		return err
	}
	if err := tx.exec(ctx, `ALTER TABLE window_results RENAME TO pulse_legacy_results`); err != nil {
		return err
	}
	if ok, err := sqliteHas(ctx, tx, "sink_offsets"); err != nil || !ok {
		return err
	}
	if err := tx.exec(ctx, `INSERT INTO pulse_offsets (sink, topic, partition, next, updated_at)
		SELECT ?, topic, partition, next, ? FROM sink_offsets`, offsetsSink, d.timeArg(now().UnixMilli())); err != nil {
		return err
	}
	return tx.exec(ctx, `DROP TABLE sink_offsets`)
}

// sqliteHas reports whether the SQLite database has a table name.
func sqliteHas(ctx context.Context, tx txn, name string) (bool, error) {
	var n int64
	err := scanOne(ctx, tx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, &n, name)
	return n > 0, err
}

// keysVersion is the PRAGMA user_version of a store whose group_key
// column is encoded by event.JoinKey.
const keysVersion = 1

// migrateKeys rewrites the group keys that Pulse before event.JoinKey
// stored unescaped. Only keys whose fields hold the separator or escape
// byte differ; a multi-field key that does not split into its fields was
// ambiguous and stays as it is (splitStoredKey splits it at its first
// separators).
func migrateKeys(ctx context.Context, tx txn) error {
	var version int64
	if err := scanOne(ctx, tx, `PRAGMA user_version`, &version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version >= keysVersion {
		return nil
	}
	rs, err := tx.query(ctx, `SELECT rowid, group_by, group_key FROM window_results
		WHERE instr(group_key, char(30)) > 0 OR instr(group_key, char(31)) > 0`)
	if err != nil {
		return fmt.Errorf("find keys to migrate: %w", err)
	}
	type change struct {
		rowid int64
		key   string
	}
	var changes []change
	for rs.Next() {
		var id int64
		var groupBy, key string
		if err := rs.Scan(&id, &groupBy, &key); err != nil {
			rs.Close()
			return fmt.Errorf("read key to migrate: %w", err)
		}
		n := 0
		if groupBy != "" {
			n = strings.Count(groupBy, ",") + 1
		}
		if fields, ok := event.SplitLegacyKey(key, n); ok {
			if enc := event.JoinKey(fields); enc != key {
				changes = append(changes, change{id, enc})
			}
		}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return fmt.Errorf("find keys to migrate: %w", err)
	}
	for _, c := range changes {
		// OR IGNORE: a row already under the new key is the newer one.
		if err := tx.exec(ctx, `UPDATE OR IGNORE window_results SET group_key = ? WHERE rowid = ?`, c.key, c.rowid); err != nil {
			return fmt.Errorf("migrate key: %w", err)
		}
	}
	return tx.exec(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, keysVersion))
}

// splitStoredKey decodes a group_key of n fields. A key that an earlier
// version stored ambiguously (a field held the separator, and the key
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

// legacyRow is one row of pulse_legacy_results.
type legacyRow struct {
	rowid        int64
	groupBy, key string
	start, end   int64
	values       string
}

// moveLegacy moves the rows of one output from pulse_legacy_results into
// its table t, in one transaction. A row there already is newer and
// stays. Rows whose group fields are not the output's any more stay
// behind (logged); the legacy table goes once it is empty.
func (s *SQLStore) moveLegacy(ctx context.Context, t *table, pipelineName string, sch *stream.Schema) error {
	if _, ok := s.d.(sqliteDialect); !ok || s.noLegacy.Load() {
		return nil
	}
	tx, err := s.c.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after commit
	if ok, err := sqliteHas(ctx, tx, "pulse_legacy_results"); err != nil || !ok {
		if err == nil {
			s.noLegacy.Store(true)
		}
		return err
	}
	var names []string
	for _, c := range sch.Group() {
		names = append(names, c.Name)
	}
	want := strings.Join(names, ",")
	// Events rows stored before rows had an event_id (and detect rows
	// before field) have the group fields alone: the extra one is "".
	short := "\x00"
	if len(names) > 0 && !sch.Windowed() {
		short = strings.Join(names[:len(names)-1], ",")
	}
	dec := stream.NewRecordDecoder(sch)
	ins := insertIgnore(t, sch)
	var after int64
	moved, kept := 0, 0
	for {
		page, err := legacyPage(ctx, tx, pipelineName, sch.Output, after)
		if err != nil {
			return fmt.Errorf("read the old results of %s/%s: %w", pipelineName, sch.Output, err)
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].rowid
		for _, lr := range page {
			r := stream.Result{Output: sch.Output, Start: lr.start, End: lr.end}
			switch lr.groupBy {
			case want:
				r.Key = splitStoredKey(lr.key, len(names))
			case short:
				r.Key = append(splitStoredKey(lr.key, len(names)-1), "")
			default:
				kept++
				continue
			}
			if !sch.Windowed() {
				r.End = r.Start
			}
			if err := dec.DecodeStored([]byte(lr.values), &r); err != nil {
				kept++
				continue
			}
			if err := tx.exec(ctx, ins, rowArgs(s.d, sch, &r, false)...); err != nil {
				return fmt.Errorf("move an old result of %s/%s into %s: %w", pipelineName, sch.Output, t.name, err)
			}
			if err := tx.exec(ctx, `DELETE FROM pulse_legacy_results WHERE rowid = ?`, lr.rowid); err != nil {
				return err
			}
			moved++
		}
	}
	var left int64
	if err := scanOne(ctx, tx, `SELECT COUNT(*) FROM pulse_legacy_results`, &left); err != nil {
		return err
	}
	if left == 0 {
		if err := tx.exec(ctx, `DROP TABLE pulse_legacy_results`); err != nil {
			return err
		}
	}
	if err := tx.commit(ctx); err != nil {
		return err
	}
	if left == 0 {
		s.noLegacy.Store(true)
	}
	if moved > 0 || kept > 0 {
		s.log.Info("moved the results of an earlier Pulse into their typed table", "pipeline", pipelineName, "output", sch.Output,
			"table", t.name, "rows", moved)
	}
	if kept > 0 {
		s.log.Warn("old results left in pulse_legacy_results: their group fields are not the output's any more, or they do not decode",
			"pipeline", pipelineName, "output", sch.Output, "rows", kept)
	}
	return nil
}

// insertIgnore is the insert of one row of sch into t that leaves a row
// already there.
func insertIgnore(t *table, sch *stream.Schema) string {
	names := make([]string, len(sch.Columns))
	for i, c := range sch.Columns {
		names[i] = c.Name
	}
	return "INSERT INTO " + quote(t.name) + " (" + quoteList(names) + ") VALUES (?" + strings.Repeat(", ?", len(names)-1) +
		") ON CONFLICT (" + quoteList(pkColumns(sch)) + ") DO NOTHING"
}

// legacyPage reads the next rows of one output after rowid after.
func legacyPage(ctx context.Context, tx txn, pipelineName, output string, after int64) ([]legacyRow, error) {
	rs, err := tx.query(ctx, `SELECT rowid, group_by, group_key, window_start, window_end, aggs FROM pulse_legacy_results
		WHERE pipeline = ? AND output = ? AND rowid > ? ORDER BY rowid LIMIT 5000`, pipelineName, output, after)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []legacyRow
	for rs.Next() {
		var r legacyRow
		var values sql.RawBytes
		if err := rs.Scan(&r.rowid, &r.groupBy, &r.key, &r.start, &r.end, &values); err != nil {
			return nil, err
		}
		r.values = string(values)
		out = append(out, r)
	}
	return out, rs.Err()
}

package sink

import (
	"context"
	"fmt"
	"strings"

	"github.com/pulsehq/pulse/internal/pipeline"
)

// Versioned migrations of the store's own tables, run on open (and by
// pulse db migrate), each once, in order, in its own transaction with
// its row in pulse_schema_migrations. The output tables themselves are
// made by Prepare from the pipelines' schemas (catalog.go).

// migration is one step of the store's schema.
type migration struct {
	version int
	name    string
	run     func(ctx context.Context, tx txn, d dialect) error
}

var migrations = []migration{
	{1, "catalog pulse_tables and offsets pulse_offsets", createCatalog},
	{2, "window_results of Pulse before typed tables: keys, offsets", legacyResults},
	{3, "claims of result partitions: pulse_offsets.epoch, pulse_instance", createClaims},
}

func createCatalog(ctx context.Context, tx txn, d dialect) error {
	ts := d.columnType(pipeline.TypeTimestamp)
	for _, stmt := range []string{
		`CREATE TABLE pulse_tables (
	table_name TEXT PRIMARY KEY,
	pipeline   TEXT NOT NULL,
	output     TEXT NOT NULL,
	version    INTEGER NOT NULL,
	kind       TEXT NOT NULL,
	columns    TEXT NOT NULL,
	current    INTEGER NOT NULL,
	created_at ` + ts + ` NOT NULL,
	UNIQUE (pipeline, output, version)
)`,
		`CREATE TABLE pulse_offsets (
	sink       TEXT NOT NULL,
	topic      TEXT NOT NULL,
	partition  INTEGER NOT NULL,
	next       BIGINT NOT NULL,
	updated_at ` + ts + ` NOT NULL,
	PRIMARY KEY (sink, topic, partition)
)`,
	} {
		if err := tx.exec(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// Migrate runs the migrations the database lacks. Open runs it; pulse
// db migrate runs it alone.
func (s *SQLStore) migrate(ctx context.Context) error {
	if err := s.execAlone(ctx, `CREATE TABLE IF NOT EXISTS pulse_schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at `+s.d.columnType(pipeline.TypeTimestamp)+` NOT NULL
)`); err != nil {
		return fmt.Errorf("create pulse_schema_migrations: %w", err)
	}
	for _, m := range migrations {
		if err := s.apply(ctx, m); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

// lockedTx begins a transaction that holds the lock of schema changes
// (dialect.lock), so that processes change the schema one at a time.
func (s *SQLStore) lockedTx(ctx context.Context) (txn, error) {
	tx, err := s.c.begin(ctx)
	if err != nil {
		return nil, err
	}
	if l := s.d.lock(); l != "" {
		if err := tx.exec(ctx, l); err != nil {
			tx.rollback(context.WithoutCancel(ctx)) //nolint:errcheck // the lock's error is the one to report
			return nil, err
		}
	}
	return tx, nil
}

// execAlone runs one statement in a transaction of its own, serialized
// with other processes' schema changes.
func (s *SQLStore) execAlone(ctx context.Context, stmt string) error {
	tx, err := s.lockedTx(ctx)
	if err != nil {
		return err
	}
	defer tx.rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after commit
	if err := tx.exec(ctx, stmt); err != nil {
		return err
	}
	return tx.commit(ctx)
}

// apply runs m unless the database has it, and checks that the database
// is not from a newer Pulse.
func (s *SQLStore) apply(ctx context.Context, m migration) error {
	tx, err := s.lockedTx(ctx)
	if err != nil {
		return err
	}
	defer tx.rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after commit
	var latest int64
	if err := scanOne(ctx, tx, `SELECT COALESCE(MAX(version), 0) FROM pulse_schema_migrations`, &latest); err != nil {
		return err
	}
	if known := migrations[len(migrations)-1].version; latest > int64(known) {
		return fmt.Errorf("the database has schema version %d, this Pulse knows versions up to %d: run a newer Pulse", latest, known)
	}
	var n int64
	if err := scanOne(ctx, tx, `SELECT COUNT(*) FROM pulse_schema_migrations WHERE version = `+s.d.param(1, ""), &n, int64(m.version)); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if err := m.run(ctx, tx, s.d); err != nil {
		return err
	}
	if err := tx.exec(ctx, `INSERT INTO pulse_schema_migrations (version, name, applied_at) VALUES (`+
		s.d.param(1, "")+`, `+s.d.param(2, "")+`, `+s.d.param(3, "")+`)`, int64(m.version), m.name, s.d.timeArg(now().UnixMilli())); err != nil {
		return err
	}
	return tx.commit(ctx)
}

// Migrations returns the versions and names of the migrations the
// database has, in order.
func (s *SQLStore) Migrations(ctx context.Context) ([]string, error) {
	rs, err := s.c.query(ctx, `SELECT version, name FROM pulse_schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("read pulse_schema_migrations: %w", err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var v int64
		var name string
		if err := rs.Scan(&v, &name); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("%d %s", v, name))
	}
	return out, rs.Err()
}

// scanOne runs a query of one row and scans it into dest.
func scanOne(ctx context.Context, tx txn, q string, dest any, args ...any) error {
	rs, err := tx.query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	if !rs.Next() {
		if err := rs.Err(); err != nil {
			return err
		}
		return fmt.Errorf("%s: no row", strings.Fields(q)[0])
	}
	if err := rs.Scan(dest); err != nil {
		return err
	}
	return rs.Err()
}

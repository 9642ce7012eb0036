package sink

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pulsehq/pulse/internal/pgtest"
)

// testStore is a store of the contract suite, with what the tests need
// besides the contract: SQL on its database behind its back, and
// opening it again.
type testStore struct {
	*SQLStore
	reopen func(t *testing.T) testStore
}

// eachStore runs f against a new SQLite store and a new PostgreSQL store
// (in a schema of its own), the latter writing upserts both ways (COPY
// and a merge, multi-row upserts), as subtests: the contract's
// assertions are the same for all.
func eachStore(t *testing.T, f func(t *testing.T, s testStore)) {
	t.Run("sqlite", func(t *testing.T) { f(t, sqliteStore(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, pgStore(t, PostgresOptions{})) })
	t.Run("postgres_multirow", func(t *testing.T) { f(t, pgStore(t, PostgresOptions{MultiRowUpserts: true})) })
}

func sqliteStore(t *testing.T) testStore {
	path := filepath.Join(t.TempDir(), "nested", "dir", "pulse.db")
	var open func(t *testing.T) testStore
	open = func(t *testing.T) testStore {
		t.Helper()
		s, err := OpenSQLite(path)
		if err != nil {
			t.Fatalf("OpenSQLite: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return testStore{SQLStore: s.SQLStore, reopen: open}
	}
	return open(t)
}

// pgEnv skips t without a PostgreSQL (or fails it in CI).
func pgEnv(t testing.TB) { t.Helper(); pgtest.Require(t) }

// pgSchema returns the connection string of a schema of t's own.
func pgSchema(t testing.TB) string {
	t.Helper()
	schema, _ := pgtest.Schema(t)
	return "search_path=" + schema
}

func pgStore(t *testing.T, opt PostgresOptions) testStore {
	dsn := pgSchema(t)
	var open func(t *testing.T) testStore
	open = func(t *testing.T) testStore {
		t.Helper()
		s, err := OpenPostgres(context.Background(), dsn, opt)
		if err != nil {
			t.Fatalf("OpenPostgres: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return testStore{SQLStore: s.SQLStore, reopen: open}
	}
	return open(t)
}

// exec runs SQL statements on the store's database, outside the store.
func (s testStore) exec(t *testing.T, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.c.begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if err := tx.exec(ctx, q); err != nil {
			tx.rollback(ctx)
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// scan runs a query of one value on the store's database.
func (s testStore) scan(t *testing.T, q string, dest any) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.c.begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.rollback(ctx)
	if err := scanOne(ctx, tx, q, dest); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// failOn makes the store's database fail writes of event (INSERT,
// DELETE) to table, those whose new row satisfies when if it is set,
// until noFail.
func (s testStore) failOn(t *testing.T, table, event, when string) {
	t.Helper()
	if s.d.name() == "sqlite" {
		cond := ""
		if when != "" {
			cond = " WHEN " + when
		}
		s.exec(t, "CREATE TRIGGER fail BEFORE "+event+" ON "+quote(table)+cond+" BEGIN SELECT RAISE(ABORT, 'injected'); END")
		return
	}
	cond := ""
	if when != "" {
		cond = " WHEN (" + when + ")"
	}
	s.exec(t, `CREATE OR REPLACE FUNCTION pulse_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$`,
		"CREATE TRIGGER fail BEFORE "+event+" ON "+quote(table)+" FOR EACH ROW"+cond+" EXECUTE FUNCTION pulse_fail()")
}

// noFail drops failOn's trigger on table.
func (s testStore) noFail(t *testing.T, table string) {
	t.Helper()
	if s.d.name() == "sqlite" {
		s.exec(t, "DROP TRIGGER IF EXISTS fail")
		return
	}
	s.exec(t, "DROP TRIGGER IF EXISTS fail ON "+quote(table))
}

package sink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
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

// pgEnv reports whether the PG* environment variables name a server.
// Without them the PostgreSQL tests skip, except in CI (CI=true), where
// a missing server fails them.
func pgEnv(t testing.TB) {
	t.Helper()
	for _, v := range []string{"PGHOST", "PGPORT", "PGDATABASE", "PGUSER"} {
		if os.Getenv(v) != "" {
			return
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no PostgreSQL: the PG* environment variables are not set; run the tests under pg_virtualenv, e.g. pg_virtualenv go test -race ./internal/sink/...")
	}
	t.Skip("no PostgreSQL (PGHOST etc. unset): run under pg_virtualenv to test against one")
}

// pgSchema creates a schema of its own for a test in the database of the
// PG* environment variables, dropped at its end, and returns the
// connection string that uses it.
func pgSchema(t testing.TB) string {
	t.Helper()
	pgEnv(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "")
	if err != nil {
		t.Fatalf("connect to the PostgreSQL of PG*: %v", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, "")
		if err != nil {
			t.Errorf("connect to drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
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

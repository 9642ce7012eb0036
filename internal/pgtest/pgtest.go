package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Require skips t without a server in the PG* variables, or fails it in
// CI.
func Require(t testing.TB) {
	t.Helper()
	for _, v := range []string{"PGHOST", "PGPORT", "PGDATABASE", "PGUSER"} {
		if os.Getenv(v) != "" {
			return
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no PostgreSQL: the PG* environment variables are not set; run the tests under pg_virtualenv (make test does), e.g. pg_virtualenv go test -race ./internal/sink/...")
	}
	t.Skip("no PostgreSQL (PGHOST etc. unset): run under pg_virtualenv to test against one")
}

// Schema creates a schema of its own for t in the PG* database, dropped
// at t's end, and returns its name and a connection whose search_path is
// it (closed at t's end).
func Schema(t testing.TB) (string, *pgx.Conn) {
	t.Helper()
	Require(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "")
	if err != nil {
		t.Fatalf("connect to the PostgreSQL of PG*: %v", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "test_" + hex.EncodeToString(b)
	for _, stmt := range []string{"CREATE SCHEMA " + schema, "SET search_path = " + schema} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			conn.Close(ctx)
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		conn.Close(ctx)
	})
	return schema, conn
}

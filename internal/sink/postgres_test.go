package sink

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/stream"
)

// TestPostgresUnreachable: a server that does not answer at start is an
// error naming the host and port and saying what to check.
func TestPostgresUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = OpenPostgres(ctx, "postgres://pulse:secret@"+addr+"/results?connect_timeout=5", PostgresOptions{})
	if err == nil {
		t.Fatal("no error from a server that is not there")
	}
	msg := err.Error()
	for _, want := range []string{"cannot reach PostgreSQL at " + net.JoinHostPort(host, port), `database "results"`, "connection refused", "check that the server runs"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "secret") {
		t.Errorf("error %q shows the password", msg)
	}
}

// TestPostgresLoginRefused: a login the server refuses is an error
// naming the host, the server's reason and what to check.
func TestPostgresLoginRefused(t *testing.T) {
	pgEnv(t)
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = OpenPostgres(ctx, "user=pulse_no_such_user password=wrong", PostgresOptions{})
	if err == nil {
		t.Fatal("no error from a login with a user that does not exist")
	}
	msg := err.Error()
	for _, want := range []string{"refused the login", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), "pulse_no_such_user", "check the user and password"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "wrong") {
		t.Errorf("error %q shows the password", msg)
	}
}

// TestStoreMigrateIdempotent: running the migrations again (pulse db
// migrate on a database pulse run opened) changes nothing; a database
// from a newer Pulse is refused.
func TestStoreMigrateIdempotent(t *testing.T) { eachStore(t, testStoreMigrateIdempotent) }

func testStoreMigrateIdempotent(t *testing.T, s testStore) {
	ctx := context.Background()
	commit(t, s, "city", result("sensor_1m", "s-1", t0, 1))
	for range 2 {
		if err := s.migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Migrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(migrations) || !strings.HasPrefix(got[0], "1 ") {
		t.Fatalf("migrations %q, want the %d known once each", got, len(migrations))
	}
	sameRows(t, query(t, s, Query{Pipeline: "city"}), result("sensor_1m", "s-1", t0, 1))
	s.exec(t, `INSERT INTO pulse_schema_migrations (version, name, applied_at) VALUES (999, 'from the future', `+quoteString(time.Now().UTC().Format(sqliteTime))+`)`)
	err = s.migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "schema version 999") || !strings.Contains(err.Error(), "run a newer Pulse") {
		t.Fatalf("migrating a database of a newer Pulse: %v", err)
	}
}

func TestTableName(t *testing.T) {
	long := strings.Repeat("p", 60)
	tests := []struct {
		pipeline, output string
		version          int
		hashed           bool
		prefix, suffix   string
	}{
		{"city", "sensor_1m", 1, false, "city__sensor_1m", "city__sensor_1m"},
		{"city", "sensor_1m", 2, false, "city__sensor_1m_v2", "_v2"},
		{"city", "sensor_1m", 1, true, "city__sensor_1m_", ""},
		{long, "out", 1, false, long[:47] + "_", ""},
		{long, "out", 12, false, long[:43] + "_", "_v12"},
	}
	for _, tt := range tests {
		got := tableName(tt.pipeline, tt.output, tt.version, tt.hashed)
		if !strings.HasPrefix(got, tt.prefix) || !strings.HasSuffix(got, tt.suffix) || len(got) > maxTableName {
			t.Errorf("tableName(%s, %s, %d, %v) = %s, want %s...%s of at most %d bytes", tt.pipeline, tt.output, tt.version, tt.hashed, got, tt.prefix, tt.suffix, maxTableName)
		}
	}
	if a, b := tableName(long, "a", 1, false), tableName(long, "b", 1, false); a == b {
		t.Errorf("two long names share table %s", a)
	}
}

// TestStoreNameTaken: an output whose table name another output's table
// has (pipeline a__b output c, pipeline a output b__c) gets a hashed one.
func TestStoreNameTaken(t *testing.T) { eachStore(t, testStoreNameTaken) }

func testStoreNameTaken(t *testing.T, s testStore) {
	ctx := context.Background()
	x, y := windowSchema("c", []string{"host"}), windowSchema("b__c", []string{"host"})
	if err := Commit(ctx, s, WritesOf("a__b", x, windowRow(x, "h", t0, event.NumberValue(1))), nil); err != nil {
		t.Fatal(err)
	}
	if err := Commit(ctx, s, WritesOf("a", y, windowRow(y, "h", t0, event.NumberValue(2))), nil); err != nil {
		t.Fatal(err)
	}
	ts, err := s.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].Name != "a__b__c" || !strings.HasPrefix(ts[1].Name, "a__b__c_") {
		t.Fatalf("tables %v", ts)
	}
	sameRows(t, query(t, s, Query{Pipeline: "a", Outputs: []*stream.Schema{y}}), windowRow(y, "h", t0, event.NumberValue(2)))
	sameRows(t, query(t, s, Query{Pipeline: "a__b", Outputs: []*stream.Schema{x}}), windowRow(x, "h", t0, event.NumberValue(1)))
}

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulsehq/pulse/internal/pgtest"
)

// pgSchema returns the --db URL of a schema of t's own in the PG*
// database, and a connection that reads it.
func pgSchema(t *testing.T) (db string, conn *pgx.Conn) {
	t.Helper()
	schema, conn := pgtest.Schema(t)
	return "postgres:///?search_path=" + schema, conn
}

// storedRows reads a city output's table from PostgreSQL as rows of the
// results API, for compare: every column by its name, window_start as
// RFC 3339, numbers as float64, NULL left out.
func storedRows(t *testing.T, conn *pgx.Conn, output, group string, before time.Time) []resultRow {
	t.Helper()
	rs, err := conn.Query(context.Background(), `SELECT * FROM city__`+output+` WHERE window_start < $1 ORDER BY window_start, `+group, before)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []resultRow
	for rs.Next() {
		vals, err := rs.Values()
		if err != nil {
			t.Fatal(err)
		}
		row := resultRow{"output": output}
		for i, f := range rs.FieldDescriptions() {
			switch v := vals[i].(type) {
			case nil:
			case string:
				if f.Name == group {
					row["key"] = map[string]any{group: v}
				}
			case time.Time:
				row[f.Name] = v.UTC().Format(time.RFC3339)
			case int64:
				row[f.Name] = float64(v)
			case float64:
				row[f.Name] = v
			default:
				t.Fatalf("column %s of %s holds %T", f.Name, output, v)
			}
		}
		out = append(out, row)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPostgresExact runs pulse with --db on a PostgreSQL, sends readings
// with a kill -9 in the middle (during sink writes) and a restart, and
// checks that the typed rows in the city tables, read with SQL, equal a
// batch computation over every reading: nothing lost, nothing twice.
// The results API reads them from PostgreSQL too.
func TestPostgresExact(t *testing.T) {
	db, conn := pgSchema(t)
	base := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	rs := generate(11, "pg", 30, 3, base, 5*time.Minute, 3*time.Second, 500*time.Millisecond)
	want := oracle(rs)
	half := len(rs) / 2
	for half < len(rs) && rs[half].ts.Truncate(500*time.Millisecond).Equal(rs[half-1].ts.Truncate(500*time.Millisecond)) {
		half++
	}
	in := newInstance(t, "--db", db)
	send := func(p *proc, batch []reading) {
		for i := 0; i < len(batch); i += 250 {
			j := min(i+250, len(batch))
			if code, ir, raw := p.post(ndjson(batch[i:j]), "application/x-ndjson"); code != 200 || ir.Accepted != j-i {
				t.Fatalf("ingest: %d %s", code, raw)
			}
		}
	}
	p := in.start(t)
	send(p, rs[:half])
	waitMetric(t, p, `pulse_sink_rows_total{outcome="upserted",sink="postgres"}`, 1)
	p.kill()

	p = in.start(t)
	send(p, rs[half:])
	end := base.Add(5 * time.Minute)
	send(p, []reading{sentinel("pg", end.Add(time.Minute))})
	query := "to=" + end.Format(time.RFC3339)
	compare(t, p.waitResults(query, len(want)), want)
	p.stop()

	stored := append(storedRows(t, conn, "sensor_1m", "sensor_id", end), storedRows(t, conn, "zone_1m", "zone", end)...)
	compare(t, stored, want)
	var comment string
	if err := conn.QueryRow(context.Background(), `SELECT obj_description('city__sensor_1m'::regclass, 'pg_class')`).Scan(&comment); err != nil ||
		!strings.Contains(comment, "pipeline city, output sensor_1m") {
		t.Errorf("table comment %q, %v", comment, err)
	}
}

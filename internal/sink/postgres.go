package sink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// Postgres is the production result store: a SQLStore in PostgreSQL
// through a pgx connection pool.
type Postgres struct {
	*SQLStore
	pool *pgxpool.Pool
}

// PostgresOptions tune OpenPostgres.
type PostgresOptions struct {
	// MultiRowUpserts writes upserts as multi-row INSERT ... ON
	// CONFLICT statements instead of COPY into a staging table and a
	// merge from it (the default, the faster here: docs/benchmarks.md).
	MultiRowUpserts bool
}

// OpenPostgres connects to the database at url (postgres://user:password@host:port/db?...;
// what it leaves out comes from the PG* environment variables) and runs
// the migrations it lacks. A server that cannot be reached, or refuses
// the login, is an error naming the host and the cause.
func OpenPostgres(ctx context.Context, url string, opt PostgresOptions) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("--db: %w (want postgres://user:password@host:5432/database)", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "pulse"
	where := pgWhere(cfg.ConnConfig.Config)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", where, err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.ConnConfig.ConnectTimeout+5*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, connectError(where, err)
	}
	s := &Postgres{SQLStore: newSQLStore(pgDialect{}, pgConn{pool}), pool: pool}
	s.copyUpserts = !opt.MultiRowUpserts
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate the PostgreSQL database at %s: %w", where, err)
	}
	return s, nil
}

// pgWhere names a server and database for errors: host:port, database
// and user, never the password.
func pgWhere(c pgconn.Config) string {
	host := c.Host
	if len(host) > 0 && host[0] == '/' {
		host = "socket " + host
	}
	return fmt.Sprintf("%s (database %q, user %q)", net.JoinHostPort(host, strconv.Itoa(int(c.Port))), c.Database, c.User)
}

// connectError says why connecting failed and what to do about it.
func connectError(where string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01", "28000":
			return fmt.Errorf("PostgreSQL at %s refused the login: %s (SQLSTATE %s): check the user and password in --db, or PGUSER and PGPASSWORD", where, pe.Message, pe.Code)
		case "3D000":
			return fmt.Errorf("PostgreSQL at %s: %s: create the database (createdb) or name another in --db", where, pe.Message)
		}
		return fmt.Errorf("connect to PostgreSQL at %s: %s (SQLSTATE %s)", where, pe.Message, pe.Code)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cannot reach PostgreSQL at %s: %w: check that the server runs and that the host and port in --db are right", where, unwrapConnect(err))
	}
	return fmt.Errorf("connect to PostgreSQL at %s: %w", where, unwrapConnect(err))
}

// unwrapConnect drops pgconn's "failed to connect to ..." wrapping, which
// repeats what where says.
func unwrapConnect(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Unwrap() != nil {
		return ce.Unwrap()
	}
	return err
}

// pgConn is a pgx pool as a conn.
type pgConn struct{ pool *pgxpool.Pool }

func (c pgConn) begin(ctx context.Context) (txn, error) {
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return pgTx{tx}, nil
}

func (c pgConn) query(ctx context.Context, q string, args ...any) (rows, error) {
	return c.pool.Query(ctx, q, args...)
}

func (c pgConn) close() error {
	c.pool.Close()
	return nil
}

type pgTx struct{ tx pgx.Tx }

func (t pgTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.Exec(ctx, q, args...)
	return err
}

func (t pgTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	return t.tx.Query(ctx, q, args...)
}

func (t pgTx) commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t pgTx) rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

// copyRows copies rows into table by COPY (binary): a decimal's text is
// sent as a pgtype.Numeric.
func (t pgTx) copyRows(ctx context.Context, table string, cols []pipeline.Column, rows [][]any) error {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
		if c.Type != pipeline.TypeDecimal {
			continue
		}
		for _, r := range rows {
			if s, ok := r[i].(string); ok {
				var n pgtype.Numeric
				if err := n.Scan(s); err != nil {
					return fmt.Errorf("decimal %s = %q: %w", c.Name, s, err)
				}
				r[i] = n
			}
		}
	}
	n, err := t.tx.CopyFrom(ctx, pgx.Identifier{table}, names, pgx.CopyFromRows(rows))
	if err == nil && n != int64(len(rows)) {
		err = fmt.Errorf("copied %d rows of %d", n, len(rows))
	}
	return err
}

// copyMerge upserts rows (unique by identity) into t: COPY into a
// temporary staging table like t, then one INSERT ... SELECT ... ON
// CONFLICT from it. The staging table is the session's, emptied at
// every commit, and named after t's columns, so that a column added
// since gets a new one.
func (s *SQLStore) copyMerge(ctx context.Context, tx txn, cp copier, t *table, sch *stream.Schema, rows [][]any) error {
	h := sha256.Sum256([]byte(t.name + "\x00" + t.checked))
	stage := "pulse_stage_" + hex.EncodeToString(h[:8])
	if err := tx.exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS "+quote(stage)+" (LIKE "+quote(t.name)+") ON COMMIT DELETE ROWS"); err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	if err := cp.copyRows(ctx, stage, t.write, rows); err != nil {
		return fmt.Errorf("copy into the staging table: %w", err)
	}
	names := make([]string, len(t.write))
	for i, c := range t.write {
		names[i] = c.Name
	}
	cols := quoteList(names)
	return tx.exec(ctx, "INSERT INTO "+quote(t.name)+" ("+cols+") SELECT "+cols+" FROM "+quote(stage)+
		" ON CONFLICT ("+quoteList(t.pk)+") "+upsertSet(t))
}

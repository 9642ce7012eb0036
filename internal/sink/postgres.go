package sink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
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
	// A batch's rows and offsets commit together, so a commit that a
	// server crash loses takes its offsets with it and the feed reads
	// those results again: exactly once needs no flush before the
	// commit returns; the flush took 3 to 20 ms of the about 100 ms
	// of a 5,000-row batch here (docs/storage.md). The URL's own
	// setting wins.
	if _, ok := cfg.ConnConfig.RuntimeParams["synchronous_commit"]; !ok {
		cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	}
	if !strings.Contains(url, "pool_max_conns") {
		// The feed's writers (pgWriters) and the results API's queries.
		cfg.MaxConns = 2 * pgWriters
	}
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
		return fmt.Errorf("cannot reach PostgreSQL at %s: %s: check that the server runs and that the host and port in --db are right", where, connectCause(err))
	}
	return fmt.Errorf("connect to PostgreSQL at %s: %s", where, connectCause(err))
}

// connectCause is the first cause of a failed connect, without pgconn's
// "failed to connect to ..." wrapping, which repeats what where says,
// nor the same cause again from each attempt (with and without TLS).
func connectCause(err error) string {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Unwrap() != nil {
		err = ce.Unwrap()
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
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

// copyData runs copySQL (COPY ... FROM STDIN) with data.
func (t pgTx) copyData(ctx context.Context, copySQL string, data []byte) error {
	_, err := t.tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data), copySQL)
	return err
}

// errNotFresh is a first final copied into its table whose row was
// there: the batch is written again by merges.
var errNotFresh = errors.New("a first final's row is stored already")

// copyMerge upserts the rows of b (unique by identity) into t. With
// direct, the fresh rows (first finals) are copied straight into t: a
// row that is there after all fails the copy with a unique violation,
// errNotFresh. The others go by COPY into a temporary staging table like
// t and one INSERT ... SELECT ... ON CONFLICT from it. Rows are written
// straight from the results in COPY's binary format (pgcopy.go). The
// staging table is the session's, emptied at every commit, and named
// after t's columns, so that a column added since gets a new one.
func (s *SQLStore) copyMerge(ctx context.Context, tx txn, cp copier, t *table, b *tableBatch, direct bool) error {
	names := make([]string, len(t.write))
	for i, c := range t.write {
		names[i] = c.Name
	}
	cols := quoteList(names)
	var fresh, merge []byte
	for i := range b.ops {
		op := &b.ops[i]
		if op.del {
			continue
		}
		dst := &merge
		if direct && op.fresh {
			dst = &fresh
		}
		if len(*dst) == 0 {
			*dst = append(make([]byte, 0, 64<<10), copyHeader...)
		}
		var err error
		if *dst, err = appendCopyRow(*dst, b.schema, &op.r); err != nil {
			return err
		}
	}
	if len(fresh) > 0 {
		err := cp.copyData(ctx, "COPY "+quote(t.name)+" ("+cols+") FROM STDIN (FORMAT binary)", append(fresh, copyTrailer...))
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return errNotFresh
		}
		if err != nil {
			return fmt.Errorf("copy first finals: %w", err)
		}
	}
	if len(merge) == 0 {
		return nil
	}
	h := sha256.Sum256([]byte(t.name + "\x00" + t.checked))
	stage := quote("pulse_stage_" + hex.EncodeToString(h[:8]))
	if err := tx.exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS "+stage+" (LIKE "+quote(t.name)+") ON COMMIT DELETE ROWS"); err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	if err := cp.copyData(ctx, "COPY "+stage+" ("+cols+") FROM STDIN (FORMAT binary)", append(merge, copyTrailer...)); err != nil {
		return fmt.Errorf("copy into the staging table: %w", err)
	}
	return tx.exec(ctx, "INSERT INTO "+quote(t.name)+" ("+cols+") SELECT "+cols+" FROM "+stage+
		" ON CONFLICT ("+quoteList(t.pk)+") "+upsertSet(t))
}

package sink

import "context"

// The store's logic talks to its database through these few calls, so
// that it is written once for SQLite (database/sql, sqlite.go) and
// PostgreSQL (pgx, postgres.go).

// conn is a database: a pool of connections.
type conn interface {
	begin(ctx context.Context) (txn, error)
	query(ctx context.Context, sql string, args ...any) (rows, error)
	close() error
}

// txn is one transaction.
type txn interface {
	exec(ctx context.Context, sql string, args ...any) error
	query(ctx context.Context, sql string, args ...any) (rows, error)
	commit(ctx context.Context) error
	rollback(ctx context.Context) error
}

// copier is a txn that bulk-loads rows (PostgreSQL's COPY FROM STDIN).
type copier interface {
	copyData(ctx context.Context, copySQL string, data []byte) error
}

// rows is the result of a query.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

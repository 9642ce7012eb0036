package sink

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// Open opens the result store that --db names: with db empty, SQLite in
// dataDir (results.db); postgres://... or postgresql://..., PostgreSQL;
// sqlite:PATH, the SQLite file PATH. It runs the migrations the
// database lacks.
func Open(ctx context.Context, db, dataDir string) (*SQLStore, error) {
	switch {
	case db == "":
		s, err := OpenSQLite(filepath.Join(dataDir, "results.db"))
		if err != nil {
			return nil, err
		}
		return s.SQLStore, nil
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		s, err := OpenPostgres(ctx, db, PostgresOptions{})
		if err != nil {
			return nil, err
		}
		return s.SQLStore, nil
	case strings.HasPrefix(db, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(db, "sqlite:"), "//")
		if path == "" {
			return nil, fmt.Errorf("--db %q names no file: use sqlite:/path/to/results.db", db)
		}
		s, err := OpenSQLite(path)
		if err != nil {
			return nil, err
		}
		return s.SQLStore, nil
	}
	return nil, fmt.Errorf("--db %q is not a database URL: use postgres://user:password@host:5432/database, or sqlite:/path/to/results.db (default: SQLite in --data-dir)", redact(db))
}

// redact hides the password of a URL-like db.
func redact(db string) string {
	at := strings.LastIndexByte(db, '@')
	scheme := strings.Index(db, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return db
	}
	cred := db[scheme+3 : at]
	if i := strings.IndexByte(cred, ':'); i >= 0 {
		return db[:scheme+3] + cred[:i] + ":xxxxx" + db[at:]
	}
	return db
}

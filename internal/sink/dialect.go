package sink

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// dialect is all that differs between the SQL databases the result store
// writes: column types, placeholders, table comments and how a
// timestamp is bound. The store's logic (sqlstore.go, tables.go,
// query.go, migrate.go) is written once over it.
type dialect interface {
	// name is the database's name in errors and metrics: "sqlite",
	// "postgres".
	name() string
	// param returns the placeholder of the n-th argument (from 1) of a
	// statement, cast to the SQL type sqlType where the database cannot
	// infer it ("" leaves it uncast).
	param(n int, sqlType string) string
	// columnType is the SQL type of a column of type t.
	columnType(t pipeline.ColumnType) string
	// keyType is the SQL type of an identity column of strings (group
	// fields), whose order must be the bytes' order in every database.
	keyType() string
	// readExpr is the expression that selects column col of type t so
	// that it scans into the values readCell reads.
	readExpr(col string, t pipeline.ColumnType) string
	// timeArg binds a timestamp of ms since the epoch.
	timeArg(ms int64) any
	// boolArg binds a boolean.
	boolArg(b bool) any
	// text returns s as the database can store it in a text column.
	text(s string) string
	// tableComment returns the statement that comments a table, "" if
	// the database has no comments (the catalog pulse_tables holds them
	// everywhere).
	tableComment(table, text string) string
	// maxParams bounds the arguments of one statement.
	maxParams() int
	// lock is the statement that serializes schema changes (creating
	// tables, migrations) among processes, in their transaction; "" if
	// the database's write transactions are serial anyway.
	lock() string
}

// quote quotes an identifier for both databases: in double quotes, a
// double quote doubled.
func quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// quoteString quotes a string literal.
func quoteString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// sqliteTime is how SQLite keeps a timestamp: ISO 8601 text in UTC with
// milliseconds, which sorts as the times do and which SQLite's date and
// time functions read.
const sqliteTime = "2006-01-02T15:04:05.000Z"

type sqliteDialect struct{}

func (sqliteDialect) name() string             { return "sqlite" }
func (sqliteDialect) param(int, string) string { return "?" }
func (sqliteDialect) keyType() string          { return "TEXT" }
func (sqliteDialect) maxParams() int           { return 30000 }
func (sqliteDialect) timeArg(ms int64) any     { return time.UnixMilli(ms).UTC().Format(sqliteTime) }
func (sqliteDialect) lock() string             { return "" }
func (sqliteDialect) tableComment(string, string) string {
	return ""
}

func (sqliteDialect) text(s string) string { return s }

func (sqliteDialect) boolArg(b bool) any {
	if b {
		return int64(1)
	}
	return int64(0)
}

func (sqliteDialect) columnType(t pipeline.ColumnType) string {
	switch t {
	case pipeline.TypeString, pipeline.TypeTimestamp, pipeline.TypeDecimal:
		return "TEXT"
	case pipeline.TypeInt64, pipeline.TypeBool:
		return "INTEGER"
	case pipeline.TypeFloat64:
		return "REAL"
	}
	return "TEXT" // JSON
}

func (sqliteDialect) readExpr(col string, _ pipeline.ColumnType) string { return quote(col) }

type pgDialect struct{}

func (pgDialect) name() string         { return "postgres" }
func (pgDialect) keyType() string      { return `text COLLATE "C"` }
func (pgDialect) maxParams() int       { return 60000 }
func (pgDialect) timeArg(ms int64) any { return time.UnixMilli(ms).UTC() }
func (pgDialect) boolArg(b bool) any   { return b }

// pgLockKey is the key of the advisory lock of Pulse's schema changes.
const pgLockKey = 0x70756c7365 // "pulse"

func (pgDialect) lock() string {
	return "SELECT pg_advisory_xact_lock(" + strconv.Itoa(pgLockKey) + ")"
}

// text replaces what PostgreSQL's text cannot hold, a NUL byte and
// bytes that are not UTF-8, by U+FFFD: stored as written, such a string
// would fail its whole batch, again at every retry.
func (pgDialect) text(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func (pgDialect) param(n int, sqlType string) string {
	p := "$" + strconv.Itoa(n)
	if sqlType != "" {
		p += "::" + sqlType
	}
	return p
}

func (pgDialect) columnType(t pipeline.ColumnType) string {
	switch t {
	case pipeline.TypeString:
		return `text COLLATE "C"`
	case pipeline.TypeInt64:
		return "bigint"
	case pipeline.TypeFloat64:
		return "double precision"
	case pipeline.TypeBool:
		return "boolean"
	case pipeline.TypeTimestamp:
		return "timestamptz"
	case pipeline.TypeDecimal:
		return "numeric"
	}
	return "jsonb"
}

// readExpr reads numeric and jsonb as text: a decimal's exact digits, a
// JSON scalar as written.
func (pgDialect) readExpr(col string, t pipeline.ColumnType) string {
	if t == pipeline.TypeDecimal || t == stream.TypeAny {
		return quote(col) + "::text"
	}
	return quote(col)
}

func (pgDialect) tableComment(table, text string) string {
	return "COMMENT ON TABLE " + quote(table) + " IS " + quoteString(text)
}

// castType is the type a placeholder is cast to where PostgreSQL cannot
// infer it (in a VALUES list compared with columns): the column's type,
// with its collation, so that the comparison has one.
func castType(d dialect, t pipeline.ColumnType) string {
	if _, ok := d.(pgDialect); !ok {
		return ""
	}
	return d.columnType(t)
}

// cellArg returns the argument that stores v in a column of type t, nil
// for SQL NULL: what the JSON of a result writes as null (no value, a
// value of another kind, a number that is not finite) is NULL.
func cellArg(d dialect, t pipeline.ColumnType, v event.Value) any {
	if v.Kind == event.Null {
		return nil
	}
	finite := v.Kind != event.Number || !(math.IsNaN(v.Num) || math.IsInf(v.Num, 0))
	if !finite {
		return nil
	}
	switch t {
	case pipeline.TypeString:
		if v.Kind == event.String {
			return d.text(v.Str)
		}
		return string(v.AppendKeyText(nil))
	case pipeline.TypeInt64:
		if v.Kind == event.Number && math.Abs(v.Num) < 1<<63 {
			return int64(math.Trunc(v.Num))
		}
	case pipeline.TypeFloat64:
		if v.Kind == event.Number {
			return v.Num
		}
	case pipeline.TypeBool:
		if v.Kind == event.Bool {
			return d.boolArg(v.B)
		}
	case pipeline.TypeTimestamp:
		// The years a result's JSON and both databases hold.
		if v.Kind == event.Number && v.Num >= minTime && v.Num <= maxTime {
			return d.timeArg(int64(v.Num))
		}
	case pipeline.TypeDecimal:
		if s := stream.AppendCellText(nil, t, v); len(s) > 0 {
			return string(s)
		}
	default: // any: the JSON scalar
		if v.Kind == event.String {
			v.Str = d.text(v.Str)
		}
		return string(v.AppendJSON(nil))
	}
	return nil
}

// The range of timestamps stored: the years 0001 to 9999, UTC.
var (
	minTime = float64(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	maxTime = float64(time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli())
)

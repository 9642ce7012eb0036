package sink

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// A table per output: named <pipeline>__<output> (tableName), with the
// output's columns typed by the dialect, a primary key on the bound
// (window_start or time) and the group columns, an index on the group
// columns and the bound for key queries, and a row in the catalog
// pulse_tables naming its pipeline, output and columns.

// maxTableName bounds a table's name so that its index names
// (<table>_key) stay within PostgreSQL's 63 bytes.
const maxTableName = 56

// tableName returns the name of version v of the table of a pipeline's
// output: <pipeline>__<output>, with _v<N> after it from version 2 on.
// Pipeline and output names are lower-case letters, digits and
// underscores, so the name needs no quoting; one that is too long, or
// hashed (when another output has its name), ends in 8 hex digits of a
// hash of both names instead.
func tableName(pipelineName, output string, v int, hashed bool) string {
	suffix := ""
	if v > 1 {
		suffix = "_v" + strconv.Itoa(v)
	}
	base := pipelineName + "__" + output
	if !hashed && len(base)+len(suffix) <= maxTableName {
		return base + suffix
	}
	h := sha256.Sum256([]byte(pipelineName + "\x00" + output))
	tag := "_" + hex.EncodeToString(h[:4])
	if n := maxTableName - len(tag) - len(suffix); len(base) > n {
		base = base[:n]
	}
	return base + tag + suffix
}

// catalogColumn is one column of a table, as the catalog lists it.
type catalogColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Key is set on the identity columns: the group fields and the
	// bound (window_start or time).
	Key bool `json:"key,omitempty"`
}

// table is one version of an output's table.
type table struct {
	name             string
	pipeline, output string
	version          int
	kind             string // the output kind: window, events, detect, join
	cols             []catalogColumn
	// For writes: the signature of the schema the table was last
	// checked against, its columns (the schema's, in its order: the
	// order of a rowOp's arguments), how many of them are the identity,
	// the primary key, and the statements by their row count.
	checked string
	write   []pipeline.Column
	ids     int
	pk      []string
	stmts   map[stmtKey]string
}

type stmtKey struct {
	upsert bool
	rows   int
}

// columnsOf returns the catalog columns of s.
func columnsOf(s *stream.Schema) []catalogColumn {
	out := make([]catalogColumn, 0, len(s.Columns))
	ids := len(s.Group()) + 1 // the groups and the start
	for i, c := range s.Columns {
		out = append(out, catalogColumn{Name: c.Name, Type: c.Type.String(), Key: i < ids})
	}
	return out
}

// signature identifies a schema's columns, for the table cache.
func signature(s *stream.Schema) string {
	b, _ := json.Marshal(columnsOf(s))
	return kindName(s.Kind) + string(b)
}

// identity returns the key columns of cols.
func identity(cols []catalogColumn) []catalogColumn {
	var out []catalogColumn
	for _, c := range cols {
		if c.Key {
			out = append(out, c)
		}
	}
	return out
}

// fits reports whether t can keep the rows of s as they are, and which
// of s's columns it lacks (to add). It cannot when the identity (the
// group fields and the bounds) differs, or a column's type changed.
func (t *table) fits(s *stream.Schema) (missing []pipeline.Column, why string) {
	want := columnsOf(s)
	if !slices.Equal(identity(t.cols), identity(want)) {
		return nil, fmt.Sprintf("its key columns are %s, the output's are now %s", colList(identity(t.cols)), colList(identity(want)))
	}
	if t.kind != kindName(s.Kind) {
		return nil, fmt.Sprintf("it holds a %s output, the output is now a %s output", t.kind, kindName(s.Kind))
	}
	for i, c := range want {
		j := slices.IndexFunc(t.cols, func(x catalogColumn) bool { return x.Name == c.Name })
		switch {
		case j < 0:
			missing = append(missing, s.Columns[i])
		case t.cols[j].Type != c.Type:
			return nil, fmt.Sprintf("its column %s is %s, the output's is now %s", c.Name, t.cols[j].Type, c.Type)
		}
	}
	return missing, ""
}

func colList(cols []catalogColumn) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.Name + " (" + c.Type + ")")
	}
	return "(" + b.String() + ")"
}

// has reports whether t has a column named name, and its type.
func (t *table) has(name string) (string, bool) {
	for _, c := range t.cols {
		if c.Name == name {
			return c.Type, true
		}
	}
	return "", false
}

// createTable returns the statements that create table name for s.
func createTable(d dialect, name, pipelineName string, s *stream.Schema) []string {
	var b strings.Builder
	b.WriteString("CREATE TABLE " + quote(name) + " (\n")
	ids := len(s.Group()) + 1
	for i, c := range s.Columns {
		typ := d.columnType(c.Type)
		if i < len(s.Group()) {
			typ = d.keyType()
		}
		b.WriteString("\t" + quote(c.Name) + " " + typ)
		if i < ids || c.Name == stream.ColWindowEnd {
			b.WriteString(" NOT NULL")
		}
		b.WriteString(",\n")
	}
	b.WriteString("\tPRIMARY KEY (" + quoteList(pkColumns(s)) + ")\n)")
	if _, ok := d.(sqliteDialect); ok {
		b.WriteString(" WITHOUT ROWID")
	}
	out := []string{b.String()}
	if keys := keyIndexColumns(s); len(keys) > 0 {
		out = append(out, "CREATE INDEX "+quote(name+"_key")+" ON "+quote(name)+" ("+quoteList(keys)+")")
	}
	if c := d.tableComment(name, tableComment(pipelineName, s)); c != "" {
		out = append(out, c)
	}
	return out
}

// tableComment says what a table holds.
func tableComment(pipelineName string, s *stream.Schema) string {
	groups := "window"
	if len(s.Group()) > 0 {
		var names []string
		for _, c := range s.Group() {
			names = append(names, c.Name)
		}
		groups = strings.Join(names, ", ") + " and " + s.Columns[len(s.Group())].Name
	}
	return fmt.Sprintf("Pulse results of pipeline %s, output %s (%s): one row per %s.", pipelineName, s.Output, kindName(s.Kind), groups)
}

// pkColumns are the primary key: the bound, then the group columns, the
// order the results API reads in.
func pkColumns(s *stream.Schema) []string {
	out := []string{s.Columns[len(s.Group())].Name}
	for _, c := range s.Group() {
		out = append(out, c.Name)
	}
	return out
}

// keyIndexColumns are the columns of the key index: the group fields a
// key query names (without an events output's event_id or a detect
// output's field), then the bound; none without group fields.
func keyIndexColumns(s *stream.Schema) []string {
	groups := s.Group()
	if s.Kind != pipeline.KindWindow && len(groups) > 0 {
		groups = groups[:len(groups)-1]
	}
	if len(groups) == 0 {
		return nil
	}
	var out []string
	for _, c := range groups {
		out = append(out, c.Name)
	}
	return append(out, s.Columns[len(s.Group())].Name)
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quote(n)
	}
	return strings.Join(q, ", ")
}

// addColumn returns the statement that adds column c to table name.
func addColumn(d dialect, name string, c pipeline.Column) string {
	return "ALTER TABLE " + quote(name) + " ADD COLUMN " + quote(c.Name) + " " + d.columnType(c.Type)
}

// now is the time the catalog records.
func now() time.Time { return time.Now().UTC() }

// kindName names an output kind as pipeline files do.
func kindName(k pipeline.OutputKind) string {
	switch k {
	case pipeline.KindWindow:
		return "window"
	case pipeline.KindEvents:
		return "events"
	case pipeline.KindDetect:
		return "detect"
	case pipeline.KindJoin:
		return "join"
	}
	return "kind " + strconv.Itoa(int(k))
}

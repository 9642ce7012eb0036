package archive

import (
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fastjson"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	pstream "github.com/pulsehq/pulse/internal/stream"
)

// ResultSource returns the Source of the results of output o of pipeline
// pipe: the records of its result topic, archived as stream
// ResultStream(pipe, o.Name).
func ResultSource(pipe string, o *pipeline.Output) Source {
	return Source{Stream: ResultStream(pipe, o.Name), Topic: o.Topic, Schema: SchemaResult, Result: pstream.SchemaOf(o)}
}

// resultCodec archives an output's result records (stream.Schema.Record)
// as typed rows: the common columns, kind (insert, update or delete),
// then the output's columns in their order, typed as the schema says:
//
//	string     STRING
//	int64      INT64
//	float64    DOUBLE
//	decimal    DOUBLE (Pulse computes decimals as 64-bit floats)
//	bool       BOOLEAN
//	timestamp  TIMESTAMP(MILLIS, UTC)
//	any        JSON (the scalar as JSON text: "a", 1.5, true)
//
// The group fields and the first time column (window_start, or time)
// are required: a delete carries them in its key. The other columns are
// nullable, and null in a delete's row (a tombstone has no value). The
// event time is the first time column. A record is checked against the
// schema as the output's sinks check it (stream.RecordDecoder): one
// that does not fit is not archived, and the reason is counted.
type resultCodec struct {
	src    Source
	s      *parquet.Schema
	cols   []pipeline.Column // the output's columns
	groups int               // cols[:groups] are the group fields
	bounds int               // the time columns after them: 2 or 1
	leaf   []int             // leaf column of cols[i]
	byName map[string]int    // index in cols
	common []int
	kind   int
	ncols  int
	nulls  []parquet.Value // a row of nulls, for the columns a record lacks
	bytes  []int           // leaf columns whose values point into the parser's memory

	p     fastjson.Parser
	row   []parquet.Value // the row of the record parsed last
	text  []byte          // the JSON text of its any cells
	seen  []bool          // per column
	next  int             // the column the next member most likely is
	limit int             // the columns the object being read may hold: cols[:limit]
	err   error
	visit func(k []byte, v *fastjson.Value)
	// retract is set by a "retract":true member: a delete in the format
	// before schemas (see legacy).
	retract bool
	rec     *kgo.Record
	ms      int64
}

// resultColumns are the columns of a result file before the output's own,
// in order (pipeline.ArchiveColumns, which an archived output's columns
// must not be named).
var resultColumns = []string{ColEventTime, ColKey, ColPartition, ColOffset, ColKind}

// kindText is each record kind's value of the kind column.
var kindText = [...][]byte{pstream.KindInsert: []byte("insert"), pstream.KindUpdate: []byte("update"), pstream.KindDelete: []byte("delete")}

func newResultCodec(src Source) (*resultCodec, error) {
	rs := src.Result
	if rs == nil {
		return nil, fmt.Errorf("stream %s: no result schema", src.Stream)
	}
	c := &resultCodec{src: src, cols: rs.Columns, groups: len(rs.Group()), bounds: 1, byName: map[string]int{}}
	if rs.Windowed() {
		c.bounds = 2
	}
	if len(c.cols) < c.groups+c.bounds {
		return nil, fmt.Errorf("stream %s: the result schema of output %s has no time column", src.Stream, rs.Output)
	}
	g := orderedGroup{}
	add := func(name string, n parquet.Node) {
		g = append(g, orderedField{Node: n, name: name, index: len(g)})
	}
	cm := common()
	for _, name := range resultColumns[:4] {
		add(name, cm[name])
	}
	add(ColKind, dict(parquet.String()))
	for i, col := range c.cols {
		if slices.Contains(resultColumns, col.Name) {
			return nil, fmt.Errorf("stream %s: result column %s of output %s has the name of a column the archive adds (%s)",
				src.Stream, col.Name, rs.Output, strings.Join(resultColumns, ", "))
		}
		if _, dup := c.byName[col.Name]; dup {
			return nil, fmt.Errorf("stream %s: output %s has two columns %s", src.Stream, rs.Output, col.Name)
		}
		c.byName[col.Name] = i
		n := resultNode(col, i < c.groups)
		if i > c.groups {
			n = parquet.Optional(n)
		}
		add(col.Name, n)
	}
	c.s = parquet.NewSchema("results", g)
	c.common = columns(c.s, ColEventTime, ColKey, ColPartition, ColOffset)
	c.kind = columns(c.s, ColKind)[0]
	c.ncols = len(c.s.Columns())
	c.nulls = make([]parquet.Value, c.ncols)
	for _, col := range c.cols {
		l := columns(c.s, col.Name)[0]
		c.leaf = append(c.leaf, l)
		c.nulls[l] = parquet.NullValue().Level(0, 0, l)
		if col.Type == pipeline.TypeString || col.Type == pstream.TypeAny {
			c.bytes = append(c.bytes, l)
		}
	}
	c.row = make([]parquet.Value, c.ncols)
	c.seen = make([]bool, len(c.cols))
	c.visit = c.member // bound once: Visit then allocates nothing
	return c, nil
}

// resultNode is the Parquet node of an output's column; group is set for
// a group field.
func resultNode(col pipeline.Column, group bool) parquet.Node {
	switch col.Type {
	case pipeline.TypeString:
		if group && col.Name != pipeline.ColEventID { // event_id is unique per row: no dictionary
			return dict(parquet.String())
		}
		return parquet.String()
	case pipeline.TypeInt64:
		return parquet.Int(64)
	case pipeline.TypeFloat64, pipeline.TypeDecimal:
		return parquet.Leaf(parquet.DoubleType)
	case pipeline.TypeBool:
		return parquet.Leaf(parquet.BooleanType)
	case pipeline.TypeTimestamp:
		return delta(parquet.TimestampAdjusted(parquet.Millisecond, true))
	}
	return parquet.JSON() // any
}

func (c *resultCodec) schema() *parquet.Schema { return c.s }

// recordKind reads rec's kind header: none (or an empty one) is an
// insert, a null value a delete.
func recordKind(rec *kgo.Record) (pstream.RecordKind, error) {
	var k pstream.RecordKind
	for _, h := range rec.Headers {
		if h.Key == pstream.KindHeader {
			var err error
			if k, err = pstream.ParseKind(h.Value); err != nil {
				return 0, err
			}
		}
	}
	if rec.Value == nil {
		k = pstream.KindDelete
	}
	return k, nil
}

func (c *resultCodec) parse(rec *kgo.Record) (int64, error) {
	c.rec = rec
	kind, err := recordKind(rec)
	if err != nil {
		return 0, err
	}
	copy(c.row, c.nulls)
	c.text = c.text[:0]
	src, what, required := rec.Value, "value", c.groups+c.bounds
	c.limit = len(c.cols)
	if kind == pstream.KindDelete {
		// A tombstone: the key identifies the row it deletes (a value,
		// under a delete header, is ignored, as the sinks ignore it).
		src, what, required = rec.Key, "key of a delete", c.groups+1
		c.limit = required
		if src == nil {
			return 0, errors.New("a delete record has no key")
		}
	}
	if err := event.CheckUTF8(src); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	v, err := c.p.ParseBytes(src)
	if err != nil {
		return 0, fmt.Errorf("%s is not JSON: %w", what, err)
	}
	obj, err := v.Object()
	if err != nil {
		return 0, fmt.Errorf("%s is not a JSON object", what)
	}
	clear(c.seen)
	c.next, c.err, c.retract = 0, nil, false
	obj.Visit(c.visit)
	if c.err != nil {
		return 0, fmt.Errorf("%s: %w", what, c.err)
	}
	if c.retract {
		// A delete in the format before schemas: its identity is what
		// remains of the row.
		kind = pstream.KindDelete
		for _, l := range c.leaf[c.groups+1:] {
			c.row[l] = c.nulls[l]
		}
	}
	for i := range required {
		if !c.seen[i] {
			return 0, fmt.Errorf("%s has no %q: a result of output %s has %s", what, c.cols[i].Name, c.src.Result.Output, c.columnList(required))
		}
	}
	c.ms = c.row[c.leaf[c.groups]].Int64()
	commonValues(c.row, c.common, rec, c.ms)
	c.row[c.kind] = parquet.ByteArrayValue(kindText[kind]).Level(0, 0, c.kind)
	return c.ms, nil
}

// member reads one member of the object being decoded into the row.
func (c *resultCodec) member(k []byte, v *fastjson.Value) {
	if c.err != nil {
		return
	}
	i := c.column(k)
	if i < 0 {
		if c.limit == len(c.cols) {
			c.legacy(k, v)
		}
		return // not a column: ignored, as the output's consumers ignore it
	}
	c.seen[i] = true
	col, l := c.cols[i], c.leaf[i]
	def := 0
	if i > c.groups {
		def = 1 // an optional column's value
	}
	switch {
	case i < c.groups:
		if v.Type() != fastjson.TypeString {
			c.err = fmt.Errorf("group field %q is %s, want a string", col.Name, v.Type())
			return
		}
		c.row[l] = parquet.ByteArrayValue(v.GetStringBytes()).Level(0, def, l)
	case i < c.groups+c.bounds:
		ms, err := readTimestamp(v)
		if err != nil {
			c.err = fmt.Errorf("%s: %w", col.Name, err)
			return
		}
		c.row[l] = parquet.Int64Value(ms).Level(0, def, l)
	default:
		if v.Type() == fastjson.TypeNull {
			return // the row holds a null already
		}
		x, err := c.cell(col.Type, v)
		if err != nil {
			c.err = fmt.Errorf("%s: %w", col.Name, err)
			return
		}
		c.row[l] = x.Level(0, def, l)
	}
}

// legacy reads the members of the result format that Pulse wrote before
// schemas, as stream.RecordDecoder does, so that records still in a
// result topic are archived: the group fields in an object "key", and
// "retract":true for a delete.
func (c *resultCodec) legacy(k []byte, v *fastjson.Value) {
	switch {
	case string(k) == "retract" && v.Type() == fastjson.TypeTrue:
		c.retract = true
	case string(k) == "key" && v.Type() == fastjson.TypeObject:
		obj, _ := v.Object()
		obj.Visit(func(g []byte, x *fastjson.Value) {
			if i, ok := c.byName[string(g)]; ok && i < c.groups && c.err == nil {
				c.member(g, x) // as a flat group field
			}
		})
	}
}

// column returns the index of the column named k, or -1. The members of a
// record come in the schema's order: the next column is tried first.
func (c *resultCodec) column(k []byte) int {
	if c.next < c.limit && c.cols[c.next].Name == string(k) {
		c.next++
		return c.next - 1
	}
	if i, ok := c.byName[string(k)]; ok && i < c.limit {
		c.next = i + 1
		return i
	}
	return -1
}

// maxSafeInt is the largest whole number a float64 holds exactly: the
// bound of an int64 column, as stream.RecordDecoder checks it.
const maxSafeInt = 1 << 53

// cell converts a value column's non-null JSON value, of the JSON type
// stream's appendCell writes for t.
func (c *resultCodec) cell(t pipeline.ColumnType, v *fastjson.Value) (parquet.Value, error) {
	jt := v.Type()
	switch t {
	case pstream.TypeAny:
		n := len(c.text)
		switch jt {
		case fastjson.TypeString:
			// Escaped as JSON wants (fastjson's MarshalTo writes Go escapes).
			b := v.GetStringBytes()
			c.text = event.AppendJSONString(c.text, unsafe.String(unsafe.SliceData(b), len(b)))
		case fastjson.TypeNumber, fastjson.TypeTrue, fastjson.TypeFalse:
			c.text = v.MarshalTo(c.text)
		default:
			return parquet.Value{}, fmt.Errorf("is %s, want a string, a number or a boolean", jt)
		}
		return parquet.ByteArrayValue(c.text[n:len(c.text):len(c.text)]), nil
	case pipeline.TypeString:
		if jt == fastjson.TypeString {
			return parquet.ByteArrayValue(v.GetStringBytes()), nil
		}
	case pipeline.TypeInt64, pipeline.TypeFloat64, pipeline.TypeDecimal:
		if jt != fastjson.TypeNumber {
			break
		}
		f := v.GetFloat64()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return parquet.Value{}, fmt.Errorf("%s is out of range", v)
		}
		if t != pipeline.TypeInt64 {
			return parquet.DoubleValue(f), nil
		}
		if f != math.Trunc(f) || math.Abs(f) > maxSafeInt {
			return parquet.Value{}, fmt.Errorf("%s is not a whole number up to 2^53", v)
		}
		return parquet.Int64Value(int64(f)), nil
	case pipeline.TypeBool:
		if jt == fastjson.TypeTrue || jt == fastjson.TypeFalse {
			return parquet.BooleanValue(jt == fastjson.TypeTrue), nil
		}
	case pipeline.TypeTimestamp:
		ms, err := readTimestamp(v)
		if err != nil {
			return parquet.Value{}, err
		}
		return parquet.Int64Value(ms), nil
	}
	return parquet.Value{}, fmt.Errorf("is %s, want a %s", jt, t)
}

// readTimestamp reads an RFC 3339 string, as the result topic writes a
// timestamp, as ms since the epoch.
func readTimestamp(v *fastjson.Value) (int64, error) {
	if v.Type() != fastjson.TypeString {
		return 0, fmt.Errorf("is %s, want an RFC 3339 time string", v.Type())
	}
	b := v.GetStringBytes()
	t, err := time.Parse(time.RFC3339Nano, unsafe.String(unsafe.SliceData(b), len(b)))
	if err != nil {
		return 0, fmt.Errorf("%q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", b)
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return 0, fmt.Errorf("%q is outside the years 0001 to 9999 (UTC)", b)
	}
	return t.UnixMilli(), nil
}

// columnList names the first n columns with their types, for errors.
func (c *resultCodec) columnList(n int) string {
	var b strings.Builder
	for i, col := range c.cols[:n] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(col.Name + " (" + col.Type.String() + ")")
	}
	return b.String()
}

func (c *resultCodec) newWriter(out io.Writer, opts ...parquet.WriterOption) rowWriter {
	return &resultWriter{Writer: parquet.NewWriter(out, append([]parquet.WriterOption{c.s}, opts...)...), c: c}
}

// resultWriter writes result rows. The strings of a row point into the
// codec's parser, which the next record overwrites: add copies them into
// the writer's arena, which lives until the rows are written.
type resultWriter struct {
	*parquet.Writer
	c *resultCodec
	rowBuffer
	arena []byte // the text of the rows buffered
}

func (w *resultWriter) add() {
	c := w.c
	row := w.next(c.ncols)
	copy(row, c.row)
	for _, l := range c.bytes {
		v := row[l]
		if v.IsNull() {
			continue
		}
		// A slice of the arena stays valid when the arena grows: the old
		// array lives on while rows point into it.
		b := v.ByteArray()
		n := len(w.arena)
		w.arena = append(w.arena, b...)
		row[l] = parquet.ByteArrayValue(w.arena[n:len(w.arena):len(w.arena)]).Level(0, v.DefinitionLevel(), l)
	}
}

func (w *resultWriter) flush() (int, error) {
	written, err := w.write(w.Writer, w.c.ncols)
	w.arena = w.arena[:0]
	return written, err
}

// orderedGroup is a group node whose fields keep the order they were
// added in (parquet.Group orders them by name): a result file's columns
// come in the order of the output's results.
type orderedGroup []parquet.Field

type orderedField struct {
	parquet.Node
	name  string
	index int
}

func (f orderedField) Name() string { return f.name }

// Value returns the field of a struct of the group's GoType.
func (f orderedField) Value(base reflect.Value) reflect.Value {
	for base.Kind() == reflect.Pointer || base.Kind() == reflect.Interface {
		if base.IsNil() {
			return reflect.Value{}
		}
		base = base.Elem()
	}
	return base.Field(f.index)
}

func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) String() string              { return parquet.NewSchema("", g).String() }

// GoType is a struct of one field per column, in order.
func (g orderedGroup) GoType() reflect.Type {
	fs := make([]reflect.StructField, len(g))
	for i, f := range g {
		fs[i] = reflect.StructField{Name: fmt.Sprintf("F%d", i), Type: f.GoType(), Tag: reflect.StructTag(fmt.Sprintf("parquet:%q", f.Name()))}
	}
	return reflect.StructOf(fs)
}

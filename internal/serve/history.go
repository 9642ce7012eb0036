package serve

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/pulsehq/pulse/internal/archive"
	"github.com/pulsehq/pulse/internal/event"
)

// History answers GET /v1/streams/{stream}/history from the archive.
type History struct {
	Reader *archive.Reader
	// Streams are the archived streams by name.
	Streams map[string]archive.Source
}

// History page sizes: the default and the most rows of one answer.
const (
	HistoryDefaultLimit = 10_000
	HistoryMaxLimit     = 100_000
)

// historyQuery is a parsed history request.
type historyQuery struct {
	read   archive.ReadQuery
	cols   []string // leaf columns written, in schema order unless fields= orders them
	where  []whereEq
	limit  int
	format string
}

// whereEq is one where=COLUMN=VALUE: the column's text equals VALUE.
type whereEq struct{ col, val string }

func parseHistory(src archive.Source, q url.Values, now time.Time) (historyQuery, error) {
	hq := historyQuery{read: archive.ReadQuery{Stream: src.Stream}, limit: HistoryDefaultLimit, format: q.Get("format")}
	var err error
	if q.Get("from") == "" {
		return hq, errors.New("from is required: give from=<RFC 3339 time or Unix ms> (and to=, default now)")
	}
	if hq.read.From, err = parseBound("from", q.Get("from")); err != nil {
		return hq, err
	}
	hq.read.To = now.UnixMilli()
	if v := q.Get("to"); v != "" {
		if hq.read.To, err = parseBound("to", v); err != nil {
			return hq, err
		}
	}
	if hq.read.To <= hq.read.From {
		return hq, fmt.Errorf("to (%d ms) must be after from (%d ms): the range is [from, to)", hq.read.To, hq.read.From)
	}
	switch hq.format {
	case "":
		hq.format = "json"
	case "json", "csv":
	default:
		return hq, fmt.Errorf("format=%q is unknown: use json or csv", hq.format)
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return hq, fmt.Errorf("limit=%q must be a positive whole number (default %d, at most %d)", l, HistoryDefaultLimit, HistoryMaxLimit)
		}
		hq.limit = min(n, HistoryMaxLimit)
	}
	schema, err := archive.SchemaOf(src)
	if err != nil {
		return hq, err
	}
	all := archive.Columns(schema)
	known := func(c string) error {
		if !slices.Contains(all, c) {
			return fmt.Errorf("stream %s has no column %q: its columns are %s", src.Stream, c, strings.Join(all, ", "))
		}
		return nil
	}
	hq.cols = all
	if f := q.Get("fields"); f != "" {
		hq.cols = strings.Split(f, ",")
		for _, c := range hq.cols {
			if err := known(c); err != nil {
				return hq, fmt.Errorf("fields: %w", err)
			}
		}
	}
	for _, w := range q["where"] {
		col, val, ok := strings.Cut(w, "=")
		if !ok {
			return hq, fmt.Errorf("where=%q: use where=COLUMN=VALUE, e.g. where=sensor_id=S-1", w)
		}
		if err := known(col); err != nil {
			return hq, fmt.Errorf("where: %w", err)
		}
		hq.where = append(hq.where, whereEq{col, val})
	}
	if a := q.Get("after"); a != "" {
		if hq.read.After, err = parsePosition(a); err != nil {
			return hq, fmt.Errorf("after=%q is %v", a, err)
		}
	}
	return hq, nil
}

// positionVersion leads every history token.
const positionVersion = 1

// positionToken encodes p as an opaque token: base64url of a version
// byte, the file name's length and bytes, and the row.
func positionToken(p archive.Position) string {
	b := []byte{positionVersion}
	b = binary.AppendUvarint(b, uint64(len(p.Name)))
	b = append(b, p.Name...)
	b = binary.AppendVarint(b, p.Row)
	return base64.RawURLEncoding.EncodeToString(b)
}

var errPosition = errors.New("not a token this API returned: pass the next value of the previous page unchanged")

func parsePosition(tok string) (archive.Position, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) == 0 || b[0] != positionVersion || len(tok) > 8<<10 {
		return archive.Position{}, errPosition
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return archive.Position{}, errPosition
	}
	p := archive.Position{Name: string(b[k : k+int(n)])}
	row, k2 := binary.Varint(b[k+int(n):])
	if k2 <= 0 || row < 0 {
		return archive.Position{}, errPosition
	}
	p.Row = row
	return p, nil
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	h := s.cfg.History
	name := r.PathValue("stream")
	src, ok := archive.Source{}, false
	if h != nil {
		src, ok = h.Streams[name]
	}
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("stream %q is not archived: history covers the streams the running pipelines read, with --archive on", name)})
		return
	}
	hq, err := parseHistory(src, r.URL.Query(), time.Now())
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	out := newHistoryWriter(w, hq)
	var st archive.ReadStats
	var idx []int   // leaf column per output column, of the current schema
	var where []int // leaf column per where
	var last *parquet.Schema
	n := 0
	next := ""
	var at archive.Position
	rq := hq.read // the reader decodes only these columns and applies the where on string ones
	rq.Columns = append(slices.Clone(hq.cols), whereCols(hq.where)...)
	for _, wc := range hq.where {
		rq.Where = append(rq.Where, archive.Equal{Column: wc.col, Value: wc.val})
	}
	err = h.Reader.Read(r.Context(), rq, &st, func(sch *parquet.Schema, row parquet.Row, pos archive.Position) error {
		if sch != last {
			last, idx, where = sch, leafIndexes(sch, hq.cols), leafIndexes(sch, whereCols(hq.where))
		}
		for i, wc := range hq.where {
			if valueText(nil, cell(row, where[i]), false) != wc.val {
				return nil
			}
		}
		if n == hq.limit {
			next = positionToken(at) // a further row exists: the page ends after the last one written
			return archive.ErrStop
		}
		n++
		at = pos
		return out.row(row, idx)
	})
	if err != nil && n == 0 && !out.started {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "read the archive: " + err.Error()})
		return
	}
	if err != nil {
		s.cfg.Logger.Warn("history read cut off", "stream", name, "err", err)
	}
	out.end(next)
}

func whereCols(ws []whereEq) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.col
	}
	return out
}

// leafIndexes returns the leaf column index of each name in s (-1: the
// file has no such column).
func leafIndexes(s *parquet.Schema, names []string) []int {
	out := make([]int, len(names))
	for i, n := range names {
		out[i] = -1
		if l, ok := s.Lookup(n); ok {
			out[i] = l.ColumnIndex
		}
	}
	return out
}

// cell returns the value of leaf column col in row (null if absent).
func cell(row parquet.Row, col int) parquet.Value {
	for _, v := range row {
		if v.Column() == col {
			return v
		}
	}
	return parquet.NullValue()
}

// valueText appends v as text: times (event_time) in RFC 3339 with
// milliseconds, strings as they are (quoted when quote), numbers in
// their shortest form; nulls append nothing.
func valueText(buf []byte, v parquet.Value, quote bool) string {
	return string(appendValue(buf, v, false, quote))
}

func appendValue(buf []byte, v parquet.Value, isTime, quote bool) []byte {
	switch {
	case v.IsNull():
		return buf
	case isTime:
		t := time.UnixMilli(v.Int64()).UTC().Format("2006-01-02T15:04:05.000Z07:00")
		if quote {
			return event.AppendJSONString(buf, t)
		}
		return append(buf, t...)
	}
	switch v.Kind() {
	case parquet.ByteArray, parquet.FixedLenByteArray:
		if quote {
			return event.AppendJSONString(buf, string(v.ByteArray()))
		}
		return append(buf, v.ByteArray()...)
	case parquet.Int32:
		return strconv.AppendInt(buf, int64(v.Int32()), 10)
	case parquet.Int64:
		return strconv.AppendInt(buf, v.Int64(), 10)
	case parquet.Double:
		return strconv.AppendFloat(buf, v.Double(), 'g', -1, 64)
	case parquet.Float:
		return strconv.AppendFloat(buf, float64(v.Float()), 'g', -1, 32)
	case parquet.Boolean:
		return strconv.AppendBool(buf, v.Boolean())
	}
	return append(buf, v.String()...)
}

// historyFlushRows is how many rows are written between flushes.
const historyFlushRows = 1000

// historyWriter streams one answer, JSON or CSV.
type historyWriter struct {
	w       http.ResponseWriter
	q       historyQuery
	csv     *csv.Writer
	buf     []byte
	rec     []string
	rows    int
	started bool
}

func newHistoryWriter(w http.ResponseWriter, q historyQuery) *historyWriter {
	return &historyWriter{w: w, q: q}
}

func (hw *historyWriter) start() {
	hw.started = true
	if hw.q.format == "csv" {
		hw.w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		hw.w.Header().Set("Trailer", "Pulse-Next")
		hw.csv = csv.NewWriter(hw.w)
		hw.csv.Write(hw.q.cols)
		return
	}
	hw.w.Header().Set("Content-Type", "application/json")
	hw.buf = append(hw.buf, `{"stream":`...)
	hw.buf = event.AppendJSONString(hw.buf, hw.q.read.Stream)
	hw.buf = append(hw.buf, `,"events":[`...)
}

func (hw *historyWriter) row(row parquet.Row, idx []int) error {
	if !hw.started {
		hw.start()
	}
	if hw.csv != nil {
		hw.rec = hw.rec[:0]
		for i, c := range idx {
			v := cell(row, c)
			t := string(appendValue(hw.buf[:0], v, hw.q.cols[i] == archive.ColEventTime, false))
			if v.Kind() == parquet.ByteArray && !v.IsNull() {
				t = csvText(t)
			}
			hw.rec = append(hw.rec, t)
		}
		hw.csv.Write(hw.rec)
	} else {
		if hw.rows > 0 {
			hw.buf = append(hw.buf, ',')
		}
		hw.buf = append(hw.buf, '{')
		first := true
		for i, c := range idx {
			v := cell(row, c)
			if v.IsNull() {
				continue
			}
			if !first {
				hw.buf = append(hw.buf, ',')
			}
			first = false
			hw.buf = event.AppendJSONString(hw.buf, hw.q.cols[i])
			hw.buf = append(hw.buf, ':')
			hw.buf = appendValue(hw.buf, v, hw.q.cols[i] == archive.ColEventTime, true)
		}
		hw.buf = append(hw.buf, '}')
	}
	hw.rows++
	if hw.rows%historyFlushRows == 0 {
		return hw.flush()
	}
	return nil
}

func (hw *historyWriter) flush() error {
	if hw.csv != nil {
		hw.csv.Flush()
		if err := hw.csv.Error(); err != nil {
			return err
		}
	} else if len(hw.buf) > 0 {
		if _, err := hw.w.Write(hw.buf); err != nil {
			return err
		}
		hw.buf = hw.buf[:0]
	}
	if f, ok := hw.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// end writes the answer's tail with the next token ("" when complete).
func (hw *historyWriter) end(next string) {
	if !hw.started {
		hw.start()
	}
	if hw.csv != nil {
		hw.csv.Flush()
		if next != "" {
			hw.w.Header().Set("Pulse-Next", next)
		}
		return
	}
	hw.buf = append(hw.buf, ']')
	if next != "" {
		hw.buf = append(hw.buf, `,"next":`...)
		hw.buf = event.AppendJSONString(hw.buf, next)
	}
	hw.buf = append(hw.buf, "}\n"...)
	hw.w.Write(hw.buf)
}

package serve

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/archive"
	"github.com/pulsehq/pulse/internal/event"
)

// History answers GET /v1/streams/{stream}/history from the archive's
// published files, then from the tail: the records of the stream's topic
// past the files (see archive.Tail), so a range that ended a moment ago
// is complete.
type History struct {
	Reader *archive.Reader
	// Streams are the archived streams by name.
	Streams map[string]archive.Source
	// Kafka are the client options reaching the streams' topics (seed
	// brokers), for the tail. Nil: the files only (an archive read
	// without its cluster; events not yet published are missing).
	Kafka []kgo.Opt
	// TailTimeout bounds one request's read of the tail (default 20 s,
	// and at most two thirds of the server's WriteTimeout).
	TailTimeout time.Duration
	// TailMaxRecords bounds the records one request reads from Kafka
	// (default archive.TailMaxRecords); a page that reaches it ends with
	// a next token, with fewer rows than its limit if need be.
	TailMaxRecords int64
}

// History page sizes: the default and the most rows of one answer.
const (
	HistoryDefaultLimit = 10_000
	HistoryMaxLimit     = 100_000
)

// historyQuery is a parsed history request.
type historyQuery struct {
	read   archive.ReadQuery
	after  historyCursor
	schema *parquet.Schema // the archive's
	cols   []string        // leaf columns written, in schema order unless fields= orders them
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
	case "json", "csv", "parquet":
	default:
		return hq, fmt.Errorf("format=%q is unknown: use json, csv or parquet", hq.format)
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return hq, fmt.Errorf("limit=%q must be a positive whole number (default %d, at most %d)", l, HistoryDefaultLimit, HistoryMaxLimit)
		}
		hq.limit = min(n, HistoryMaxLimit)
	}
	if hq.schema, err = archive.SchemaOf(src); err != nil {
		return hq, err
	}
	all := archive.Columns(hq.schema)
	known := func(c string) error {
		if !slices.Contains(all, c) {
			return fmt.Errorf("stream %s has no column %q: its columns are %s", src.Stream, c, strings.Join(all, ", "))
		}
		return nil
	}
	hq.cols = all
	if f := q.Get("fields"); f != "" {
		hq.cols = strings.Split(f, ",")
		for i, c := range hq.cols {
			if err := known(c); err != nil {
				return hq, fmt.Errorf("fields: %w", err)
			}
			if slices.Contains(hq.cols[:i], c) {
				return hq, fmt.Errorf("fields: column %q is named twice: name each column once", c)
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
		if hq.after, err = parseCursor(a); err != nil {
			return hq, fmt.Errorf("after=%q is %v", a, err)
		}
		hq.read.After = hq.after.file
	}
	return hq, nil
}

// historyCursor is where a history page ends and the next begins: in the
// files at the row file, or in the tail.
//
// In the files, ends are the archived ends (by partition; To 0: no file)
// of the first page's listing: files published since are skipped, their
// events are in the tail, which starts there (archive.TailStart). A
// cursor of a version 1 token has no ends: they come from the current
// listing. In the tail, next and rest are where each partition goes on
// (archive.TailPosition, archive.RollRest).
type historyCursor struct {
	tail bool
	file archive.Position
	ends []archive.ArchivedEnd
	next []int64
	rest []archive.RollRest
}

// Token versions: 1 is a file position (tokens of earlier releases, still
// read), 2 a cursor with the archived ends or the tail's offsets.
const (
	positionVersion = 1
	cursorVersion   = 2
)

// cursorToken encodes c as an opaque token: base64url of the version
// byte, then 0 (files), the file name's length and bytes, the row, the
// number of partitions and each one's archived end (from, to, last hour);
// or 1 (tail), the number of partitions and each one's next offset and
// roll rest (to, min time).
func cursorToken(c historyCursor) string {
	b := []byte{cursorVersion, 0}
	if c.tail {
		b[1] = 1
		b = binary.AppendUvarint(b, uint64(len(c.next)))
		for p, o := range c.next {
			var r archive.RollRest
			if p < len(c.rest) {
				r = c.rest[p]
			}
			b = binary.AppendUvarint(b, uint64(o))
			b = binary.AppendUvarint(b, uint64(r.To))
			b = binary.AppendVarint(b, r.MinTime)
		}
	} else {
		b = binary.AppendUvarint(b, uint64(len(c.file.Name)))
		b = append(b, c.file.Name...)
		b = binary.AppendVarint(b, c.file.Row)
		b = binary.AppendUvarint(b, uint64(len(c.ends)))
		for _, e := range c.ends {
			b = binary.AppendUvarint(b, uint64(e.From))
			b = binary.AppendUvarint(b, uint64(e.To))
			b = binary.AppendVarint(b, e.LastHour)
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

var errPosition = errors.New("not a token this API returned: pass the next value of the previous page unchanged")

// tokenReader reads a token's numbers; a malformed one sets bad.
type tokenReader struct {
	b   []byte
	bad bool
}

func (r *tokenReader) uint() int64 {
	v, k := binary.Uvarint(r.b)
	if k <= 0 || v > math.MaxInt64 {
		r.bad = true
		return 0
	}
	r.b = r.b[k:]
	return int64(v)
}

func (r *tokenReader) int() int64 {
	v, k := binary.Varint(r.b)
	if k <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[k:]
	return v
}

// count reads a number of partitions, each of at least three bytes.
func (r *tokenReader) count() int {
	n := r.uint()
	if n > int64(len(r.b)/3) {
		r.bad = true
		return 0
	}
	return int(n)
}

func parseCursor(tok string) (historyCursor, error) {
	var c historyCursor
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) < 2 || len(tok) > 8<<10 {
		return c, errPosition
	}
	version := raw[0]
	r := &tokenReader{b: raw[1:]}
	if version == cursorVersion {
		c.tail = r.b[0] == 1
		if r.b[0] > 1 {
			return c, errPosition
		}
		r.b = r.b[1:]
	} else if version != positionVersion {
		return c, errPosition
	}
	if c.tail {
		n := r.count()
		c.next, c.rest = make([]int64, n), make([]archive.RollRest, n)
		for p := 0; p < n && !r.bad; p++ {
			c.next[p] = r.uint()
			c.rest[p] = archive.RollRest{To: r.uint(), MinTime: r.int()}
		}
	} else {
		n := r.uint()
		if r.bad || n > int64(len(r.b)) {
			return c, errPosition
		}
		c.file.Name = string(r.b[:n])
		r.b = r.b[n:]
		if c.file.Row = r.int(); c.file.Row < 0 {
			return c, errPosition
		}
		if version == cursorVersion {
			n := r.count()
			c.ends = make([]archive.ArchivedEnd, n)
			for p := 0; p < n && !r.bad; p++ {
				c.ends[p] = archive.ArchivedEnd{From: r.uint(), To: r.uint(), LastHour: r.int()}
			}
		}
	}
	if r.bad || len(r.b) != 0 {
		return c, errPosition
	}
	return c, nil
}

// errUnavailable is a stream whose topic cannot be read: a 503.
var errUnavailable = errors.New("kafka unavailable")

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
	if hq.after.tail && h.Kafka == nil {
		badRequest(w, "after=%q continues in Kafka, which this server does not read: pass it to the server that returned it", r.URL.Query().Get("after"))
		return
	}
	var tail *archive.Tail
	if h.Kafka != nil {
		timeout := min(cmp.Or(h.TailTimeout, 20*time.Second), s.cfg.WriteTimeout*2/3)
		octx, cancel := context.WithTimeout(r.Context(), timeout)
		tail, err = archive.OpenTail(octx, h.Kafka, src, timeout)
		cancel()
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": fmt.Sprintf(
				"stream %s is archived, but the events not yet in an archive file are in topic %s, which cannot be read now (%v): check that Kafka is up and reachable (--brokers), then retry",
				name, src.Topic, err)})
			return
		}
		defer tail.Close()
	}
	out, err := newHistoryWriter(w, hq)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "history answer: " + err.Error()})
		return
	}
	hr := &historyRead{q: hq, out: out}
	err = hr.run(r.Context(), h, tail)
	if err != nil && !out.started {
		code, msg := http.StatusInternalServerError, "read the archive: "+err.Error()
		if errors.Is(err, errUnavailable) {
			code, msg = http.StatusServiceUnavailable, fmt.Sprintf("stream %s: %v: check that Kafka is up and reachable (--brokers), then retry", name, err)
		}
		writeJSON(w, code, map[string]string{"error": msg})
		return
	}
	if err != nil {
		// The answer has begun: it ends after its last row, with the
		// token of the position there, and the next page goes on.
		s.cfg.Logger.Warn("history read cut off; the page ends with a next token", "stream", name, "rows", hr.n, "err", err)
		hr.next = cursorToken(hr.at)
	}
	if err := out.end(hr.next); err != nil {
		s.cfg.Logger.Warn("history answer not completed", "stream", name, "err", err)
	}
}

// historyRead is one page: the files, then the tail.
type historyRead struct {
	q     historyQuery
	out   *historyWriter
	n     int           // rows written
	at    historyCursor // after the last row written
	next  string        // the page's next token
	idx   []int         // leaf column per output column, of the current schema
	where []int         // leaf column per where
	last  *parquet.Schema
}

// accept writes row, or ends the page (archive.ErrStop) with the token of
// the last row written when it is one row more than the limit.
func (hr *historyRead) accept(sch *parquet.Schema, row parquet.Row, at func() historyCursor) error {
	if sch != hr.last {
		hr.last, hr.idx, hr.where = sch, leafIndexes(sch, hr.q.cols), leafIndexes(sch, whereCols(hr.q.where))
	}
	for i, wc := range hr.q.where {
		if valueText(nil, cell(row, hr.where[i]), false) != wc.val {
			return nil
		}
	}
	if hr.n == hr.q.limit {
		hr.next = cursorToken(hr.at) // a further row exists: the page ends after the last one written
		return archive.ErrStop
	}
	hr.n++
	hr.at = at()
	return hr.out.row(row, hr.idx)
}

func (hr *historyRead) run(ctx context.Context, h *History, tail *archive.Tail) error {
	q := hr.q
	hr.at = q.after
	next, rest := q.after.next, q.after.rest
	if !q.after.tail {
		ends := q.after.ends
		if ends == nil {
			// The first page, or a version 1 token: the archived ends of
			// this listing. Files the reader lists later (published
			// meanwhile) hold events the tail has: their rows are skipped
			// below.
			names, err := h.Reader.Files(ctx, q.read.Stream, math.MinInt64, math.MaxInt64)
			if err != nil {
				return err
			}
			listed := archive.ArchivedEnds(names, q.read.Stream)
			n := 0
			if tail != nil {
				n = tail.Partitions()
			}
			for p := range listed {
				n = max(n, int(p)+1)
			}
			ends = make([]archive.ArchivedEnd, n)
			for p, e := range listed {
				ends[p] = e
			}
			hr.at.ends = ends
		}
		var st archive.ReadStats
		var part archive.Part
		pname := ""
		stopped := false
		rq := q.read // the reader decodes only these columns and applies the where on string ones
		rq.Columns = append(slices.Clone(q.cols), whereCols(q.where)...)
		for _, wc := range q.where {
			rq.Where = append(rq.Where, archive.Equal{Column: wc.col, Value: wc.val})
		}
		err := h.Reader.Read(ctx, rq, &st, func(sch *parquet.Schema, row parquet.Row, pos archive.Position) error {
			if pos.Name != pname {
				var err error
				if part, err = archive.ParsePart(pos.Name); err != nil {
					return err
				}
				pname = pos.Name
			}
			if p := int(part.Partition); tail != nil && (p >= len(ends) || part.From >= ends[p].To || ends[p].InLastRoll(part)) {
				return nil // published after the page's listing: in the tail
			}
			err := hr.accept(sch, row, func() historyCursor { return historyCursor{file: pos, ends: ends} })
			stopped = errors.Is(err, archive.ErrStop)
			return err
		})
		if err != nil || stopped || tail == nil {
			return err
		}
		next, rest = make([]int64, len(ends)), make([]archive.RollRest, len(ends))
		for p, e := range ends {
			next[p], rest[p] = archive.TailStart(e, e.To > 0, q.read.To)
		}
		hr.at = historyCursor{tail: true, next: next, rest: rest}
	}
	var st archive.TailStats
	stopped := false
	end, err := tail.Read(ctx, archive.TailQuery{From: q.read.From, To: q.read.To, Start: archive.TailPosition{Next: next}, Rest: rest, MaxRecords: h.TailMaxRecords}, &st,
		func(sch *parquet.Schema, row parquet.Row, at *archive.TailPosition) error {
			err := hr.accept(sch, row, func() historyCursor { return historyCursor{tail: true, next: at.Clone().Next, rest: rest} })
			stopped = errors.Is(err, archive.ErrStop)
			return err
		})
	if err != nil {
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
	if !stopped && !tail.Done(end) {
		// The read reached its bound of records: the page ends there.
		hr.next = cursorToken(historyCursor{tail: true, next: end.Next, rest: rest})
	}
	return nil
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

// cell returns the value of leaf column col in row (null if absent). A
// row of every column holds column i at i; a projected one is scanned.
func cell(row parquet.Row, col int) parquet.Value {
	if col >= 0 && col < len(row) && row[col].Column() == col {
		return row[col]
	}
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
	return string(appendValue(buf, v, nil, quote))
}

// appendValue appends v; with tc, v is a time (ms) written by tc.
func appendValue(buf []byte, v parquet.Value, tc *timeText, quote bool) []byte {
	switch {
	case v.IsNull():
		return buf
	case tc != nil:
		// RFC 3339 has nothing JSON escapes: quoted as it is.
		if quote {
			buf = append(buf, '"')
		}
		buf = tc.append(buf, v.Int64())
		if quote {
			buf = append(buf, '"')
		}
		return buf
	}
	switch v.Kind() {
	case parquet.ByteArray, parquet.FixedLenByteArray:
		if quote {
			b := v.ByteArray()
			return event.AppendJSONString(buf, unsafe.String(unsafe.SliceData(b), len(b))) // read only, during the call
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

// timeText writes times in UTC as RFC 3339 with milliseconds
// (2026-03-01T12:00:00.250Z), formatting each second once: the events of
// an answer come in time order within a file.
type timeText struct {
	sec    int64
	prefix []byte // sec up to its seconds, "2026-03-01T12:00:00"
}

func (tc *timeText) append(buf []byte, ms int64) []byte {
	sec := ms / 1000
	if ms%1000 < 0 {
		sec--
	}
	if tc.prefix == nil || sec != tc.sec {
		tc.sec, tc.prefix = sec, time.Unix(sec, 0).UTC().AppendFormat(tc.prefix[:0], "2006-01-02T15:04:05")
	}
	m := ms - sec*1000
	return append(append(buf, tc.prefix...), '.', byte('0'+m/100), byte('0'+m/10%10), byte('0'+m%10), 'Z')
}

// historyFlushRows is how many rows are written between flushes.
const historyFlushRows = 1000

// historyWriter streams one answer, JSON, CSV or Parquet.
type historyWriter struct {
	w       http.ResponseWriter
	q       historyQuery
	csv     *csv.Writer
	pq      *parquetAnswer
	buf     []byte
	rec     []string
	keys    [][]byte    // per column, its JSON member name and colon
	times   []*timeText // per column, its writer if it is a time
	rows    int
	started bool
}

func newHistoryWriter(w http.ResponseWriter, q historyQuery) (*historyWriter, error) {
	hw := &historyWriter{w: w, q: q}
	if q.format == "parquet" {
		var err error
		if hw.pq, err = newParquetAnswer(q.schema, q.cols); err != nil {
			return nil, err
		}
	}
	return hw, nil
}

func (hw *historyWriter) start() {
	hw.started = true
	hw.times = make([]*timeText, len(hw.q.cols))
	for i, c := range hw.q.cols {
		if c == archive.ColEventTime {
			hw.times[i] = &timeText{}
		}
	}
	switch hw.q.format {
	case "csv":
		hw.w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		hw.w.Header().Set("Trailer", "Pulse-Next")
		hw.csv = csv.NewWriter(hw.w)
		hw.csv.Write(hw.q.cols)
	case "parquet":
		hw.w.Header().Set("Content-Type", "application/vnd.apache.parquet")
		hw.w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.parquet"`, hw.q.read.Stream))
		hw.w.Header().Set("Trailer", "Pulse-Next")
		hw.pq.start(hw.w, hw.q.read.Stream)
	default:
		hw.w.Header().Set("Content-Type", "application/json")
		hw.buf = append(hw.buf, `{"stream":`...)
		hw.buf = event.AppendJSONString(hw.buf, hw.q.read.Stream)
		hw.buf = append(hw.buf, `,"events":[`...)
		for _, c := range hw.q.cols {
			hw.keys = append(hw.keys, append(event.AppendJSONString(nil, c), ':'))
		}
	}
}

func (hw *historyWriter) row(row parquet.Row, idx []int) error {
	if !hw.started {
		hw.start()
	}
	switch {
	case hw.pq != nil:
		if err := hw.pq.row(row, idx); err != nil {
			return err
		}
	case hw.csv != nil:
		hw.rec = hw.rec[:0]
		for i, c := range idx {
			v := cell(row, c)
			t := string(appendValue(hw.buf[:0], v, hw.times[i], false))
			if v.Kind() == parquet.ByteArray && !v.IsNull() {
				t = csvText(t)
			}
			hw.rec = append(hw.rec, t)
		}
		hw.csv.Write(hw.rec)
	default:
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
			hw.buf = append(hw.buf, hw.keys[i]...)
			hw.buf = appendValue(hw.buf, v, hw.times[i], true)
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
	} else if hw.pq == nil && len(hw.buf) > 0 {
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

// end writes the answer's end with the next token ("" when complete).
func (hw *historyWriter) end(next string) error {
	if !hw.started {
		hw.start()
	}
	switch {
	case hw.pq != nil:
		if next != "" {
			hw.w.Header().Set("Pulse-Next", next)
		}
		return hw.pq.end(next)
	case hw.csv != nil:
		hw.csv.Flush()
		if next != "" {
			hw.w.Header().Set("Pulse-Next", next)
		}
		return hw.csv.Error()
	}
	hw.buf = append(hw.buf, ']')
	if next != "" {
		hw.buf = append(hw.buf, `,"next":`...)
		hw.buf = event.AppendJSONString(hw.buf, next)
	}
	hw.buf = append(hw.buf, "}\n"...)
	_, err := hw.w.Write(hw.buf)
	return err
}

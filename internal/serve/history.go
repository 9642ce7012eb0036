package serve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/archive"
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
	text  []byte // a where cell's text
}

// accept writes row, or ends the page (archive.ErrStop) with the token of
// the last row written when it is one row more than the limit; at sets
// the cursor after row (in place: it runs for every row written).
func (hr *historyRead) accept(sch *parquet.Schema, row parquet.Row, at func(*historyCursor)) error {
	if sch != hr.last {
		hr.last, hr.idx, hr.where = sch, leafIndexes(sch, hr.q.cols), leafIndexes(sch, whereCols(hr.q.where))
	}
	for i, wc := range hr.q.where {
		if hr.text = appendValue(hr.text[:0], cell(row, hr.where[i]), nil, false); string(hr.text) != wc.val {
			return nil
		}
	}
	if hr.n == hr.q.limit {
		hr.next = cursorToken(hr.at) // a further row exists: the page ends after the last one written
		return archive.ErrStop
	}
	hr.n++
	at(&hr.at)
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
			err := hr.accept(sch, row, func(c *historyCursor) { *c = historyCursor{file: pos, ends: ends} })
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
			err := hr.accept(sch, row, func(c *historyCursor) {
				// A buffer of the cursor's own, not at's, which the read moves on.
				buf := c.next
				if !c.tail || len(buf) != len(at.Next) {
					buf = make([]int64, len(at.Next))
				}
				copy(buf, at.Next)
				*c = historyCursor{tail: true, next: buf, rest: rest}
			})
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

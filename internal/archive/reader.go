package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// Position is where a history read stands: the next row to read is row
// Row (counted from 0 over the whole file) of the archive file Name. The
// zero Position is the start.
type Position struct {
	Name string
	Row  int64
}

// ReadQuery selects the archived events of one stream with an event time
// in [From, To) (Unix milliseconds), starting at After.
type ReadQuery struct {
	Stream   string
	From, To int64
	After    Position
	// Columns are the leaf columns the caller reads (nil: all of them).
	// The rows given to Read's callback hold these, event_time and the
	// Where columns, in leaf order; a column a file lacks is left out.
	// The other columns of a file are not read at all.
	Columns []string
	// Where keeps only the rows whose column equals Value, a null
	// counting as "" (as the history API compares a value's text). The
	// reader applies a condition on a string (BYTE_ARRAY) column, and on
	// a column a file lacks (null throughout); it skips the row groups
	// and pages whose min/max or dictionary exclude Value. A condition
	// on a column of another type is left to the caller.
	Where []Equal
}

// Equal is one condition of ReadQuery.Where: Column equals Value.
type Equal struct{ Column, Value string }

// ReadStats counts what a read opened, for tests and benchmarks.
type ReadStats struct {
	Listed                             int // files whose hour overlaps the range
	Files, RowGroups, RowGroupsSkipped int
	// PagesSkipped are the event_time and Where pages of the row groups
	// read whose min/max exclude them (their rows are not decoded).
	PagesSkipped int
	Rows         int64 // rows whose event_time was decoded, matching or not
}

// Reader reads the archive's files back, in the order of their names
// (hour, then partition, then offsets), pruning by hour folder, by the
// event_time and Where statistics of each row group and of each page
// (the column index), and by the dictionaries of Where columns. It
// decodes only the columns a query needs, column by column, and a
// column's pages only for the rows that match.
type Reader struct{ store Store }

// NewReader returns a reader of the archive in store.
func NewReader(store Store) *Reader { return &Reader{store: store} }

// ErrStop, returned by a Read callback, ends the read without an error.
var ErrStop = errors.New("stop reading")

// Files returns the names of the stream's archive files whose hour
// overlaps [from, to), sorted. It lists only the folders of the range:
// each hour's for a range of a few hours, each day's for up to a month,
// else the stream's.
func (r *Reader) Files(ctx context.Context, stream string, from, to int64) ([]string, error) {
	var prefixes []string
	first, last := HourOf(from), HourOf(to-1)
	switch {
	case to <= from:
		return nil, nil
	case last.Sub(first) < listHours*time.Hour:
		for h := first; !h.After(last); h = h.Add(time.Hour) {
			prefixes = append(prefixes, Part{Stream: stream, Hour: h}.Dir()+"/")
		}
	case last.Sub(first) < listDays*24*time.Hour:
		for d := first.Truncate(24 * time.Hour); !d.After(last); d = d.Add(24 * time.Hour) {
			prefixes = append(prefixes, "stream="+stream+"/date="+d.Format(time.DateOnly)+"/")
		}
	default:
		prefixes = []string{"stream=" + stream + "/"}
	}
	var out []string
	for _, pre := range prefixes {
		names, err := r.store.List(ctx, pre)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			p, err := ParsePart(n)
			if err != nil || p.Stream != stream {
				continue // not an archive file
			}
			h := p.Hour.UnixMilli()
			if h+3600_000 <= from || h >= to {
				continue
			}
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Files lists hour folders for ranges of fewer than listHours hours,
// day folders for fewer than listDays days.
const (
	listHours = 3
	listDays  = 31
)

// Read calls fn for every archived event of q in order, with the file's
// schema, the row (its values carry their leaf column indexes), and the
// position just after it (where a next read continues). fn returning
// ErrStop ends the read. The row is only valid during the call.
func (r *Reader) Read(ctx context.Context, q ReadQuery, st *ReadStats, fn func(s *parquet.Schema, row parquet.Row, next Position) error) error {
	names, err := r.Files(ctx, q.Stream, q.From, q.To)
	if err != nil {
		return err
	}
	st.Listed += len(names)
	fr := &fileReader{q: q, st: st, fn: fn}
	for _, n := range names {
		if q.After.Name != "" && n < q.After.Name {
			continue
		}
		skip := int64(0)
		if n == q.After.Name {
			skip = q.After.Row
		}
		if err := r.readFile(ctx, fr, n, skip); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// fileReader is the state of one Read, reused from file to file.
type fileReader struct {
	q    ReadQuery
	st   *ReadStats
	fn   func(*parquet.Schema, parquet.Row, Position) error
	name string
	pf   *parquet.File

	tleaf  int       // event_time's leaf column
	leaves []int     // the leaf columns read, in order
	maxDef []int     // their maximum definition levels
	cols   []*column // their cursors, by position in leaves
	tcol   *column   // event_time's cursor
	where  []whereCol
	row    parquet.Row
	spare  []*column // cursors to reuse
}

// whereCol is a Where condition on a string column of the file.
type whereCol struct {
	leaf int
	col  *column
	val  []byte
}

func (fr *fileReader) errorf(format string, args ...any) error {
	return fmt.Errorf("read archive file %s: "+format, append([]any{fr.name}, args...)...)
}

// readFile reads one file from row skip on.
func (r *Reader) readFile(ctx context.Context, fr *fileReader, name string, skip int64) error {
	f, err := r.store.Open(ctx, name)
	if err != nil {
		return err
	}
	defer f.Close()
	defer fr.release()
	fr.name = name
	// The page index is read for the columns a query needs only.
	pf, err := parquet.OpenFile(f, f.Size(), parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true))
	if err != nil {
		return fr.errorf("%w", err)
	}
	fr.pf = pf
	fr.st.Files++
	ok, err := fr.plan()
	if err != nil || !ok {
		return err
	}
	base := int64(0) // the file's row index of the row group's first row
	for i, rg := range pf.RowGroups() {
		n := rg.NumRows()
		first := base
		base += n
		if first+n <= skip {
			continue
		}
		ranges, err := fr.prune(i, rg, max(skip-first, 0))
		if err != nil {
			return err
		}
		if len(ranges) == 0 {
			fr.st.RowGroupsSkipped++
			continue
		}
		fr.st.RowGroups++
		if err := fr.readRowGroup(ctx, rg, first, ranges); err != nil {
			return err
		}
	}
	return nil
}

// plan resolves the query's columns in the current file; false: no row
// of the file can match (it lacks a Where column whose Value is not "").
func (fr *fileReader) plan() (bool, error) {
	schema := fr.pf.Schema()
	tleaf, ok := schema.Lookup(ColEventTime)
	if !ok {
		return false, fr.errorf("no %s column", ColEventTime)
	}
	fr.tleaf = tleaf.ColumnIndex
	fr.leaves = append(fr.leaves[:0], tleaf.ColumnIndex)
	if fr.q.Columns == nil {
		for i := range schema.Columns() {
			fr.leaves = append(fr.leaves, i)
		}
	}
	for _, c := range fr.q.Columns {
		if leaf, ok := schema.Lookup(c); ok {
			fr.leaves = append(fr.leaves, leaf.ColumnIndex)
		}
	}
	type cond struct {
		leaf int
		val  string
	}
	var conds []cond
	for _, w := range fr.q.Where {
		leaf, ok := schema.Lookup(w.Column)
		if !ok {
			if w.Value != "" {
				return false, nil // null throughout
			}
			continue
		}
		if leaf.Node.Type().Kind() != parquet.ByteArray {
			continue // left to the caller
		}
		fr.leaves = append(fr.leaves, leaf.ColumnIndex)
		conds = append(conds, cond{leaf.ColumnIndex, w.Value})
	}
	slices.Sort(fr.leaves)
	fr.leaves = slices.Compact(fr.leaves)
	paths := schema.Columns()
	fr.maxDef = fr.maxDef[:0]
	for _, l := range fr.leaves {
		leaf, _ := schema.Lookup(paths[l]...)
		if leaf.MaxRepetitionLevel > 0 {
			return false, fr.errorf("column %s is repeated, which archive files never are", strings.Join(paths[l], "."))
		}
		fr.maxDef = append(fr.maxDef, leaf.MaxDefinitionLevel)
	}
	fr.where = fr.where[:0]
	for _, c := range conds {
		fr.where = append(fr.where, whereCol{leaf: c.leaf, val: []byte(c.val)})
	}
	return true, nil
}

// rowRange is the rows [lo, hi) of a row group.
type rowRange struct{ lo, hi int64 }

// prune returns the row ranges of row group i, from row skip on, that
// may hold matching rows: the statistics of the chunk and of the pages
// of event_time and of the Where columns exclude the others.
func (fr *fileReader) prune(i int, rg parquet.RowGroup, skip int64) ([]rowRange, error) {
	chunks := rg.ColumnChunks()
	tc := chunks[fr.tleaf]
	if b, isFile := tc.(bounded); isFile {
		if min, max, ok := b.Bounds(); ok && (max.Int64() < fr.q.From || min.Int64() >= fr.q.To) {
			return nil, nil
		}
	}
	for _, w := range fr.where {
		if len(w.val) == 0 {
			continue // nulls match: no bound excludes them
		}
		c := chunks[w.leaf]
		if b, isFile := c.(bounded); isFile {
			if min, max, ok := b.Bounds(); ok && (bytes.Compare(w.val, min.ByteArray()) < 0 || bytes.Compare(w.val, max.ByteArray()) > 0) {
				return nil, nil
			}
		}
		if in, err := fr.inDictionary(i, c, w.val); err != nil {
			return nil, err
		} else if !in {
			return nil, nil
		}
	}
	ranges := []rowRange{{skip, rg.NumRows()}}
	keep, err := fr.pagesOf(tc, func(ci parquet.ColumnIndex, p int) bool {
		return ci.NullPage(p) || ci.MaxValue(p).Int64() < fr.q.From || ci.MinValue(p).Int64() >= fr.q.To
	})
	if err != nil {
		return nil, err
	}
	ranges = intersect(ranges, keep)
	for _, w := range fr.where {
		if len(w.val) == 0 || len(ranges) == 0 {
			continue
		}
		keep, err := fr.pagesOf(chunks[w.leaf], func(ci parquet.ColumnIndex, p int) bool {
			return ci.NullPage(p) || bytes.Compare(w.val, ci.MinValue(p).ByteArray()) < 0 || bytes.Compare(w.val, ci.MaxValue(p).ByteArray()) > 0
		})
		if err != nil {
			return nil, err
		}
		ranges = intersect(ranges, keep)
	}
	return ranges, nil
}

// pagesOf returns the row ranges of the pages of c that excluded does
// not rule out, by c's column index and offset index (the whole row
// group when the file has none).
func (fr *fileReader) pagesOf(c parquet.ColumnChunk, excluded func(parquet.ColumnIndex, int) bool) ([]rowRange, error) {
	all := []rowRange{{0, c.NumValues()}}
	fc, isFile := c.(*parquet.FileColumnChunk)
	if !isFile {
		return all, nil
	}
	ci, err := fc.ColumnIndex()
	if errors.Is(err, parquet.ErrMissingColumnIndex) {
		return all, nil
	}
	if err != nil {
		return nil, fr.errorf("%w", err)
	}
	oi, err := fc.OffsetIndex()
	if errors.Is(err, parquet.ErrMissingOffsetIndex) {
		return all, nil
	}
	if err != nil {
		return nil, fr.errorf("%w", err)
	}
	n := ci.NumPages()
	if oi.NumPages() != n {
		return all, nil
	}
	var out []rowRange
	for p := range n {
		lo, hi := oi.FirstRowIndex(p), c.NumValues()
		if p+1 < n {
			hi = oi.FirstRowIndex(p + 1)
		}
		if excluded(ci, p) {
			fr.st.PagesSkipped++
			continue
		}
		if k := len(out); k > 0 && out[k-1].hi == lo {
			out[k-1].hi = hi
		} else {
			out = append(out, rowRange{lo, hi})
		}
	}
	return out, nil
}

// intersect returns the rows in both a and b (sorted, disjoint ranges).
func intersect(a, b []rowRange) []rowRange {
	var out []rowRange
	for i, j := 0, 0; i < len(a) && j < len(b); {
		lo, hi := max(a[i].lo, b[j].lo), min(a[i].hi, b[j].hi)
		if lo < hi {
			out = append(out, rowRange{lo, hi})
		}
		if a[i].hi < b[j].hi {
			i++
		} else {
			j++
		}
	}
	return out
}

// inDictionary reports whether val may be in chunk c of row group i:
// false only when every data page of c is dictionary encoded and the
// dictionary lacks val.
func (fr *fileReader) inDictionary(i int, c parquet.ColumnChunk, val []byte) (bool, error) {
	md := fr.pf.Metadata().RowGroups[i].Columns[c.Column()].MetaData
	if len(md.EncodingStats) == 0 {
		return true, nil
	}
	for _, s := range md.EncodingStats {
		data := s.PageType == format.DataPage || s.PageType == format.DataPageV2
		//lint:ignore SA1019 older writers mark dictionary-encoded data pages PLAIN_DICTIONARY
		if data && s.Encoding != format.RLEDictionary && s.Encoding != format.PlainDictionary {
			return true, nil
		}
	}
	pages := c.Pages()
	defer pages.Close()
	fp, ok := pages.(*parquet.FilePages)
	if !ok {
		return true, nil
	}
	d, err := fp.ReadDictionary()
	if err != nil {
		return false, fr.errorf("%w", err)
	}
	if d == nil {
		return true, nil
	}
	for k := range d.Len() {
		if bytes.Equal(d.Index(int32(k)).ByteArray(), val) {
			return true, nil
		}
	}
	return false, nil
}

// readRowGroup calls fn for the matching rows of ranges.
func (fr *fileReader) readRowGroup(ctx context.Context, rg parquet.RowGroup, first int64, ranges []rowRange) error {
	chunks := rg.ColumnChunks()
	fr.release()
	for li, l := range fr.leaves {
		var c *column
		if k := len(fr.spare); k > 0 {
			c, fr.spare = fr.spare[k-1], fr.spare[:k-1]
		} else {
			c = &column{buf: make([]parquet.Value, columnBuffer)}
		}
		if err := c.open(chunks[l], fr.maxDef[li]); err != nil {
			return fr.errorf("%w", err)
		}
		fr.cols = append(fr.cols, c)
		if l == fr.tleaf {
			fr.tcol = c
		}
		for k := range fr.where {
			if fr.where[k].leaf == l {
				fr.where[k].col = c
			}
		}
	}
	schema := fr.pf.Schema()
	fr.row = slices.Grow(fr.row[:0], len(fr.cols))
	row := fr.row[:len(fr.cols)]
	for _, rr := range ranges {
		for r := rr.lo; r < rr.hi; r++ {
			if (r-rr.lo)%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			v, err := fr.tcol.value(r)
			if err != nil {
				return fr.errorf("%w", err)
			}
			fr.st.Rows++
			if ms := v.Int64(); ms < fr.q.From || ms >= fr.q.To {
				continue
			}
			match := true
			for _, w := range fr.where {
				v, err := w.col.value(r)
				if err != nil {
					return fr.errorf("%w", err)
				}
				if !bytes.Equal(v.ByteArray(), w.val) { // a null's is empty
					match = false
					break
				}
			}
			if !match {
				continue
			}
			for i, c := range fr.cols {
				if k := r - c.at; k >= 0 && k < int64(c.n) {
					row[i] = c.buf[k]
					continue
				}
				v, err := c.fill(r)
				if err != nil {
					return fr.errorf("%w", err)
				}
				row[i] = *v
			}
			if err := fr.fn(schema, row, Position{Name: fr.name, Row: first + r + 1}); err != nil {
				return err
			}
		}
	}
	return nil
}

// release closes the cursors of the row group read last, to be reused.
func (fr *fileReader) release() {
	for _, c := range fr.cols {
		c.close()
		fr.spare = append(fr.spare, c)
	}
	fr.cols = fr.cols[:0]
}

// columnBuffer is how many values a column cursor decodes at a time.
const columnBuffer = 512

// column reads the values of one flat column chunk by row, forward: it
// decodes a page only when a row of it is asked for (seeking to it by
// the offset index), and of the page only the values up to the last row
// asked for, a buffer at a time.
type column struct {
	null   bool // every value of the chunk is null: nothing to decode
	pages  parquet.Pages
	page   parquet.Page
	values parquet.ValueReader
	first  int64 // row of the page's first value
	end    int64 // row after its last
	buf    []parquet.Value
	at     int64 // row of buf[0]
	n      int   // values in buf
}

func (c *column) open(chunk parquet.ColumnChunk, maxDef int) error {
	c.first, c.end, c.at, c.n = 0, 0, 0, 0
	fc, isFile := chunk.(*parquet.FileColumnChunk)
	// A flat optional column whose statistics count only nulls (a metric
	// the readings of a file do not carry) gives nulls without decoding.
	if c.null = isFile && maxDef == 1 && fc.NullCount() == fc.NumValues(); c.null {
		null := parquet.NullValue().Level(0, 0, chunk.Column())
		for i := range c.buf {
			c.buf[i] = null
		}
		return nil
	}
	if isFile {
		// Load the offset index, so seeks go to the page at once.
		if _, err := fc.OffsetIndex(); err != nil && !errors.Is(err, parquet.ErrMissingOffsetIndex) {
			return err
		}
	}
	c.pages = chunk.Pages()
	return nil
}

func (c *column) close() {
	c.release()
	if c.pages != nil {
		c.pages.Close()
		c.pages = nil
	}
}

func (c *column) release() {
	if c.page != nil {
		parquet.Release(c.page)
		c.page, c.values = nil, nil
	}
}

// value returns the value of row r; rows are asked for in increasing
// order. The value is valid until the cursor moves to another page.
func (c *column) value(r int64) (*parquet.Value, error) {
	if r >= c.at && r < c.at+int64(c.n) {
		return &c.buf[r-c.at], nil
	}
	return c.fill(r)
}

func (c *column) fill(r int64) (*parquet.Value, error) {
	if c.null {
		c.at, c.n = r, len(c.buf)
		return &c.buf[0], nil
	}
	pos := c.at + int64(c.n) // the row c.values reads next
	if c.page == nil || r < pos || r >= c.end {
		if err := c.load(r); err != nil {
			return nil, err
		}
		pos = c.first
	}
	// Rows skipped in the page are decoded into the buffer and dropped:
	// parquet-go's Page.Slice copies the page's values, which costs more.
	for {
		n, err := c.values.ReadValues(c.buf)
		c.at, c.n = pos, n
		if r < pos+int64(n) {
			return &c.buf[r-pos], nil
		}
		if n == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("column %d: page ends before row %d", c.page.Column(), r)
			}
			return nil, err
		}
		pos += int64(n)
	}
}

// load makes the page holding row r the current one, the values reader
// at its first row: the next page when r is where the current one ends,
// else a seek (the offset index finds the page, or the pages before are
// skipped).
func (c *column) load(r int64) error {
	sequential := c.page != nil && r == c.end
	c.release()
	if !sequential {
		if err := c.pages.SeekToRow(r); err != nil {
			return err
		}
	}
	p, err := c.pages.ReadPage()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("row %d is past the column chunk's end", r)
		}
		return err
	}
	if !sequential {
		c.end = r // a page read after a seek starts at the row sought
	}
	c.page, c.values = p, p.Values()
	c.first, c.end = c.end, c.end+p.NumRows()
	c.at, c.n = c.first, 0
	if r >= c.end {
		return c.load(r) // r is further on (pages of no rows)
	}
	return nil
}

// bounded is a column chunk with min/max statistics (a file's).
type bounded interface {
	Bounds() (min, max parquet.Value, ok bool)
}

// eventTime returns the event_time value of row (leaf column tcol).
func eventTime(row parquet.Row, tcol int) int64 {
	for _, v := range row {
		if v.Column() == tcol {
			return v.Int64()
		}
	}
	return -1 << 63
}

// Columns returns the leaf column names of s, in order.
func Columns(s *parquet.Schema) []string {
	var out []string
	for _, p := range s.Columns() {
		out = append(out, strings.Join(p, "."))
	}
	return out
}

// SchemaOf returns the Parquet schema of the files of src.
func SchemaOf(src Source) (*parquet.Schema, error) {
	c, err := newCodec(src)
	if err != nil {
		return nil, err
	}
	return c.schema(), nil
}

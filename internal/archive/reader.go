package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
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
}

// ReadStats counts what a read opened, for tests and benchmarks.
type ReadStats struct {
	Files, RowGroups, RowGroupsSkipped int
	Rows                               int64 // rows decoded, matching or not
}

// Reader reads the archive's files back, in the order of their names
// (hour, then partition, then offsets), pruning by hour folder and by the
// event_time statistics of each row group.
type Reader struct{ store Store }

// NewReader returns a reader of the archive in store.
func NewReader(store Store) *Reader { return &Reader{store: store} }

// ErrStop, returned by a Read callback, ends the read without an error.
var ErrStop = errors.New("stop reading")

// Files returns the names of the stream's archive files whose hour
// overlaps [from, to), sorted.
func (r *Reader) Files(ctx context.Context, stream string, from, to int64) ([]string, error) {
	names, err := r.store.List(ctx, "stream="+stream+"/")
	if err != nil {
		return nil, err
	}
	var out []string
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
	slices.Sort(out)
	return out, nil
}

// Read calls fn for every archived event of q in order, with the file's
// schema, the row, and the position just after it (where a next read
// continues). fn returning ErrStop ends the read. The row is only valid
// during the call.
func (r *Reader) Read(ctx context.Context, q ReadQuery, st *ReadStats, fn func(s *parquet.Schema, row parquet.Row, next Position) error) error {
	names, err := r.Files(ctx, q.Stream, q.From, q.To)
	if err != nil {
		return err
	}
	for _, n := range names {
		if q.After.Name != "" && n < q.After.Name {
			continue
		}
		skip := int64(0)
		if n == q.After.Name {
			skip = q.After.Row
		}
		if err := r.readFile(ctx, n, q, skip, st, fn); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// readFile reads one file from row skip on.
func (r *Reader) readFile(ctx context.Context, name string, q ReadQuery, skip int64, st *ReadStats, fn func(*parquet.Schema, parquet.Row, Position) error) error {
	f, err := r.store.Open(ctx, name)
	if err != nil {
		return err
	}
	defer f.Close()
	pf, err := parquet.OpenFile(f, f.Size(), parquet.SkipBloomFilters(true))
	if err != nil {
		return fmt.Errorf("read archive file %s: %w", name, err)
	}
	st.Files++
	schema := pf.Schema()
	leaf, ok := schema.Lookup(ColEventTime)
	if !ok {
		return fmt.Errorf("read archive file %s: no %s column", name, ColEventTime)
	}
	tcol := leaf.ColumnIndex
	base := int64(0) // the file's row index of the row group's first row
	rows := make([]parquet.Row, 256)
	for _, rg := range pf.RowGroups() {
		n := rg.NumRows()
		first := base
		base += n
		if first+n <= skip {
			continue
		}
		if b, isFile := rg.ColumnChunks()[tcol].(bounded); isFile {
			if min, max, ok := b.Bounds(); ok && (max.Int64() < q.From || min.Int64() >= q.To) {
				st.RowGroupsSkipped++
				continue
			}
		}
		st.RowGroups++
		if err := readRowGroup(ctx, rg, name, q, max(skip-first, 0), first, tcol, schema, rows, st, fn); err != nil {
			return err
		}
	}
	return nil
}

func readRowGroup(ctx context.Context, rg parquet.RowGroup, name string, q ReadQuery, skip, first int64, tcol int,
	schema *parquet.Schema, rows []parquet.Row, st *ReadStats, fn func(*parquet.Schema, parquet.Row, Position) error) error {
	rr := rg.Rows()
	defer rr.Close()
	if skip > 0 {
		if err := rr.SeekToRow(skip); err != nil {
			return fmt.Errorf("read archive file %s: %w", name, err)
		}
	}
	at := first + skip
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, err := rr.ReadRows(rows)
		for _, row := range rows[:k] {
			at++
			st.Rows++
			ms := eventTime(row, tcol)
			if ms < q.From || ms >= q.To {
				continue
			}
			if err := fn(schema, row, Position{Name: name, Row: at}); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive file %s: %w", name, err)
		}
	}
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

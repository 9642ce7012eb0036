package archive

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readerBase is the first hour of the test archive.
var readerBase = time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC).UnixMilli()

// writeArchive archives n city readings, one a second from readerBase
// on, over partitions 0 and 1 (alternating), in rolls of rollRows
// records per partition and row groups of 100 rows; it returns the
// store and the events' times.
func writeArchive(t testing.TB, n, rollRows int) (*LocalStore, []int64) {
	t.Helper()
	st, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	times := make([]int64, n)
	recs := make([]*kgo.Record, n)
	for i := range n {
		p := int32(i % 2)
		ts := readerBase + int64(i)*1000
		times[i] = ts
		v := fmt.Sprintf(`{"sensor_id":"S-%d","zone":"zone-%d","kind":"air","ts":%d,"pm25":%d}`, i%7, i%3, ts, i%1000)
		recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "S-%d", i%7), Value: []byte(v), Partition: p, Offset: int64(i / 2)}
	}
	if err := Import(context.Background(), st, citySource, recs, rollRows, 100); err != nil {
		t.Fatal(err)
	}
	return st, times
}

// readTimes reads q and returns the event times read and the position
// after the last one (at most limit events; 0: all).
func readTimes(t *testing.T, rd *Reader, q ReadQuery, limit int, st *ReadStats) ([]int64, Position) {
	t.Helper()
	var got []int64
	var next Position
	err := rd.Read(context.Background(), q, st, func(s *parquet.Schema, row parquet.Row, at Position) error {
		leaf, _ := s.Lookup(ColEventTime)
		got = append(got, eventTime(row, leaf.ColumnIndex))
		next = at
		if limit > 0 && len(got) == limit {
			return ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, next
}

func want(times []int64, from, to int64) []int64 {
	var out []int64
	for _, ts := range times {
		if ts >= from && ts < to {
			out = append(out, ts)
		}
	}
	return out
}

func TestReaderPrunesAndIsExact(t *testing.T) {
	st, times := writeArchive(t, 3*3600, 2000) // three hours, rolls of 2,000 rows per partition
	rd := NewReader(st)
	all, err := rd.Files(context.Background(), "city", readerBase, readerBase+3*3600_000)
	if err != nil {
		t.Fatal(err)
	}
	// The range's edges fall inside row groups and on an event exactly.
	from, to := readerBase+3600_000+10*60_000+500, readerBase+2*3600_000-60_000
	var rs ReadStats
	got, _ := readTimes(t, rd, ReadQuery{Stream: "city", From: from, To: to}, 0, &rs)
	slices.Sort(got)
	if w := want(times, from, to); !slices.Equal(got, w) {
		t.Fatalf("read %d events, want %d", len(got), len(w))
	}
	hour1, _ := rd.Files(context.Background(), "city", from, to)
	if rs.Files != len(hour1) || len(hour1) >= len(all) {
		t.Fatalf("opened %d files, want the %d of hour 1 (of %d)", rs.Files, len(hour1), len(all))
	}
	// One hour has 3,600 events; a row group 50 per partition file: the
	// groups outside 10 min .. 59 min are skipped, not decoded.
	if rs.RowGroupsSkipped == 0 || rs.Rows > int64(len(got))+2*100*int64(len(hour1)) {
		t.Fatalf("stats %+v: row groups outside the range were decoded", rs)
	}
	// Exact at a bound equal to an event's time: from is in, to is out.
	got, _ = readTimes(t, rd, ReadQuery{Stream: "city", From: readerBase + 5000, To: readerBase + 7000}, 0, &ReadStats{})
	slices.Sort(got)
	if !slices.Equal(got, []int64{readerBase + 5000, readerBase + 6000}) {
		t.Fatalf("[5 s, 7 s) read %v", got)
	}
}

func TestReaderContinuationEqualsOneRead(t *testing.T) {
	st, _ := writeArchive(t, 3*3600, 700)
	rd := NewReader(st)
	q := ReadQuery{Stream: "city", From: readerBase + 1800_000, To: readerBase + 3*3600_000 - 1}
	whole, _ := readTimes(t, rd, q, 0, &ReadStats{})
	var paged []int64
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		got, next := readTimes(t, rd, q, 997, &ReadStats{})
		paged = append(paged, got...)
		if len(got) < 997 {
			break
		}
		q.After = next
	}
	if !slices.Equal(paged, whole) {
		t.Fatalf("pages read %d events, one read %d (or in another order)", len(paged), len(whole))
	}
}

// writePaged writes files of city readings straight through the city
// codec with small pages (PageBufferSize 512: each column's pages end
// at other rows) and row groups of 250 rows: per partition 0..2, one
// file per hour of readerBase .. +3 h, 1,000 readings each. Event times
// go forward with jitter of ±40 s and every 50th reading is an hour
// late (page and row-group bounds overlap), a third have no key, and
// sensor S-(i%7) reads pm25 on even i, speed_kmh on odd ones.
func writePaged(t *testing.T) *LocalStore {
	t.Helper()
	st, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	c := newCityCodec()
	for p := int32(0); p < 3; p++ {
		off := int64(0)
		for h := int64(0); h < 3; h++ {
			hour := readerBase + h*3600_000
			part := Part{Stream: "city", Hour: HourOf(hour), Partition: p, From: off, To: off + 1000}
			f, err := os.CreateTemp(t.TempDir(), "*.parquet")
			if err != nil {
				t.Fatal(err)
			}
			w := c.newWriter(f, parquet.PageBufferSize(512), parquet.MaxRowsPerRowGroup(250), parquet.Compression(&zstd.Codec{}))
			for i := range 1000 {
				ts := hour + 40_000 + int64(i)*3560 + rng.Int64N(80_000) - 40_000
				if i%50 == 49 {
					ts = hour + rng.Int64N(3600_000) // late within its hour
				}
				var key []byte
				if i%3 != 0 {
					key = fmt.Appendf(nil, "S-%d", i%7)
				}
				kind, metric := "air", fmt.Sprintf(`"pm25":%d.25`, i%100)
				if i%2 == 1 {
					kind, metric = "traffic", fmt.Sprintf(`"speed_kmh":%d.5`, i%90)
				}
				v := fmt.Sprintf(`{"sensor_id":"S-%d","zone":"zone-%d","kind":%q,"ts":%d,%s}`, i%7, (i/100)%3, kind, ts, metric)
				if _, err := c.parse(&kgo.Record{Key: key, Value: []byte(v), Partition: p, Offset: off}); err != nil {
					t.Fatal(err)
				}
				w.add()
				off++
				if i%97 == 96 {
					if _, err := w.flush(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if _, err := w.flush(); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if err := st.Publish(context.Background(), f.Name(), part.Name()); err != nil {
				t.Fatal(err)
			}
		}
	}
	return st
}

// readRow is one row a read gave: where it continues and its values.
type readRow struct {
	next Position
	vals string
}

// readAll reads q with rd, at most limit rows (0: all).
func readAll(t *testing.T, rd *Reader, q ReadQuery, limit int, st *ReadStats) []readRow {
	t.Helper()
	var out []readRow
	err := rd.Read(context.Background(), q, st, func(_ *parquet.Schema, row parquet.Row, next Position) error {
		out = append(out, readRow{next, rowText(row)})
		if len(out) == limit {
			return ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func rowText(row parquet.Row) string {
	var b strings.Builder
	for _, v := range row {
		fmt.Fprintf(&b, "%d:%d:%d:%v:%v:%q ", v.Column(), v.RepetitionLevel(), v.DefinitionLevel(), v.Kind(), v.IsNull(), v.String())
	}
	return b.String()
}

// referenceRead reads q the plain way: every row of every file through
// parquet-go's row reader, filtered and projected afterwards.
func referenceRead(t *testing.T, rd *Reader, q ReadQuery) []readRow {
	t.Helper()
	names, err := rd.Files(context.Background(), q.Stream, q.From, q.To)
	if err != nil {
		t.Fatal(err)
	}
	var out []readRow
	for _, n := range names {
		if n < q.After.Name {
			continue
		}
		f, err := rd.store.Open(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		pf, err := parquet.OpenFile(f, f.Size())
		if err != nil {
			t.Fatal(err)
		}
		s := pf.Schema()
		tleaf, _ := s.Lookup(ColEventTime)
		keep := map[int]bool{tleaf.ColumnIndex: true}
		for i, p := range s.Columns() {
			if q.Columns == nil || slices.Contains(q.Columns, strings.Join(p, ".")) {
				keep[i] = true
			}
		}
		at := int64(0)
		rows := parquet.MultiRowGroup(pf.RowGroups()...).Rows()
		buf := make([]parquet.Row, 1)
	rows:
		for {
			k, err := rows.ReadRows(buf)
			if k == 0 {
				if err != io.EOF {
					t.Fatal(err)
				}
				break
			}
			at++
			row := buf[0]
			if n == q.After.Name && at <= q.After.Row {
				continue
			}
			if ms := eventTime(row, tleaf.ColumnIndex); ms < q.From || ms >= q.To {
				continue
			}
			for _, w := range q.Where {
				leaf, _ := s.Lookup(w.Column)
				keep[leaf.ColumnIndex] = true
				if string(cellOf(row, leaf.ColumnIndex).ByteArray()) != w.Value {
					continue rows
				}
			}
			var proj parquet.Row
			for _, v := range row {
				if keep[v.Column()] {
					proj = append(proj, v)
				}
			}
			out = append(out, readRow{Position{n, at}, rowText(proj)})
		}
		rows.Close()
		f.Close()
	}
	return out
}

// TestReaderPrunedEqualsFullRead checks that the projected, page- and
// dictionary-pruned read gives exactly the rows (values, order and
// positions) of reading every row and filtering after, for ranges that
// cut pages and row groups, whole and in pages continued by After.
func TestReaderPrunedEqualsFullRead(t *testing.T) {
	rd := NewReader(writePaged(t))
	h := int64(3600_000)
	ranges := [][2]int64{
		{readerBase, readerBase + 3*h},                            // all
		{readerBase + h/3 + 777, readerBase + h/3 + 9*60_000 + 1}, // 9 min inside the first hour
		{readerBase + h - 5*60_000, readerBase + h + 7*60_000},    // across an hour
		{readerBase + 2*h + 1234, readerBase + 2*h + 1235},        // 1 ms
	}
	queries := []ReadQuery{
		{},
		{Columns: []string{"sensor_id", "pm25"}},
		{Columns: []string{ColEventTime}},
		{Where: []Equal{{Column: "sensor_id", Value: "S-3"}}},
		{Columns: []string{"speed_kmh"}, Where: []Equal{{Column: "zone", Value: "zone-2"}, {Column: "sensor_id", Value: "S-5"}}},
		{Where: []Equal{{Column: "sensor_id", Value: "S-9"}}},                                  // in no dictionary
		{Columns: []string{"key", "kafka_offset"}, Where: []Equal{{Column: "key", Value: ""}}}, // the nulls
	}
	var pruned ReadStats
	for _, r := range ranges {
		for qi, q := range queries {
			q.Stream, q.From, q.To = "city", r[0], r[1]
			want := referenceRead(t, rd, q)
			var st ReadStats
			got := readAll(t, rd, q, 0, &st)
			if !slices.Equal(got, want) {
				t.Fatalf("range %v query %d: read %d rows, the full read %d (or other values, order or positions)", r, qi, len(got), len(want))
			}
			pruned.PagesSkipped += st.PagesSkipped
			pruned.RowGroupsSkipped += st.RowGroupsSkipped
			// Continued reads, cutting anywhere: each must equal the rest
			// of the full read from its After on.
			for _, limit := range []int{1, 37, 250} {
				var paged []readRow
				q, rest := q, want
				for pages := 0; ; pages++ {
					got := readAll(t, rd, q, limit, &ReadStats{})
					if !slices.Equal(got, rest[:min(limit, len(rest))]) {
						t.Fatalf("range %v query %d limit %d after %v: the page differs from the full read", r, qi, limit, q.After)
					}
					paged, rest = append(paged, got...), rest[len(got):]
					if len(got) < limit {
						break
					}
					if limit == 1 && pages == 40 {
						paged = append(paged, rest...) // long enough: the cuts so far were checked
						break
					}
					q.After = got[len(got)-1].next
				}
				if !slices.Equal(paged, want) {
					t.Fatalf("range %v query %d: pages of %d read %d rows, one read %d", r, qi, limit, len(paged), len(want))
				}
			}
		}
	}
	if pruned.PagesSkipped == 0 || pruned.RowGroupsSkipped == 0 {
		t.Fatalf("nothing was pruned (%+v): the test does not reach the pruning", pruned)
	}
}

// TestReaderSkipsByDictionary checks that a where on a value no row
// group holds opens the files but decodes no row.
func TestReaderSkipsByDictionary(t *testing.T) {
	rd := NewReader(writePaged(t))
	var st ReadStats
	q := ReadQuery{Stream: "city", From: readerBase, To: readerBase + 3*3600_000, Where: []Equal{{Column: "sensor_id", Value: "S-4x"}}}
	if got := readAll(t, rd, q, 0, &st); len(got) != 0 {
		t.Fatalf("read %d rows of a sensor that does not exist", len(got))
	}
	if st.Files != 9 || st.Rows != 0 || st.RowGroups != 0 || st.RowGroupsSkipped != 9*4 {
		t.Fatalf("stats %+v: want 9 files opened, their 36 row groups skipped, no row decoded", st)
	}
}

// listCounter is a store that records the prefixes listed.
type listCounter struct {
	*LocalStore
	prefixes []string
}

func (l *listCounter) List(ctx context.Context, prefix string) ([]string, error) {
	l.prefixes = append(l.prefixes, prefix)
	return l.LocalStore.List(ctx, prefix)
}

// TestReaderFilesListsTheRange checks that Files lists the hour or day
// folders of the range only, and finds what filtering the whole
// stream's listing finds, across midnight too.
func TestReaderFilesListsTheRange(t *testing.T) {
	local, _ := writeArchive(t, 3*3600, 2000) // 22:00 to 01:00 of the next day
	all, err := local.List(context.Background(), "stream=city/")
	if err != nil {
		t.Fatal(err)
	}
	h := int64(3600_000)
	for _, c := range []struct {
		from, to int64
		lists    int
	}{
		{readerBase + 10, readerBase + 11, 1},
		{readerBase + h/2, readerBase + 3*h/2, 2},
		{readerBase + h + 1, readerBase + 2*h + 1, 2}, // 23:00 .. 00:00:00.001
		{readerBase - 5*h, readerBase + 2*h + 1, 2},   // days
		{readerBase - 40*24*h, readerBase + 3*h, 1},   // the stream
		{readerBase + 3*h, readerBase + 4*h, 1},       // an hour of no file
	} {
		st := &listCounter{LocalStore: local}
		got, err := NewReader(st).Files(context.Background(), "city", c.from, c.to)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, n := range all {
			if p, err := ParsePart(n); err == nil && p.Hour.UnixMilli()+h > c.from && p.Hour.UnixMilli() < c.to {
				want = append(want, n)
			}
		}
		slices.Sort(want)
		if !slices.Equal(got, want) || len(st.prefixes) != c.lists {
			t.Errorf("[%d, %d): %d files listing %q, want %d files in %d listings", c.from, c.to, len(got), st.prefixes, len(want), c.lists)
		}
	}
}

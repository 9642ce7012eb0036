package archive

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
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

package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/checkfor"
)

var everything = TailQuery{From: math.MinInt64, To: math.MaxInt64}

// tailRows reads the tail for q and returns its rows as arrow-go reads
// them back (written to a Parquet file of the rows' own schema), and
// where the read ended.
func tailRows(t *testing.T, tl *Tail, q TailQuery, st *TailStats) ([]row, TailPosition) {
	t.Helper()
	var buf bytes.Buffer
	var w *parquet.GenericWriter[any]
	last := TailPosition{}
	end, err := tl.Read(context.Background(), q, st, func(s *parquet.Schema, r parquet.Row, at *TailPosition) error {
		if w == nil {
			w = parquet.NewGenericWriter[any](&buf, s)
		}
		if at.Next[r[columns(s, ColPartition)[0]].Int32()] != r[columns(s, ColOffset)[0]].Int64()+1 {
			t.Fatalf("the position after a row of offset %d is %v", r[columns(s, ColOffset)[0]].Int64(), at.Next)
		}
		last = at.Clone()
		_, err := w.WriteRows([]parquet.Row{r})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range last.Next {
		if last.Next[p] > end.Next[p] {
			t.Fatalf("the read ended at %v, before its last row's position %v", end.Next, last.Next)
		}
	}
	if w == nil {
		return nil, end
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return readArrowFile(t, "tail", buf.Bytes()), end
}

func openTail(t *testing.T, opts []kgo.Opt, src Source) *Tail {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tl, err := OpenTail(ctx, opts, src, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tl.Close)
	return tl
}

// TestTailPastArchive archives a first set of readings, produces a
// second one (with invalid records), and reads the tail from the
// archived ends: exactly the valid readings of the second set, with the
// archive's columns and types; files and tail together hold every event
// once.
func TestTailPastArchive(t *testing.T) {
	opts := cluster(t)
	first := cityEvents(1500, true, 3)
	produce(t, opts, "city", first)
	st, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, stop := start(t, Config{Sources: []Source{citySource}, Kafka: opts, Store: st, Roll: Roll{Rows: 200, Age: 50 * time.Millisecond}})
	checkfor.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error { return exactlyOnce(readArrow(t, st, "city"), first) })
	stop()
	second := cityEvents(900, true, 4)
	produce(t, opts, "city", second)

	names, err := NewReader(st).Files(context.Background(), "city", math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	ends := ArchivedEnds(append(names, "stream=city/notes.txt", "stream=other/date=2026-11-30/hour=22/p000-00000000000000000000-00000000000000999999.parquet"), "city")
	if len(ends) != 4 {
		t.Fatalf("archived ends %v, want one per partition", ends)
	}
	tl := openTail(t, opts, citySource)
	q := everything
	q.Start.Next = make([]int64, tl.Partitions())
	for p, e := range ends {
		q.Start.Next[p] = e.To
	}
	var ts TailStats
	got, end := tailRows(t, tl, q, &ts)
	checkExactlyOnce(t, got, second)
	if !tl.Done(end) || !slices.Equal(end.Next, tl.Ends()) {
		t.Fatalf("the read ended at %v, want the ends %v", end.Next, tl.Ends())
	}
	bad := 0
	for _, e := range second {
		if e.bad {
			bad++
		}
	}
	if ts.Skipped != int64(bad) || ts.Records != int64(len(second)) || ts.Rows != int64(len(second)-bad) {
		t.Fatalf("stats %+v, want %d records, %d skipped", ts, len(second), bad)
	}
	checkExactlyOnce(t, append(readArrow(t, st, "city"), got...), append(first, second...))

	// A range of event time: exactly the readings in it.
	from, to := second[10].ts, second[10].ts+3600_000
	q.From, q.To = from, to
	got, _ = tailRows(t, tl, q, &TailStats{})
	var want []*input
	for _, e := range second {
		if !e.bad && e.ts >= from && e.ts < to {
			want = append(want, e)
		}
	}
	checkExactlyOnce(t, got, want)
}

// TestTailTransactions reads a topic written by a transactional producer
// (a committed transaction, an aborted one, a committed one last, so the
// last offsets are a commit marker): the committed records only, and the
// read ends at the last stable offset instead of waiting for a record
// that never comes.
func TestTailTransactions(t *testing.T) {
	opts := cluster(t)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.DefaultProduceTopic("logs"), kgo.TransactionalID("tail-test"), kgo.ProducerLinger(time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	src := Source{Stream: "logs", Topic: "logs", TimeField: "ts"}
	var committed []int64
	for txn, commit := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort, kgo.TryCommit} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			ts := int64(txn*1000 + i)
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte{byte(i % 7)}, Value: fmt.Appendf(nil, `{"ts":%d,"service":"api"}`, ts)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if commit {
				committed = append(committed, ts)
			}
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	tl := openTail(t, opts, src)
	var got []int64
	end, err := tl.Read(ctx, everything, &TailStats{}, func(s *parquet.Schema, r parquet.Row, _ *TailPosition) error {
		got = append(got, r[columns(s, ColEventTime)[0]].Int64())
		if text := string(r[columns(s, ColEventJSON)[0]].ByteArray()); !bytes.Contains([]byte(text), []byte(`"service":"api"`)) {
			t.Errorf("event_json %q is not the record's value", text)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, committed) {
		t.Fatalf("tail holds %d events, want the %d committed ones", len(got), len(committed))
	}
	if !tl.Done(end) {
		t.Fatalf("the read ended at %v, before the last stable offsets %v", end.Next, tl.Ends())
	}
}

// TestTailBound reads the tail in small steps, bounded by records read
// and by a caller that stops after a few rows, each continuing at the
// position the last one gave: every event exactly once.
func TestTailBound(t *testing.T) {
	opts := cluster(t)
	in := cityEvents(1200, true, 5)
	produce(t, opts, "city", in)
	tl := openTail(t, opts, citySource)
	var got []row
	q := everything
	q.MaxRecords = 97
	reads := 0
	for ; !tl.Done(q.Start) || reads == 0; reads++ {
		if reads > 100 {
			t.Fatal("the tail read does not progress")
		}
		var st TailStats
		rows, end := tailRows(t, tl, q, &st)
		if st.Records > q.MaxRecords {
			t.Fatalf("read %d records, bound %d", st.Records, q.MaxRecords)
		}
		got = append(got, rows...)
		q.Start = end
	}
	if reads < len(in)/97 {
		t.Fatalf("%d reads, want the bound to cut them", reads)
	}
	checkExactlyOnce(t, got, in)

	// A caller stopping after every 33 rows, mid-batch, continues from
	// the position after its last row.
	got = got[:0]
	q = everything
	for reads = 0; ; reads++ {
		if reads > 100 {
			t.Fatal("the tail read does not progress")
		}
		var buf bytes.Buffer
		var w *parquet.GenericWriter[any]
		var at TailPosition
		n := 0
		end, err := tl.Read(context.Background(), q, &TailStats{}, func(s *parquet.Schema, r parquet.Row, pos *TailPosition) error {
			if n == 33 {
				return ErrStop
			}
			if w == nil {
				w = parquet.NewGenericWriter[any](&buf, s)
			}
			n++
			at = pos.Clone()
			_, err := w.WriteRows([]parquet.Row{r})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if w != nil {
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got = append(got, readArrowFile(t, "page", buf.Bytes())...)
		}
		if n < 33 {
			if !tl.Done(end) {
				t.Fatalf("a read of %d rows ended at %v, before the ends", n, end.Next)
			}
			break
		}
		q.Start = at
	}
	checkExactlyOnce(t, got, in)
}

// TestTailUnreachable: a tail of a topic that does not exist, or of a
// cluster that does not answer, is an error naming the topic.
func TestTailUnreachable(t *testing.T) {
	opts := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := OpenTail(ctx, opts, Source{Stream: "nope", Topic: "nope", Schema: "city"}, 0)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("topic nope")) {
		t.Fatalf("tail of a missing topic: %v, want an error naming it", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = OpenTail(ctx, []kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}, citySource, 0)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) && !bytes.Contains([]byte(err.Error()), []byte("topic city")) {
		t.Fatalf("tail of an unreachable cluster: %v, want an error naming the topic", err)
	}
}

// TestArchivedEnds: the last roll of every partition, and the last hour
// with a file of it; the tail's start past it, or at its start for a
// range that reaches later hours.
func TestArchivedEnds(t *testing.T) {
	h := time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC)
	name := func(hour time.Time, p int32, from, to int64) string {
		return Part{Stream: "city", Hour: hour, Partition: p, From: from, To: to}.Name()
	}
	names := []string{
		name(h, 0, 0, 100), name(h, 0, 100, 250), name(h.Add(time.Hour), 0, 100, 250),
		name(h.Add(time.Hour), 1, 0, 40), name(h, 1, 40, 90),
		"stream=city/notes.txt", name(h, 0, 0, 100)[len("stream=city"):],
	}
	ends := ArchivedEnds(names, "city")
	want := map[int32]ArchivedEnd{0: {From: 100, To: 250, LastHour: h.Add(time.Hour).UnixMilli()}, 1: {From: 40, To: 90, LastHour: h.UnixMilli()}}
	if len(ends) != len(want) || ends[0] != want[0] || ends[1] != want[1] {
		t.Fatalf("archived ends %+v, want %+v", ends, want)
	}
	e := ends[1]
	if !e.InLastRoll(Part{Stream: "city", Hour: h.Add(time.Hour), Partition: 1, From: 40, To: 90}) ||
		e.InLastRoll(Part{Stream: "city", Hour: h, Partition: 1, From: 40, To: 90}) ||
		e.InLastRoll(Part{Stream: "city", Hour: h.Add(time.Hour), Partition: 1, From: 90, To: 120}) {
		t.Fatal("InLastRoll: want only a later hour of the last roll")
	}
	if next, rest := TailStart(e, true, h.Add(time.Hour).UnixMilli()); next != 90 || rest != (RollRest{}) {
		t.Fatalf("a range ending with the roll's last hour starts at %d %+v, want 90", next, rest)
	}
	if next, rest := TailStart(e, true, h.Add(time.Hour).UnixMilli()+1); next != 40 || rest != (RollRest{To: 90, MinTime: h.Add(time.Hour).UnixMilli()}) {
		t.Fatalf("a range past the roll's last hour starts at %d %+v, want the roll again from 40", next, rest)
	}
	if next, rest := TailStart(ArchivedEnd{}, false, math.MaxInt64); next != 0 || rest != (RollRest{}) {
		t.Fatalf("a partition without files starts at %d %+v, want 0", next, rest)
	}
}

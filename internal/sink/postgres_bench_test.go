package sink

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// citySchema returns the schema of the built-in city pipeline's
// sensor_1m output: 48 columns, the widest stored output.
func citySchema(tb testing.TB) (string, *stream.Schema) {
	plans, err := pipeline.Builtin()
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range plans {
		for i := range p.Outputs {
			if p.Outputs[i].Name == "sensor_1m" {
				return p.Name, stream.SchemaOf(&p.Outputs[i])
			}
		}
	}
	tb.Fatal("no output sensor_1m in the built-in pipelines")
	return "", nil
}

// benchBatches writes b.N batches of n city results each (every value
// column set) to s, one transaction per batch with its offset, as the
// feed does, and reports result rows/s. With update, every batch writes
// the windows of the one before again (late events updating finals);
// else each batch is new windows (the common case: a window's first
// final).
func benchBatches(b *testing.B, s *SQLStore, n int, update bool) {
	name, sch := citySchema(b)
	ctx := context.Background()
	mk := func(batch int) []Write {
		w := make([]Write, n)
		for i := range w {
			w[i] = Write{Pipeline: name, Schema: sch, Result: mkCity(sch, i, batch)}
		}
		return w
	}
	if err := Commit(ctx, s, mk(0), nil); err != nil { // creates the table
		b.Fatal(err)
	}
	next := mk(1)
	b.ResetTimer()
	var took time.Duration
	for i := range b.N {
		ws := next
		began := time.Now()
		if err := Commit(ctx, s, ws, map[TopicPartition]int64{{"city.sensor_1m", 0}: int64(i)}); err != nil {
			b.Fatal(err)
		}
		took += time.Since(began)
		if !update {
			b.StopTimer()
			next = mk(i + 2)
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.N*n)/took.Seconds(), "rows/s")
}

// BenchmarkPostgresUpsert compares the two ways of writing a batch of
// upserts into PostgreSQL: COPY into a staging table and one merge
// (INSERT ... SELECT ... ON CONFLICT), and multi-row INSERT ... ON
// CONFLICT DO UPDATE statements of up to 512 rows. Run it with
// pg_virtualenv go test -run '^$' -bench BenchmarkPostgresUpsert ./internal/sink/.
func BenchmarkPostgresUpsert(b *testing.B) {
	for _, mode := range []struct {
		name     string
		multiRow bool
	}{{"copy_merge", false}, {"multirow_upsert", true}} {
		for _, update := range []bool{false, true} {
			for _, n := range []int{1000, 5000} {
				b.Run(fmt.Sprintf("%s/%s/batch=%d", mode.name, map[bool]string{false: "insert", true: "update"}[update], n), func(b *testing.B) {
					s, err := OpenPostgres(context.Background(), pgSchema(b), PostgresOptions{MultiRowUpserts: mode.multiRow})
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					benchBatches(b, s.SQLStore, n, update)
				})
			}
		}
	}
}

// BenchmarkSQLiteUpsert writes the same batches into SQLite.
func BenchmarkSQLiteUpsert(b *testing.B) {
	for _, update := range []bool{false, true} {
		b.Run(map[bool]string{false: "insert", true: "update"}[update], func(b *testing.B) {
			s, err := OpenSQLite(b.TempDir() + "/r.db")
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			benchBatches(b, s.SQLStore, 1000, update)
		})
	}
}

func mkCity(sch *stream.Schema, i, batch int) stream.Result {
	start := t0 + int64(batch/2)*minute
	r := stream.Result{Output: sch.Output, GroupBy: []string{"sensor_id"}, Key: []string{"s-" + strconv.Itoa(i)},
		Start: start, End: start + minute, Final: true, Names: sch.ValueNames(), Values: make([]event.Value, len(sch.Values()))}
	for j := range r.Values {
		r.Values[j] = event.NumberValue(float64(i*j + batch))
	}
	return r
}

// BenchmarkPostgresParallel writes new windows from two goroutines at
// once, each its own keys and offsets (as two partitions' batches), to
// see what a second connection adds.
func BenchmarkPostgresParallel(b *testing.B) {
	for _, writers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, err := OpenPostgres(context.Background(), pgSchema(b), PostgresOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			name, sch := citySchema(b)
			const n = 1000
			mk := func(w, batch int) []Write {
				out := make([]Write, n)
				for i := range out {
					r := mkCity(sch, w*n+i, 2*batch)
					out[i] = Write{Pipeline: name, Schema: sch, Result: r}
				}
				return out
			}
			ctx := context.Background()
			if err := Commit(ctx, s, mk(0, 0), nil); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			began := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			per := (b.N + writers - 1) / writers
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range per {
						if err := Commit(ctx, s, mk(w, i+1), map[TopicPartition]int64{{"city.sensor_1m", int32(w)}: int64(i)}); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(per*writers*n)/time.Since(began).Seconds(), "rows/s")
		})
	}
}

// BenchmarkPostgresFirstFinals compares, interleaved batch by batch so
// that a busy machine weighs on both alike, two ways of storing batches
// of 5,000 first finals (new windows): COPY straight into the table (what
// the store does for them) and COPY into the staging table and a merge
// (what it does for updates, and for first finals found stored already).
func BenchmarkPostgresFirstFinals(b *testing.B) {
	s, err := OpenPostgres(context.Background(), pgSchema(b), PostgresOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	name, sch := citySchema(b)
	ctx := context.Background()
	tb, err := s.ensure(ctx, name, sch)
	if err != nil {
		b.Fatal(err)
	}
	const n = 5000
	var took [2]time.Duration
	b.ResetTimer()
	for i := range 2 * b.N {
		b.StopTimer()
		a := s.Appender(ctx).(*sqlAppender)
		for k := range n {
			r := mkCity(sch, k, 2*i)
			if err := a.Upsert(name, sch, &r); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		began := time.Now()
		if err := s.commit(ctx, a, []*table{tb}, i%2 == 0); err != nil {
			b.Fatal(err)
		}
		took[i%2] += time.Since(began)
	}
	b.ReportMetric(float64(b.N*n)/took[0].Seconds(), "direct-rows/s")
	b.ReportMetric(float64(b.N*n)/took[1].Seconds(), "merge-rows/s")
}

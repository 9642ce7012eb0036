package sink

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// BenchmarkFeedPostgres measures the whole sink: b.N × 10,000 final
// results of the city pipeline's sensor_1m output (48 columns, every
// value set) in an in-process broker's topic of 4 partitions, read by
// the feed (read_committed, decoded, chunked and paced as in pulse run)
// into PostgreSQL, from its start to the last offset stored. Run it with
// pg_virtualenv go test -run '^$' -bench BenchmarkFeedPostgres ./internal/sink/.
func BenchmarkFeedPostgres(b *testing.B) {
	plan, err := pipeline.BuiltinNamed("city")
	if err != nil {
		b.Fatal(err)
	}
	o := plan.Outputs[0]
	s := stream.SchemaOf(&o)
	n := 10000 * b.N
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, plan.Outputs[0].Topic, plan.Outputs[1].Topic))
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
	prod, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1<<20))...)
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	ctx := context.Background()
	var recs []*kgo.Record
	for i := range n {
		r := stream.Result{Output: o.Name, GroupBy: o.GroupBy, Key: []string{fmt.Sprintf("s-%06d", i%100000)}, Start: t0 + int64(i/100000)*minute,
			End: t0 + int64(i/100000+1)*minute, Final: true, Names: s.ValueNames(), Values: make([]event.Value, len(s.ValueNames()))}
		for j := range r.Values {
			r.Values[j] = event.NumberValue(float64(i + j))
		}
		recs = append(recs, record(s, o.Topic, int32(i%4), &r))
		if len(recs) == 5000 || i == n-1 {
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	st, err := OpenPostgres(ctx, pgSchema(b), PostgresOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Prepare(ctx, []*pipeline.Plan{plan}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	began := time.Now()
	feed := NewFeed(FeedConfig{Store: st, Plans: []*pipeline.Plan{plan}, Opts: opts})
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- feed.Run(fctx) }()
	for {
		offs, err := st.Offsets(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var stored int64
		for _, next := range offs {
			stored += next
		}
		if stored == int64(n) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(began)
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/took.Seconds(), "rows/s")
}

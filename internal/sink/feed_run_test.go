package sink

import (
	"context"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// TestFeedStoresEveryResultOnce runs the feed against an in-process
// broker with more results than one SQLite transaction stores (so the
// chunked, paced path runs; the test would pass without chunks too): every
// result lands once, and the stored offsets end at the topic's end.
// resultsBroker starts an in-process broker holding n results of the city
// pipeline's first output, spread over its 2 partitions, and returns the
// plan and the client options that reach it.
func resultsBroker(t *testing.T, n int) (*pipeline.Plan, []kgo.Opt) {
	t.Helper()
	plan, err := pipeline.BuiltinNamed("city")
	if err != nil {
		t.Fatal(err)
	}
	o := plan.Outputs[0]
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, plan.Outputs[0].Topic, plan.Outputs[1].Topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	opts := []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
	prod, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var recs []*kgo.Record
	s := stream.SchemaOf(&o)
	for i := range n {
		r := stream.Result{Output: o.Name, GroupBy: o.GroupBy, Key: []string{fmt.Sprintf("s-%04d", i)}, Start: t0, End: t0 + minute,
			Final: true, Names: s.ValueNames(), Values: make([]event.Value, len(s.ValueNames()))}
		r.Values[0] = event.NumberValue(float64(i))
		recs = append(recs, record(s, o.Topic, int32(i%2), &r))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return plan, opts
}

// record encodes r as the window stage writes it to its result topic.
func record(s *stream.Schema, topic string, part int32, r *stream.Result) *kgo.Record {
	k, v, h := s.Record(r)
	return &kgo.Record{Topic: topic, Partition: part, Key: k, Value: v, Headers: h}
}

// TestFeedStoresEveryResultOnce stores more results than one chunk,
// from two partitions: into PostgreSQL by several transactions at once.
func TestFeedStoresEveryResultOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, store testStore) { testFeedStoresEveryResultOnce(t, store) })
}

func testFeedStoresEveryResultOnce(t *testing.T, store testStore) {
	n := 2*feedChunk + 500 // more than two chunks
	if store.Dialect() == "postgres" {
		n = 2*pgFeedChunk + 500
	}
	plan, opts := resultsBroker(t, n)
	o := plan.Outputs[0]
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	feed := NewFeed(FeedConfig{Store: store, Plans: []*pipeline.Plan{plan}, Opts: opts})
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- feed.Run(fctx) }()
	want := map[TopicPartition]int64{{o.Topic, 0}: int64(n / 2), {o.Topic, 1}: int64(n / 2)}
	for {
		offs := offsetsOf(t, store)
		if reflect.DeepEqual(offs, want) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("stored offsets %v, want %v", offs, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rows := query(t, store, Query{Pipeline: plan.Name, Outputs: []*stream.Schema{stream.SchemaOf(&o)}, Limit: 10 * n})
	if len(rows) != n {
		t.Fatalf("%d rows stored, want %d", len(rows), n)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.Key[0]] {
			t.Fatalf("result of %s stored twice", r.Key[0])
		}
		seen[r.Key[0]] = true
	}
}

// TestFeedHolds: while Hold reports true (a disk low on space) the feed
// stores nothing; once it ends, every result is stored.
func TestFeedHolds(t *testing.T) {
	const n = 50
	plan, opts := resultsBroker(t, n)
	store, _ := openTest(t)
	var held atomic.Bool
	held.Store(true)
	feed := NewFeed(FeedConfig{Store: store, Plans: []*pipeline.Plan{plan}, Opts: opts, Hold: held.Load})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- feed.Run(ctx) }()
	rows := func() int {
		return len(query(t, store, Query{Pipeline: plan.Name, Outputs: []*stream.Schema{stream.SchemaOf(&plan.Outputs[0])}, Limit: 10 * n}))
	}
	// Held for a while: the claim is that nothing is stored, so this
	// waits rather than polls; it asserts no time.
	time.Sleep(time.Second)
	if got := rows(); got != 0 {
		t.Fatalf("%d rows stored while held, want 0", got)
	}
	held.Store(false)
	checkfor.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if got := rows(); got != n {
			return fmt.Errorf("%d of %d rows stored after the hold ended", got, n)
		}
		return nil
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

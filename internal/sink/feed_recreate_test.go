package sink

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// TestFeedReadsRecreatedTopicFromStart stores offsets from an earlier
// life of a result topic, as when a Kafka client deleted it and Pulse
// created it again: the feed, resuming at them, skips the new topic's
// first records, until it is told the topic was created again; then it
// reads the topic from its start and stores every result.
func TestFeedReadsRecreatedTopicFromStart(t *testing.T) {
	plan, err := pipeline.BuiltinNamed("city")
	if err != nil {
		t.Fatal(err)
	}
	o := plan.Outputs[0]
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, plan.Outputs[0].Topic, plan.Outputs[1].Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
	prod, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const n = 30
	var recs []*kgo.Record
	for i := range n {
		r := result(o.Name, fmt.Sprintf("s-%04d", i), t0, float64(i))
		recs = append(recs, &kgo.Record{Topic: o.Topic, Partition: int32(i % 2), Value: stream.AppendResultJSON(nil, &r)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	store, _ := openTest(t)
	// The old topic's offsets: 10 per partition.
	if err := store.Commit(ctx, nil, map[string]int64{o.Topic + ":0": 10, o.Topic + ":1": 10}); err != nil {
		t.Fatal(err)
	}
	feed := NewFeed(FeedConfig{Store: store, Plans: []*pipeline.Plan{plan}, Opts: opts})
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- feed.Run(fctx) }()
	stored := func(want int) func() error {
		return func() error {
			rows := query(t, store, Query{Pipeline: plan.Name, Outputs: []string{o.Name}, Limit: 10 * n})
			offs := offsetsOf(t, store)
			if len(rows) != want || offs[o.Topic+":0"] != n/2 || offs[o.Topic+":1"] != n/2 {
				return fmt.Errorf("%d rows stored, offsets %v; want %d rows and %d per partition", len(rows), offs, want, n/2)
			}
			return nil
		}
	}
	checkfor.CheckFor(t, 20*time.Second, 20*time.Millisecond, stored(n-20))
	feed.TopicRecreated(o.Topic)
	checkfor.CheckFor(t, 20*time.Second, 20*time.Millisecond, stored(n))
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

package sink

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

const sessionsYAML = `name: clicks
source: {topic: clicks, key: user, time: {field: at}}
outputs:
  - name: sessions
    group_by: [user]
    window: {session: {gap: 30m}}
    aggregates:
      views: count()
`

// TestFeedKinds feeds inserts, updates, deletes and a malformed record
// of a session output through a broker: an update replaces its row, a
// delete (a tombstone, with or without its header) removes it, the
// malformed record is skipped. Reading the topic again from its start
// into the same store (a replay, as after losing the offsets) leaves the
// same rows, and a restarted feed resumes at the stored offsets.
func TestFeedKinds(t *testing.T) {
	plan, err := pipeline.Parse("clicks.yaml", []byte(sessionsYAML))
	if err != nil {
		t.Fatal(err)
	}
	o := &plan.Outputs[0]
	o.Sinks = []string{"sqlite"}
	s := stream.SchemaOf(o)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, o.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
	res := func(user string, start, end int64, views float64, kind stream.RecordKind) stream.Result {
		return stream.Result{Output: o.Name, GroupBy: o.GroupBy, Key: []string{user}, Start: start, End: end, Final: true,
			Kind: kind, Names: s.ValueNames(), Values: []event.Value{event.NumberValue(views)}}
	}
	a1 := res("u-1", t0, t0+30*minute, 1, stream.KindInsert)
	a1up := res("u-1", t0, t0+32*minute, 2, stream.KindUpdate)
	b1 := res("u-2", t0, t0+30*minute, 1, stream.KindInsert)
	// A late event bridged u-1's session to a later one: the session at
	// t0 is withdrawn and the merged one written under its new start.
	c1 := res("u-3", t0+minute, t0+31*minute, 1, stream.KindInsert)
	c1del := res("u-3", t0+minute, t0+31*minute, 0, stream.KindDelete)
	c2 := res("u-3", t0, t0+31*minute, 2, stream.KindInsert)
	d1 := res("u-4", t0, t0+30*minute, 5, stream.KindInsert)
	var recs []*kgo.Record
	for _, r := range []stream.Result{a1, b1, c1, a1up, c1del, c2, d1} {
		part := int32(0) // every record of a user in one partition
		if r.Key[0] == "u-2" || r.Key[0] == "u-4" {
			part = 1
		}
		recs = append(recs, record(s, o.Topic, part, &r))
	}
	// A delete without its header: the tombstone says it.
	d1del := res("u-4", t0, t0, 0, stream.KindDelete)
	tomb := record(s, o.Topic, 1, &d1del)
	tomb.Headers = nil
	recs = append(recs, tomb, &kgo.Record{Topic: o.Topic, Partition: 1, Value: []byte(`{"user":"u-5"}`)})
	prod, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	want := []stream.Result{a1up, b1, c2} // by window start, then key
	eachStore(t, func(t *testing.T, store testStore) { testFeedKinds(t, ctx, store, plan, opts, want) })
}

func testFeedKinds(t *testing.T, ctx context.Context, store testStore, plan *pipeline.Plan, opts []kgo.Opt, want []stream.Result) {
	o := &plan.Outputs[0]
	s := stream.SchemaOf(o)
	run := func(what string) {
		t.Helper()
		feed := NewFeed(FeedConfig{Store: store, Plans: []*pipeline.Plan{plan}, Opts: opts})
		fctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- feed.Run(fctx) }()
		checkfor.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
			offs := offsetsOf(t, store)
			if offs[TopicPartition{o.Topic, 0}] != 5 || offs[TopicPartition{o.Topic, 1}] != 4 {
				return fmt.Errorf("%s: offsets %v, want 5 and 4", what, offs)
			}
			return nil
		})
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		rows, err := store.Query(ctx, Query{Pipeline: plan.Name, Outputs: []*stream.Schema{s}})
		if err != nil {
			t.Fatal(err)
		}
		sameRows(t, rows, want...)
	}
	run("first read")
	run("restart at the stored offsets")
	if err := Commit(ctx, store, nil, map[TopicPartition]int64{{o.Topic, 0}: 0, {o.Topic, 1}: 0}); err != nil {
		t.Fatal(err)
	}
	run("replay from the start")
}

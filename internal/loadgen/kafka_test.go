package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/event"
)

func TestRunKafka(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "city"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	start := time.Now().Truncate(time.Millisecond)
	sum, err := Run(context.Background(), Config{
		Brokers: cluster.ListenAddrs(), Rate: 2000, Sensors: 100, Zones: 5, Duration: 500 * time.Millisecond, Seed: 6,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, sum)
	if sum.Sent < 500 || sum.Errors != 0 || sum.Accepted != sum.Sent {
		t.Fatalf("summary %v, want about 1000 readings, all acknowledged", sum)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("city"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var p event.CityParser
	var r event.Reading
	got := uint64(0)
	for got < sum.Accepted {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", got, sum.Accepted)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			got++
			if err := p.Parse(rec.Value, &r); err != nil {
				t.Fatalf("record %s: %v", rec.Value, err)
			}
			// Keyed by sensor; stamped when produced (not with the
			// reading's out-of-order event time).
			if string(rec.Key) != r.SensorID || rec.Timestamp.Before(start) || rec.Timestamp.After(time.Now()) {
				t.Fatalf("record key %s, time %s (test began %s) for reading %s", rec.Key, rec.Timestamp, start, rec.Value)
			}
		})
	}
}

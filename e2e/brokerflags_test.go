package e2e

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFsyncBatchAdvertised runs Pulse with --fsync batch and
// --kafka-advertise: a Kafka client seeded with the listen address is told
// the advertised one and produces through it, and the readings sent over
// HTTP (each acknowledged after a sync) and over Kafka are all counted
// once, also after a kill -9 and a restart.
func TestFsyncBatchAdvertised(t *testing.T) {
	in := newInstance(t)
	_, port, err := net.SplitHostPort(in.kafka)
	if err != nil {
		t.Fatal(err)
	}
	in.extra = []string{"--fsync", "batch", "--kafka-advertise", "localhost:" + port}
	p := in.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Host != "localhost" || strconv.Itoa(int(md.Brokers[0].Port)) != port {
		t.Fatalf("metadata brokers %+v, want localhost:%s", md.Brokers, port)
	}

	base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	rs := generate(7, "fs", 20, 4, base, 3*time.Minute, 5*time.Second, 500*time.Millisecond)
	half := len(rs) / 2
	p.mustPost(ndjson(rs[:half]))
	for _, r := range rs[half:] {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "city", Key: []byte(r.sensor), Value: []byte(r.json())}).FirstErr(); err != nil {
			t.Fatalf("produce through the advertised address: %v", err)
		}
	}
	p.kill()
	p = in.start(t)
	end := base.Add(3 * time.Minute)
	p.mustPost([]byte(sentinel("fs", end.Add(time.Minute)).json()))
	want := oracle(rs)
	compare(t, p.waitResults("to="+end.Format(time.RFC3339), len(want)), want)
	p.stop()
}

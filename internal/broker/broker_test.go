package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/bus"
)

func start(t testing.TB, dir string) *Broker {
	t.Helper()
	b, err := Start(Config{DataDir: dir, Listen: "127.0.0.1:0", Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRestartKeepsTopicsRecordsAndOffsets checks what a restart of the
// embedded broker with the same data dir must keep.
func TestRestartKeepsTopicsRecordsAndOffsets(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	b := start(t, dir)
	cl, err := bus.NewClient([]string{b.Addr()}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureTopics(ctx, cl, 4, "events"); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "events", Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "events", Partition: 2, At: 5})
	if err := adm.CommitAllOffsets(ctx, "group", offsets); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	b.Close()

	b = start(t, dir)
	defer b.Close()
	cl, err = bus.NewClient([]string{b.Addr()}, "test", kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	parts, err := bus.Partitions(ctx, cl, "events")
	if err != nil || len(parts) != 4 {
		t.Fatalf("partitions after restart: %v, %v", parts, err)
	}
	got := 0
	for got < 100 && ctx.Err() == nil {
		got += cl.PollFetches(ctx).NumRecords()
	}
	if got != 100 {
		t.Fatalf("%d records after restart, want 100", got)
	}
	committed, err := kadm.NewClient(cl).FetchOffsets(ctx, "group")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := committed.Lookup("events", 2); !ok || o.At != 5 {
		t.Fatalf("committed offset after restart: %+v %v, want 5", o, ok)
	}
}

// BenchmarkBrokerProduceConsume measures the embedded broker with its data
// dir, under each --fsync policy: records produced (acknowledged) and then
// consumed per second.
func BenchmarkBrokerProduceConsume(b *testing.B) {
	for _, policy := range []Fsync{FsyncNone, FsyncInterval, FsyncBatch} {
		b.Run("fsync="+string(policy), func(b *testing.B) { benchProduceConsume(b, policy) })
	}
}

func benchProduceConsume(b *testing.B, policy Fsync) {
	br, err := Start(Config{DataDir: b.TempDir(), Listen: "127.0.0.1:0", Partitions: 4, Fsync: policy})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	ctx := context.Background()
	prod, _ := bus.NewClient([]string{br.Addr()}, "bench", kgo.ProducerLinger(2*time.Millisecond), kgo.MaxBufferedRecords(1<<20))
	defer prod.Close()
	if err := bus.EnsureTopics(ctx, prod, 8, "city"); err != nil {
		b.Fatal(err)
	}
	val := []byte(`{"sensor_id":"S-0001","zone":"zone-01","kind":"traffic","ts":"2026-11-22T08:15:03.250Z","speed_kmh":31.5,"vehicle_count":18,"occupancy":42.0}`)
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("S-%04d", i))
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	wg.Add(b.N)
	start := time.Now()
	for i := 0; i < b.N; i++ {
		prod.Produce(ctx, &kgo.Record{Topic: "city", Key: keys[i%len(keys)], Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	produced := time.Since(start)
	cons, _ := bus.NewClient([]string{br.Addr()}, "bench", kgo.ConsumeTopics("city"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(32<<20))
	defer cons.Close()
	start = time.Now()
	for got := 0; got < b.N; {
		got += cons.PollRecords(ctx, 20000).NumRecords()
	}
	consumed := time.Since(start)
	b.ReportMetric(float64(b.N)/produced.Seconds(), "produced/s")
	b.ReportMetric(float64(b.N)/consumed.Seconds(), "consumed/s")
}

// BenchmarkBrokerAckLatency measures one acknowledged produce at a time
// under each --fsync policy: ns/op is the latency of an acknowledgement.
func BenchmarkBrokerAckLatency(b *testing.B) {
	for _, policy := range []Fsync{FsyncNone, FsyncInterval, FsyncBatch} {
		b.Run("fsync="+string(policy), func(b *testing.B) {
			br, err := Start(Config{DataDir: b.TempDir(), Listen: "127.0.0.1:0", Partitions: 1, Fsync: policy})
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			ctx := context.Background()
			cl, err := bus.NewClient([]string{br.Addr()}, "bench")
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			if err := bus.EnsureTopics(ctx, cl, 1, "city"); err != nil {
				b.Fatal(err)
			}
			rec := []byte(`{"sensor_id":"S-0001","zone":"zone-01","kind":"traffic","ts":"2026-11-22T08:15:03.250Z","speed_kmh":31.5}`)
			for b.Loop() {
				if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "city", Value: rec}).FirstErr(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

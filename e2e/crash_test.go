package e2e

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCrashExact sends 1,000,000 generated readings (fixed seed) in chunks
// and kill -9s Pulse at a random moment after each chunk while the
// pipeline is still working through it, restarting it every time. The
// final results must equal a batch computation over every reading, row
// for row: nothing lost, nothing counted twice.
func TestCrashExact(t *testing.T) {
	total, kills := 1_000_000, 6
	if testing.Short() {
		total = 100_000
	}
	const sensors, zones = 2000, 50
	rng := rand.New(rand.NewPCG(42, 42))
	base := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	// Event time advances 2 ms per reading (about 33 minutes over 1 M),
	// with up to 400 ms of disorder, within the pipeline's 1 s.
	feed := &airFeed{prefix: "cr", sensors: sensors, zones: zones, base: base, step: 2 * time.Millisecond, rng: rng, want: map[string]*aggregate{}}
	chunk := total / kills
	in := newInstance(t)
	in.bin = pulseFastBin
	p := in.start(t)
	for k := 0; k < kills; k++ {
		feed.post(p, k*chunk, min((k+1)*chunk, total))
		// Kill at a random moment while the pipeline works on the chunk.
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		p.kill()
		p = in.start(t)
	}
	want := feed.want
	end := feed.maxTS.Truncate(time.Minute).Add(time.Minute)
	p.mustPost([]byte(sentinel("cr", end.Add(time.Minute)).json()))
	rows := p.waitResults("to="+end.Format(time.RFC3339)+"&limit=1000000", len(want))
	compare(t, rows, want)
	// The window tasks wrote snapshots of their state and deleted the
	// changelog records before them, so the restores above read
	// snapshots. Checked on the sensor output, whose 2,000 groups write
	// enough records in the last life for a snapshot: the embedded broker
	// forgets deletions at a kill -9 (it resets a partition's start
	// offset), and the 50 zone groups may not snapshot again in time.
	truncated := 0
	for _, off := range p.startOffsets("city.sensor_1m.changelog") {
		if off > 0 {
			truncated++
		}
	}
	if truncated == 0 {
		t.Error("no partition of city.sensor_1m.changelog was truncated after a snapshot")
	}
	p.stop()
}

// startOffsets returns the first offset of every partition of topic on
// p's embedded broker.
func (p *proc) startOffsets(topic string) map[int32]int64 { return p.offsets(topic, true) }

// offsets lists the start (or end) offset of every partition of topic on
// p's embedded broker.
func (p *proc) offsets(topic string, start bool) map[int32]int64 {
	p.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.kafka))
	if err != nil {
		p.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list := kadm.NewClient(cl).ListEndOffsets
	if start {
		list = kadm.NewClient(cl).ListStartOffsets
	}
	listed, err := list(ctx, topic)
	if err != nil {
		p.t.Fatalf("list offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

func (p *proc) mustPost(body []byte) {
	p.t.Helper()
	code, ir, raw := p.post(body, "application/x-ndjson")
	if code != 200 || ir.Rejected != 0 {
		if len(raw) > 500 {
			raw = raw[:500]
		}
		p.t.Fatalf("ingest: %d %s", code, raw)
	}
}

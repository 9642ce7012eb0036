package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/archive"
	"github.com/pulsehq/pulse/internal/checkfor"
)

// TestArchiveCrash ingests city readings under load and kill -9s Pulse
// five times while it writes Parquet files (it publishes a roll every
// 200 ms, the readings spread over hours), restarting it on the same data
// dir. The archive must then hold every event of the city topic exactly
// once, and every reading ingest acknowledged.
func TestArchiveCrash(t *testing.T) {
	in := newInstance(t, "--archive-roll-age", "200ms", "--archive-roll-rows", "3000")
	in.bin = pulseFastBin
	rng := rand.New(rand.NewPCG(7, 7))
	var seq atomic.Int64
	var mu sync.Mutex
	acked := map[int64]bool{} // event times of acknowledged readings
	base := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC).UnixMilli()
	for k := 0; k <= 5; k++ {
		p := in.start(t)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				loadCity(ctx, p.url("/v1/streams/city/events"), &seq, base, func(ts []int64) {
					mu.Lock()
					for _, v := range ts {
						acked[v] = true
					}
					mu.Unlock()
				})
			}()
		}
		if k == 5 {
			time.Sleep(time.Second)
			cancel()
			wg.Wait()
			checkfor.CheckFor(t, 60*time.Second, 200*time.Millisecond, func() error {
				return archiveMatchesTopic(t, p.kafka, filepath.Join(in.dataDir, "archive"))
			})
			p.stop()
			break
		}
		time.Sleep(time.Duration(1500+rng.IntN(1500)) * time.Millisecond)
		p.kill()
		cancel()
		wg.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d readings acknowledged, %d sent", len(acked), seq.Load())
	if len(acked) < 10_000 {
		t.Fatalf("only %d readings acknowledged: no load", len(acked))
	}
	// The last run stopped cleanly: its broker is gone, so check the files
	// against the acknowledged readings (the topic was compared above).
	rows := readArchive(t, filepath.Join(in.dataDir, "archive"))
	seen := map[int64]int{}
	for _, r := range rows {
		seen[r.TS]++
	}
	for ts := range acked {
		if seen[ts] != 1 {
			t.Fatalf("acknowledged reading at %d is %d times in the archive", ts, seen[ts])
		}
	}
	left, _ := filepath.Glob(filepath.Join(in.dataDir, "archive", ".spool", "*"))
	if len(left) != 0 {
		t.Errorf("after a clean stop the spool holds %v", left)
	}
}

// loadCity posts batches of 500 readings with unique event times (base +
// 20 ms per reading, so a few minutes of load spans hours) until ctx ends
// or the server is gone; acked is told the event times of each batch the
// server accepted.
func loadCity(ctx context.Context, url string, seq *atomic.Int64, base int64, acked func([]int64)) {
	var body bytes.Buffer
	ts := make([]int64, 0, 500)
	for ctx.Err() == nil {
		body.Reset()
		ts = ts[:0]
		for range 500 {
			n := seq.Add(1)
			t := base + n*20
			ts = append(ts, t)
			fmt.Fprintf(&body, `{"sensor_id":"S-%d","zone":"zone-%02d","kind":"traffic","ts":%d,"speed_kmh":%d.5}`+"\n", n%1000, n%20, t, n%120)
		}
		req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body.Bytes()))
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return // killed
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			acked(append([]int64(nil), ts...))
		}
	}
}

// archived is an archive row, read with parquet-go.
type archived struct {
	Partition int32    `parquet:"kafka_partition"`
	Offset    int64    `parquet:"kafka_offset"`
	TS        int64    `parquet:"event_time,timestamp(millisecond)"`
	Key       *string  `parquet:"key,optional"`
	Sensor    string   `parquet:"sensor_id"`
	Speed     *float64 `parquet:"speed_kmh,optional"`
}

// readArchive reads every file of stream=city under dir.
func readArchive(t *testing.T, dir string) []archived {
	t.Helper()
	var out []archived
	err := filepath.WalkDir(filepath.Join(dir, "stream=city"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if _, err := archive.ParsePart(filepath.ToSlash(rel)); err != nil {
			return fmt.Errorf("archive holds %s: %w", rel, err)
		}
		rows, err := parquet.ReadFile[archived](path)
		if err != nil {
			return fmt.Errorf("read %s: %w", rel, err)
		}
		out = append(out, rows...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// archiveMatchesTopic compares the archive under dir with the city topic
// of the broker at addr, read read_committed to its end: every record
// once, with its key and event time.
func archiveMatchesTopic(t *testing.T, addr, dir string) error {
	t.Helper()
	type po struct {
		p int32
		o int64
	}
	want := map[po]int64{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("city"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ends := (&proc{t: t, kafka: addr}).offsets("city", false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	read := map[int32]int64{}
	done := func() bool {
		for p, e := range ends {
			if read[p] < e {
				return false
			}
		}
		return true
	}
	for !done() && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			var v struct{ TS int64 }
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatalf("city record %d/%d: %v", r.Partition, r.Offset, err)
			}
			want[po{r.Partition, r.Offset}] = v.TS
			read[r.Partition] = r.Offset + 1
		})
	}
	rows := readArchive(t, dir)
	seen := map[po]bool{}
	for _, r := range rows {
		k := po{r.Partition, r.Offset}
		ts, ok := want[k]
		switch {
		case seen[k]:
			return fmt.Errorf("partition %d offset %d archived twice", r.Partition, r.Offset)
		case !ok:
			return fmt.Errorf("archive holds partition %d offset %d, not in the topic", r.Partition, r.Offset)
		case r.TS != ts || r.Key == nil || *r.Key != r.Sensor || !strings.HasPrefix(r.Sensor, "S-"):
			return fmt.Errorf("partition %d offset %d: archived ts %d key %v sensor %s, topic ts %d", r.Partition, r.Offset, r.TS, r.Key, r.Sensor, ts)
		}
		seen[k] = true
	}
	if len(seen) != len(want) {
		return fmt.Errorf("archive holds %d of the topic's %d events", len(seen), len(want))
	}
	return nil
}

package ingest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkIngest measures decode, validation and produce through the
// handler (no HTTP transport) against an in-process kfake broker, with
// 1,000-event NDJSON batches. The client options are those of pulse run.
// The sub-benchmarks keep 1 or 8 requests per CPU in flight
// (b.SetParallelism). cpu-s/Mevents is the process's CPU time (user and
// system, the in-process broker included) per million events.
func BenchmarkIngest(b *testing.B) {
	for _, bc := range []struct {
		name     string
		inFlight int
	}{{"inflight=1xCPU", 1}, {"inflight=8xCPU", 8}} {
		b.Run(bc.name, func(b *testing.B) {
			env := newTestEnv(b, Config{ProduceTimeout: 10 * time.Second},
				kgo.RecordDeliveryTimeout(10*time.Second),
				kgo.ProducerLinger(2*time.Millisecond),
				kgo.MaxBufferedRecords(1<<20),
				kgo.MaxBufferedBytes(512<<20))
			mux := http.NewServeMux()
			mux.Handle("POST /v1/streams/{stream}/events", env.handler)
			body := ndjsonBatch(1000, baseTS)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.SetParallelism(bc.inFlight)
			var events atomic.Int64
			cpu0 := cpuTime(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, "/v1/streams/city/events", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/x-ndjson")
					rec := httptest.NewRecorder()
					mux.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Errorf("answer %d %s", rec.Code, rec.Body.Bytes()[:min(200, rec.Body.Len())])
						return
					}
					events.Add(1000)
				}
			})
			b.ReportMetric(float64(events.Load())/b.Elapsed().Seconds(), "events/s")
			if n := events.Load(); n > 0 {
				b.ReportMetric((cpuTime(b)-cpu0).Seconds()/float64(n)*1e6, "cpu-s/Mevents")
			}
		})
	}
}

// cpuTime is the CPU time the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

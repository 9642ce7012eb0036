package archive

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkArchiveCity measures the archiver's encode and write path on
// one goroutine: parsing city readings, encoding them as Parquet rows,
// compressing, writing and publishing files of 100,000-row rolls into a
// local folder (Kafka not included).
func BenchmarkArchiveCity(b *testing.B) {
	for _, codec := range []string{"zstd", "snappy"} {
		b.Run(codec, func(b *testing.B) {
			in := cityEvents(100_000, false, 9)
			recs := make([]*kgo.Record, len(in))
			var bytes int64
			for i, e := range in {
				recs[i] = &kgo.Record{Key: []byte(e.key), Value: e.val, Partition: 0, Offset: int64(i)}
				bytes += int64(len(e.val))
			}
			st, err := NewLocal(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			a, err := New(Config{Sources: []Source{citySource}, Store: st, Compression: codec, Registerer: prometheus.NewRegistry()})
			if err != nil {
				b.Fatal(err)
			}
			c, _ := newCodec(citySource)
			s := &stream{Source: citySource, codec: c, m: a.m.stream("city")}
			b.SetBytes(bytes)
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			off := int64(0)
			for n := 0; n < b.N; n++ {
				r := &roll{w: &worker{a: a, n: 1}, src: s, part: 0, from: -1, next: -1, end: -1, files: map[int64]*fileWriter{}}
				for i, rec := range recs {
					rec.Offset = off
					off++
					if err := a.add(r, rec); err != nil {
						b.Fatal(err)
					}
					if i%20_000 == 19_999 {
						if err := a.flush(r); err != nil {
							b.Fatal(err)
						}
					}
				}
				if err := a.complete(context.Background(), r); err != nil {
					b.Fatal(err)
				}
			}
			events := float64(b.N * len(recs))
			b.ReportMetric(events/time.Since(start).Seconds(), "events/s")
			// The machine may be shared: the rate per CPU second of this
			// process (all threads, the collector's too) is what one core
			// does.
			b.ReportMetric(events/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
		})
	}
}

// cpuTime is the CPU time the process used so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

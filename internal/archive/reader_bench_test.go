package archive

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkHistoryRead reads 1 h, 6 h and 24 h out of a day of city
// readings archived at PULSE_BENCH_RATE events/s (default 25: a day of
// 1,000 events/s is 86.4 M events, too many to build here; the cost per
// event read is what extrapolates), over 8 partitions in rolls of 5
// minutes' events, row groups of 122,880 rows as the archiver writes.
func BenchmarkHistoryRead(b *testing.B) {
	rate := 25
	if v, err := strconv.Atoi(os.Getenv("PULSE_BENCH_RATE")); err == nil && v > 0 {
		rate = v
	}
	st, err := NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	day := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).UnixMilli()
	n := rate * 86400
	recs := make([]*kgo.Record, n)
	offs := make([]int64, 8)
	for i := range n {
		p := int32(i % 8)
		ts := day + int64(i)*1000/int64(rate)
		v := fmt.Sprintf(`{"sensor_id":"S-%04d","zone":"zone-%02d","kind":"traffic","ts":%d,"speed_kmh":%d.5,"vehicle_count":%d}`, i%1000, i%20, ts, i%90, i%40)
		recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "S-%04d", i%1000), Value: []byte(v), Partition: p, Offset: offs[p]}
		offs[p]++
	}
	if err := Import(context.Background(), st, citySource, recs, rate*300/8, 122_880); err != nil {
		b.Fatal(err)
	}
	recs = nil
	rd := NewReader(st)
	for _, hours := range []int64{1, 6, 24} {
		b.Run(fmt.Sprintf("%dh", hours), func(b *testing.B) {
			from := day + 9*3600_000
			if hours == 24 {
				from = day
			}
			q := ReadQuery{Stream: "city", From: from, To: from + hours*3600_000}
			var st ReadStats
			rows := 0
			for b.Loop() {
				st, rows = ReadStats{}, 0
				if err := rd.Read(context.Background(), q, &st, func(*parquet.Schema, parquet.Row, Position) error {
					rows++
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows), "events")
			b.ReportMetric(float64(st.Files), "files")
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

package archive

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// benchDay is the day the history benchmarks archive.
var benchDay = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).UnixMilli()

// benchDenseHour is the hour of benchDay archived at the full rate.
const benchDenseHour = 9

// benchRates returns the events/s of the dense hour (PULSE_BENCH_RATE,
// default 1,000) and of the other 23 hours (PULSE_BENCH_SPARSE,
// default 25).
func benchRates() (dense, sparse int) {
	dense, sparse = 1000, 25
	if v, err := strconv.Atoi(os.Getenv("PULSE_BENCH_RATE")); err == nil && v > 0 {
		dense = v
	}
	if v, err := strconv.Atoi(os.Getenv("PULSE_BENCH_SPARSE")); err == nil && v > 0 {
		sparse = v
	}
	return dense, sparse
}

// benchArchive archives benchDay of city readings through Import: hour
// 09 at the dense rate, the others at the sparse rate; 1,000 sensors
// over 8 partitions keyed by sensor (sensor i%1000, partition
// sensor%8), a roll per partition every 5 minutes of events (as the
// archiver's Roll.Age does) and row groups of 122,880 rows. Under
// PULSE_BENCH_DIR the archive is built once and reused (the folder is
// named by the rates); else in a temporary folder.
func benchArchive(b *testing.B) *LocalStore {
	dense, sparse := benchRates()
	dir := b.TempDir()
	if d := os.Getenv("PULSE_BENCH_DIR"); d != "" {
		dir = filepath.Join(d, fmt.Sprintf("day-%d-%d", dense, sparse))
	}
	st, err := NewLocal(dir)
	if err != nil {
		b.Fatal(err)
	}
	done := filepath.Join(dir, "built")
	if _, err := os.Stat(done); err == nil {
		return st
	}
	if err := ImportDay(context.Background(), st, citySource, benchDay, benchDenseHour, dense, sparse); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkHistoryRead reads ranges of the benchmark day with
// Reader.Read: 1 min and 1 h inside the dense hour, 6 h and 24 h from
// its start (the 6 h and 24 h hold the dense hour and sparse ones: the
// files, row groups and events per op say what was read). "page" stops
// at the 10,001st event, as a first history page of 10,000 does; "all"
// reads the range whole; "fields" asks for event_time, sensor_id and
// speed_kmh only; "where" keeps sensor S-0500 only. cpu-ms/op is the
// process's CPU time (getrusage: user + system, the collector included)
// per op: on a shared machine the wall clock also counts waiting for a
// core.
func BenchmarkHistoryRead(b *testing.B) {
	rd := NewReader(benchArchive(b))
	dense := benchDay + benchDenseHour*3600_000
	ranges := []struct {
		name     string
		from, to int64
	}{
		{"1min", dense + 30*60_000, dense + 31*60_000},
		{"1h", dense, dense + 3600_000},
		{"6h", dense, dense + 6*3600_000},
		{"24h", benchDay, benchDay + 24*3600_000},
	}
	kinds := []struct {
		name  string
		limit int
		cols  []string
		where []Equal
	}{
		{"page", 10_001, nil, nil},
		{"all", 0, nil, nil},
		{"fields", 0, []string{ColEventTime, "sensor_id", "speed_kmh"}, nil},
		{"where", 0, nil, []Equal{{Column: "sensor_id", Value: "S-0500"}}},
	}
	for _, r := range ranges {
		for _, k := range kinds {
			if k.name != "page" && k.name != "all" && r.name != "1h" {
				continue
			}
			b.Run(r.name+"/"+k.name, func(b *testing.B) {
				q := ReadQuery{Stream: "city", From: r.from, To: r.to, Columns: k.cols, Where: k.where}
				var st ReadStats
				rows, cpu0 := 0, cpuTime()
				for b.Loop() {
					st, rows = ReadStats{}, 0
					if err := rd.Read(context.Background(), q, &st, func(s *parquet.Schema, row parquet.Row, _ Position) error {
						for _, w := range k.where { // as the history API checks
							leaf, _ := s.Lookup(w.Column)
							if v := cellOf(row, leaf.ColumnIndex); string(v.ByteArray()) != w.Value {
								return nil
							}
						}
						rows++
						if rows == k.limit {
							return ErrStop
						}
						return nil
					}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
				b.ReportMetric(float64(rows), "events")
				b.ReportMetric(float64(st.Rows), "decoded")
				b.ReportMetric(float64(st.Files), "files")
				b.ReportMetric(float64(st.RowGroups), "groups")
				b.ReportMetric(float64(st.RowGroupsSkipped), "skipped")
				b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// cellOf returns the value of leaf column col in row (null if absent).
func cellOf(row parquet.Row, col int) parquet.Value {
	for _, v := range row {
		if v.Column() == col {
			return v
		}
	}
	return parquet.NullValue()
}

package serve_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/pulsehq/pulse/internal/archive"
	"github.com/pulsehq/pulse/internal/health"
	"github.com/pulsehq/pulse/internal/serve"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// benchDay is the day the history benchmark archives; its hour 09 is
// archived at the full rate.
var benchDay = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

const benchDenseHour = 9

// benchArchive archives benchDay as internal/archive's
// BenchmarkHistoryRead does (the same records, rolls and folder name
// under PULSE_BENCH_DIR, so one build serves both): hour 09 at
// PULSE_BENCH_RATE events/s (default 1,000), the others at
// PULSE_BENCH_SPARSE (default 25), 1,000 sensors over 8 partitions
// keyed by sensor, a roll per partition every 5 minutes of events, row
// groups of 122,880 rows.
func benchArchive(b *testing.B) *archive.LocalStore {
	dense, sparse := 1000, 25
	if v, err := strconv.Atoi(os.Getenv("PULSE_BENCH_RATE")); err == nil && v > 0 {
		dense = v
	}
	if v, err := strconv.Atoi(os.Getenv("PULSE_BENCH_SPARSE")); err == nil && v > 0 {
		sparse = v
	}
	dir := b.TempDir()
	if d := os.Getenv("PULSE_BENCH_DIR"); d != "" {
		dir = filepath.Join(d, fmt.Sprintf("day-%d-%d", dense, sparse))
	}
	st, err := archive.NewLocal(dir)
	if err != nil {
		b.Fatal(err)
	}
	done := filepath.Join(dir, "built")
	if _, err := os.Stat(done); err == nil {
		return st
	}
	if err := archive.ImportDay(context.Background(), st, citySrc, benchDay.UnixMilli(), benchDenseHour, dense, sparse); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return st
}

// benchServer serves the benchmark archive's history.
func benchServer(b *testing.B) string {
	st := benchArchive(b)
	srv := serveConfig(b, serve.Config{Addr: "127.0.0.1:0", Metrics: telemetry.New(), Health: &health.Registry{},
		History: &serve.History{Reader: archive.NewReader(st), Streams: map[string]archive.Source{"city": citySrc}}})
	return "http://" + srv.Addr()
}

// historyGet fetches one history page and returns its event count, its
// size and the next token ("" on the last page).
func historyGet(b *testing.B, u string, format string) (events int, size int64, next string) {
	resp, err := http.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		b.Fatalf("%s: %d %s", u, resp.StatusCode, body)
	}
	if format == "parquet" {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			b.Fatal(err)
		}
		f, err := parquet.OpenFile(bytes.NewReader(body), int64(len(body))) // the footer only
		if err != nil {
			b.Fatal(err)
		}
		return int(f.NumRows()), int64(len(body)), resp.Trailer.Get("Pulse-Next")
	}
	if format == "csv" {
		n := int64(0)
		buf := make([]byte, 64<<10)
		for {
			k, err := resp.Body.Read(buf)
			for _, c := range buf[:k] {
				if c == '\n' {
					events++
				}
			}
			n += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		return events - 1, n, resp.Trailer.Get("Pulse-Next") // less the header line
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	// Not json.Unmarshal: decoding 19 MB pages would time the client.
	// The benchmark's values hold no braces, so events are the "},{"
	// separators plus one, and the token is the tail's "next".
	if i := bytes.LastIndex(body, []byte(`],"next":"`)); i >= 0 {
		next = string(body[i+10 : bytes.LastIndexByte(body, '"')])
	}
	if bytes.Contains(body, []byte(`"events":[{`)) {
		events = bytes.Count(body, []byte("},{")) + 1
	}
	return events, int64(len(body)), next
}

// BenchmarkHistoryAPI times GET /v1/streams/city/history on the
// benchmark day: "page" is the first page (the default limit, 10,000),
// "all" pages through the whole range with limit=100000 (JSON, CSV or Parquet,
// every column or three fields), "where" is where=sensor_id=S-0500 over
// the dense hour (3,600 events, one page). cpu-ms/op is the process's
// CPU time per op (getrusage: server, client and collector): on a
// shared machine the wall clock also counts waiting for a core.
func BenchmarkHistoryAPI(b *testing.B) {
	base := benchServer(b)
	dense := benchDay.Add(benchDenseHour * time.Hour)
	cases := []struct {
		name     string
		from, to time.Time
		q        url.Values
		all      bool
	}{
		{"1min/page", dense.Add(30 * time.Minute), dense.Add(31 * time.Minute), url.Values{}, false},
		{"1h/page", dense, dense.Add(time.Hour), url.Values{}, false},
		{"6h/page", dense, dense.Add(6 * time.Hour), url.Values{}, false},
		{"24h/page", benchDay, benchDay.Add(24 * time.Hour), url.Values{}, false},
		{"1h/all/json", dense, dense.Add(time.Hour), url.Values{"limit": {"100000"}}, true},
		{"1h/all/csv", dense, dense.Add(time.Hour), url.Values{"limit": {"100000"}, "format": {"csv"}}, true},
		{"1h/all/parquet", dense, dense.Add(time.Hour), url.Values{"limit": {"100000"}, "format": {"parquet"}}, true},
		{"1h/all/json/fields", dense, dense.Add(time.Hour), url.Values{"limit": {"100000"}, "fields": {"event_time,sensor_id,speed_kmh"}}, true},
		{"1h/where", dense, dense.Add(time.Hour), url.Values{"where": {"sensor_id=S-0500"}}, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			q := c.q
			q.Set("from", c.from.Format(time.RFC3339))
			q.Set("to", c.to.Format(time.RFC3339))
			format := q.Get("format")
			var events, pages int
			var size int64
			cpu0 := cpuTime()
			for b.Loop() {
				events, pages, size = 0, 0, 0
				q.Del("after")
				for {
					n, k, next := historyGet(b, base+"/v1/streams/city/history?"+q.Encode(), format)
					events, size, pages = events+n, size+k, pages+1
					if next == "" || !c.all {
						break
					}
					q.Set("after", next)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(events), "events")
			b.ReportMetric(float64(pages), "pages")
			b.ReportMetric(float64(size)/float64(max(events, 1)), "bytes/event")
			b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// cpuTime returns the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package serve_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/health"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/serve"
	"github.com/pulsehq/pulse/internal/stream"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// startServer runs a server on the city pipeline with an empty board,
// after edit changed its config.
func startServer(t *testing.T, edit func(*serve.Config)) (string, *stream.Board) {
	t.Helper()
	srv, board := runServer(t, edit)
	return "http://" + srv.Addr(), board
}

func runServer(t *testing.T, edit func(*serve.Config)) (*serve.Server, *stream.Board) {
	t.Helper()
	board := &stream.Board{}
	cfg := serve.Config{
		Addr: "127.0.0.1:0", Pipelines: []*pipeline.Plan{cityPlan(t)}, Board: board,
		Metrics: telemetry.New(), LiveEvery: 20 * time.Millisecond,
		Health: &health.Registry{},
	}
	if edit != nil {
		edit(&cfg)
	}
	srv := serveConfig(t, cfg)
	return srv, board
}

// liveMsg is one decoded live event.
type liveMsg struct {
	Snapshot bool             `json:"snapshot"`
	Results  []map[string]any `json:"results"`
	Removed  []map[string]any `json:"removed"`
}

// liveStream reads live events from a stream.
type liveStream struct {
	t    *testing.T
	resp *http.Response
	sc   *bufio.Scanner
}

func openLive(t *testing.T, url string) *liveStream {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("live view: status %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	return &liveStream{t: t, resp: resp, sc: sc}
}

// next returns the next live event and its size in bytes on the wire.
func (l *liveStream) next() (liveMsg, int) {
	l.t.Helper()
	for l.sc.Scan() {
		line := l.sc.Text()
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var m liveMsg
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			l.t.Fatalf("live event %q: %v", data, err)
		}
		return m, len("event: live\n") + len(line) + 2
	}
	l.t.Fatalf("live stream ended: %v", l.sc.Err())
	return liveMsg{}, 0
}

// rowID identifies a live row as the dashboard does.
func rowID(row map[string]any) string {
	k, _ := json.Marshal(row["key"])
	return string(k) + "|" + fmt.Sprint(row["window_start"])
}

// apply merges a live event into rows the way the dashboard's app.js does.
func apply(rows map[string]map[string]any, m liveMsg) {
	if m.Snapshot {
		clear(rows)
	}
	for _, r := range m.Results {
		old, ok := rows[rowID(r)]
		if !ok {
			rows[rowID(r)] = r
			continue
		}
		for f, v := range r {
			if v == nil {
				delete(old, f)
			} else {
				old[f] = v
			}
		}
	}
	for _, r := range m.Removed {
		delete(rows, rowID(r))
	}
}

// windows makes open zone_1m windows of a zone whose named aggregates
// have the given values.
type windows struct{ names []string }

func newWindows(t *testing.T) windows {
	return windows{names: zoneWindow(t, "x", time.Unix(0, 0), false, nil).Names}
}

func (w windows) make(zone string, start int64, fields map[string]float64) stream.Result {
	r := stream.Result{Output: "zone_1m", GroupBy: []string{"zone"}, Key: []string{zone},
		Start: start, End: start + 60_000, Names: w.names}
	for _, n := range w.names {
		if v, ok := fields[n]; ok {
			r.Values = append(r.Values, event.NumberValue(v))
		} else {
			r.Values = append(r.Values, event.Value{})
		}
	}
	return r
}

// waitChange reads events until one carries results or removals.
func (l *liveStream) waitChange() (liveMsg, int) {
	l.t.Helper()
	for {
		m, n := l.next()
		if len(m.Results) > 0 || len(m.Removed) > 0 || m.Snapshot {
			return m, n
		}
	}
}

func TestLiveSendsChangesOnly(t *testing.T) {
	win := newWindows(t)
	base, board := startServer(t, nil)
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	a := win.make("zone-a", t0, map[string]float64{"count": 1, "speed_kmh_avg": 40, "pm25_avg": 9})
	b := win.make("zone-b", t0, map[string]float64{"count": 2, "speed_kmh_avg": 50})
	board.Set("city", "zone_1m", 0, stream.Live{Watermark: t0, Results: []stream.Result{a, b}})
	live := openLive(t, base+"/v1/pipelines/city/live?output=zone_1m")

	if !live.resp.Uncompressed {
		t.Error("the live view was not gzipped for a client that accepts gzip")
	}
	first, _ := live.next()
	if !first.Snapshot || len(first.Results) != 2 {
		t.Fatalf("first event: snapshot %v with %d rows, want a snapshot of 2", first.Snapshot, len(first.Results))
	}
	// Nothing changed: the next event has no rows.
	if m, _ := live.next(); m.Snapshot || len(m.Results) != 0 || len(m.Removed) != 0 {
		t.Fatalf("event without changes: %+v", m)
	}

	// zone-a's count and speed change, its PM2.5 goes; zone-b stays.
	a2 := win.make("zone-a", t0, map[string]float64{"count": 3, "speed_kmh_avg": 41})
	board.Set("city", "zone_1m", 0, stream.Live{Watermark: t0, Results: []stream.Result{a2, b}})
	m, _ := live.waitChange()
	want := map[string]any{"key": map[string]any{"zone": "zone-a"}, "window_start": "2026-05-01T10:00:00Z",
		"count": 3.0, "speed_kmh_avg": 41.0, "pm25_avg": nil}
	if m.Snapshot || len(m.Results) != 1 || !reflect.DeepEqual(m.Results[0], want) || len(m.Removed) != 0 {
		t.Fatalf("delta: %+v, want results [%v] and nothing removed", m, want)
	}

	// zone-b's window closes; a new one opens for zone-a.
	a3 := win.make("zone-a", t0+60_000, map[string]float64{"count": 1})
	board.Set("city", "zone_1m", 0, stream.Live{Watermark: t0, Results: []stream.Result{a2, a3}})
	m, _ = live.waitChange()
	if len(m.Results) != 1 || m.Results[0]["window_start"] != "2026-05-01T10:01:00Z" || m.Results[0]["output"] != "zone_1m" {
		t.Fatalf("new row: %+v, want the whole new window of zone-a", m.Results)
	}
	if len(m.Removed) != 1 || !reflect.DeepEqual(m.Removed[0], map[string]any{"key": map[string]any{"zone": "zone-b"}, "window_start": "2026-05-01T10:00:00Z"}) {
		t.Fatalf("removed: %+v, want zone-b's window", m.Removed)
	}
}

// TestLiveDeltasRebuildSnapshot applies a stream of deltas the way the
// dashboard does and checks that it always equals the full snapshot, and
// measures the bytes per push of each with 1,000 sensors.
func TestLiveDeltasRebuildSnapshot(t *testing.T) {
	win := newWindows(t)
	base, board := startServer(t, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	counts := map[string]float64{}
	gen := func(step int) []stream.Result {
		var rs []stream.Result
		for i := range 1000 {
			s := fmt.Sprintf("S-%04d", i)
			start := t0 + int64(step/10)*60_000
			if rng.IntN(2) == 0 { // about half the sensors get an event per push
				counts[s]++
			}
			fields := map[string]float64{"count": counts[s], "pm25_avg": 10 + float64(int(counts[s])%7)}
			if i%3 == 0 {
				fields["speed_kmh_avg"] = 30 + counts[s]
			}
			rs = append(rs, win.make(s, start, fields))
		}
		return rs
	}
	board.Set("city", "zone_1m", 0, stream.Live{Watermark: t0, Results: gen(0)})
	delta := openLive(t, base+"/v1/pipelines/city/live?output=zone_1m")
	rows := map[string]map[string]any{}
	m, n := delta.next()
	apply(rows, m)
	snapBytes, deltaBytes, deltas := n, 0, 0
	for step := 1; step <= 25; step++ {
		board.Set("city", "zone_1m", 0, stream.Live{Watermark: t0, Results: gen(step)})
		m, n := delta.waitChange()
		apply(rows, m)
		deltaBytes += n
		deltas++
		// A full=1 stream opened now starts with the board as it is.
		full := openLive(t, base+"/v1/pipelines/city/live?output=zone_1m&full=1")
		f, _ := full.next()
		full.resp.Body.Close()
		if !f.Snapshot {
			t.Fatal("a full=1 stream sent a delta")
		}
		want := map[string]map[string]any{}
		apply(want, f)
		if !reflect.DeepEqual(rows, want) {
			for id, r := range want {
				if !reflect.DeepEqual(rows[id], r) {
					t.Fatalf("step %d: the rows rebuilt from deltas differ from the snapshot: %s is %v, want %v", step, id, rows[id], r)
				}
			}
			t.Fatalf("step %d: the rows rebuilt from deltas differ from the snapshot: %d rows, want %d", step, len(rows), len(want))
		}
		// And a full=1 stream sends snapshots after its first event too.
		if step == 1 {
			full := openLive(t, base+"/v1/pipelines/city/live?output=zone_1m&full=1")
			full.next()
			if f, _ := full.next(); !f.Snapshot || len(f.Results) != 1000 {
				t.Fatalf("second event of a full=1 stream: snapshot %v with %d rows", f.Snapshot, len(f.Results))
			}
			full.resp.Body.Close()
		}
	}
	t.Logf("1,000 sensors: snapshot %d bytes, delta %d bytes per push on average", snapBytes, deltaBytes/deltas)
	if deltaBytes/deltas >= snapBytes/2 {
		t.Errorf("a delta averages %d bytes against a %d-byte snapshot: not the changes only", deltaBytes/deltas, snapBytes)
	}
}

func TestLiveClientsBounded(t *testing.T) {
	base, _ := startServer(t, func(c *serve.Config) { c.MaxLiveClients = 2 })
	url := base + "/v1/pipelines/city/live?output=zone_1m"
	first := openLive(t, url)
	openLive(t, url)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third live view: status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	first.resp.Body.Close()
	checkfor.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d after a live view closed", resp.StatusCode)
		}
		return nil
	})
}

// TestLiveCutsOffNonReader opens a live view and never reads it: once the
// socket buffers are full, the server drops it instead of waiting.
func TestLiveCutsOffNonReader(t *testing.T) {
	win := newWindows(t)
	base, board := startServer(t, func(c *serve.Config) { c.LiveWriteTimeout = 200 * time.Millisecond })
	t0 := time.Now().UnixMilli()
	var rs []stream.Result
	for i := range 2000 {
		rs = append(rs, win.make(fmt.Sprintf("S-%04d", i), t0, map[string]float64{"count": 1, "pm25_avg": 12.5, "speed_kmh_avg": 40}))
	}
	board.Set("city", "zone_1m", 0, stream.Live{Watermark: t0, Results: rs})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	fmt.Fprintf(conn, "GET /v1/pipelines/city/live?output=zone_1m&full=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
	gauge := func(want string) func() error {
		return func() error {
			_, body := get(t, base+"/metrics")
			if !strings.Contains(body, "\npulse_live_clients "+want+"\n") {
				return fmt.Errorf("pulse_live_clients is not %s", want)
			}
			return nil
		}
	}
	checkfor.CheckFor(t, 10*time.Second, 10*time.Millisecond, gauge("1"))
	checkfor.CheckFor(t, 30*time.Second, 50*time.Millisecond, gauge("0"))
}

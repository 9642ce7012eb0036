package serve_test

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/health"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/serve"
	"github.com/pulsehq/pulse/internal/sink"
	"github.com/pulsehq/pulse/internal/stream"
	"github.com/pulsehq/pulse/internal/telemetry"
)

func startAPI(t *testing.T) (string, *sink.SQLite, *stream.Board) {
	t.Helper()
	return startAPIWith(t, cityPlan(t))
}

// startAPIWith serves the given pipelines.
func startAPIWith(t *testing.T, plans ...*pipeline.Plan) (string, *sink.SQLite, *stream.Board) {
	t.Helper()
	store, err := sink.OpenSQLite(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	board := &stream.Board{}
	srv := serveConfig(t, serve.Config{
		Addr: "127.0.0.1:0", Pipelines: plans, Store: store, Board: board,
		Metrics: telemetry.New(), LiveEvery: 50 * time.Millisecond,
		Health: &health.Registry{},
	})
	return "http://" + srv.Addr(), store, board
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func zoneResult(t *testing.T, zone string, start time.Time, speeds ...float64) stream.Result {
	sum, lo, hi := 0.0, speeds[0], speeds[0]
	for _, v := range speeds {
		sum += v
		lo, hi = min(lo, v), max(hi, v)
	}
	n := float64(len(speeds))
	return zoneWindow(t, zone, start, true, map[string]float64{"count": n, "speed_kmh_count": n,
		"speed_kmh_avg": sum / n, "speed_kmh_min": lo, "speed_kmh_max": hi})
}

func TestResultsAPI(t *testing.T) {
	base, store, _ := startAPI(t)
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	results := []stream.Result{zoneResult(t, "zone-01", t0, 10, 20), zoneResult(t, "zone-02", t0, 30), zoneResult(t, "zone-01", t0.Add(time.Minute), 40)}
	commitResults(t, store, cityPlan(t), results...)

	code, body := get(t, base+"/v1/pipelines/city/results?output=zone_1m&key=zone-01&from=2026-05-01T10:00:00Z&to=2026-05-01T10:01:00Z")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var out struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 1 {
		t.Fatalf("[from, to) on window start and key filter: %d rows, want 1: %s", len(out.Results), body)
	}
	row := out.Results[0]
	if row["window_start"] != "2026-05-01T10:00:00Z" || row["window_end"] != "2026-05-01T10:01:00Z" ||
		row["speed_kmh_avg"] != 15.0 || row["speed_kmh_min"] != 10.0 || row["speed_kmh_max"] != 20.0 || row["count"] != 2.0 ||
		row["key"].(map[string]any)["zone"] != "zone-01" || row["final"] != true {
		t.Errorf("row %v", row)
	}

	code, body = get(t, base+"/v1/pipelines/city/results?format=csv&output=zone_1m")
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if code != 200 || len(lines) != 4 || !strings.HasPrefix(lines[0], "output,zone,window_start,window_end,count,speed_kmh_count,speed_kmh_avg") {
		t.Errorf("csv: %d\n%s", code, body)
	}

	for _, bad := range []struct {
		query string
		code  int
		says  string
	}{
		{"/v1/pipelines/nope/results", 404, "unknown pipeline"},
		{"/v1/pipelines/city/results?output=hourly", 400, "no output"},
		{"/v1/pipelines/city/results?from=yesterday", 400, "RFC 3339"},
		{"/v1/pipelines/city/results?format=xml", 400, "json or csv"},
		{"/v1/pipelines/city/results?limit=-1", 400, "positive"},
		{"/v1/pipelines/city/results?after=xyz", 400, "not a cursor"},
		{"/v1/pipelines/city/results?output=zone_1m&key=a&key=b", 400, "zone_1m: key=<zone>"},
		{"/v1/pipelines/city/live", 400, "output is required"},
	} {
		code, body := get(t, base+bad.query)
		if code != bad.code || !strings.Contains(body, bad.says) {
			t.Errorf("%s: %d %s, want %d saying %q", bad.query, code, body, bad.code, bad.says)
		}
	}

	code, body = get(t, base+"/v1/pipelines")
	if code != 200 || !strings.Contains(body, `"name":"sensor_1m"`) || !strings.Contains(body, `"name":"zone_1m"`) {
		t.Errorf("pipelines: %d %s", code, body)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, base+path); code != 200 {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics: %d", code)
	}
}

func TestLiveSSE(t *testing.T) {
	base, _, board := startAPI(t)
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	live := zoneResult(t, "zone-07", t0, 55)
	live.Final = false
	board.Set("city", "zone_1m", 0, stream.Live{Watermark: t0.UnixMilli(), Results: []stream.Result{live}})
	resp, err := http.Get(base + "/v1/pipelines/city/live?output=zone_1m")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	buf := make([]byte, 4096)
	n, _ := io.ReadAtLeast(resp.Body, buf, 100)
	s := string(buf[:n])
	if !strings.HasPrefix(s, "event: live\ndata: {") || !strings.Contains(s, `"zone":"zone-07"`) || !strings.Contains(s, `"final":false`) {
		t.Errorf("first event: %q", s)
	}
}

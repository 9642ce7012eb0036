package serve_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/archive"
	"github.com/pulsehq/pulse/internal/health"
	"github.com/pulsehq/pulse/internal/serve"
	"github.com/pulsehq/pulse/internal/telemetry"
)

var h0 = time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC)

var citySrc = archive.Source{Stream: "city", Topic: "city", Schema: "city"}

// historyAPI serves an archive of n readings, one every 2 s from h0 on,
// sensor S-(i%5), in two partitions.
func historyAPI(t *testing.T, n int) string {
	t.Helper()
	st, err := archive.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]*kgo.Record, n)
	for i := range n {
		ts := h0.Add(time.Duration(i) * 2 * time.Second).UnixMilli()
		v := fmt.Sprintf(`{"sensor_id":"S-%d","zone":"zone-1","kind":"air","ts":%d,"pm25":%d.5}`, i%5, ts, i%100)
		recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "S-%d", i%5), Value: []byte(v), Partition: int32(i % 2), Offset: int64(i / 2)}
	}
	if err := archive.Import(context.Background(), st, citySrc, recs, 500, 100); err != nil {
		t.Fatal(err)
	}
	srv, err := serve.New(serve.Config{Addr: "127.0.0.1:0", Metrics: telemetry.New(), Health: &health.Registry{},
		History: &serve.History{Reader: archive.NewReader(st), Streams: map[string]archive.Source{"city": citySrc}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + srv.Addr()
}

type historyPage struct {
	Stream string           `json:"stream"`
	Events []map[string]any `json:"events"`
	Next   string           `json:"next"`
}

func TestHistoryJSONPages(t *testing.T) {
	base := historyAPI(t, 4000) // 2 h 13 min
	from, to := h0.Add(50*time.Minute), h0.Add(70*time.Minute)
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {fmt.Sprint(to.UnixMilli())}, "where": {"sensor_id=S-3"},
		"fields": {"event_time,sensor_id,pm25"}, "limit": {"40"}}
	var times []string
	for pages := 0; ; pages++ {
		code, body := get(t, base+"/v1/streams/city/history?"+q.Encode())
		if code != 200 || pages > 20 {
			t.Fatalf("page %d: %d %s", pages, code, body)
		}
		var p historyPage
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			if e["sensor_id"] != "S-3" || len(e) != 3 {
				t.Fatalf("event %v: want sensor S-3 and the three fields", e)
			}
			times = append(times, e["event_time"].(string))
		}
		if p.Next == "" {
			break
		}
		q.Set("after", p.Next)
	}
	var want []string
	for i := range 4000 {
		ts := h0.Add(time.Duration(i) * 2 * time.Second)
		if i%5 == 3 && !ts.Before(from) && ts.Before(to) {
			want = append(want, ts.Format("2006-01-02T15:04:05.000Z07:00"))
		}
	}
	slices.Sort(times)
	if !slices.Equal(times, want) {
		t.Fatalf("read %d events of S-3 in [50 min, 70 min), want %d", len(times), len(want))
	}
}

func TestHistoryCSV(t *testing.T) {
	base := historyAPI(t, 100)
	q := url.Values{"from": {h0.Format(time.RFC3339)}, "to": {h0.Add(10 * time.Second).Format(time.RFC3339)},
		"fields": {"sensor_id,event_time,pm25,speed_kmh"}, "format": {"csv"}, "limit": {"3"}}
	resp, err := http.Get(base + "/v1/streams/city/history?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	recs, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// Partition 0 holds the even readings: the first three of the page.
	want := [][]string{{"sensor_id", "event_time", "pm25", "speed_kmh"},
		{"S-0", "2026-11-30T22:00:00.000Z", "0.5", ""}, {"S-2", "2026-11-30T22:00:04.000Z", "2.5", ""}, {"S-4", "2026-11-30T22:00:08.000Z", "4.5", ""}}
	if !slices.EqualFunc(recs, want, slices.Equal) {
		t.Fatalf("csv %v, want %v", recs, want)
	}
	if resp.Trailer.Get("Pulse-Next") == "" {
		t.Fatal("a cut CSV answer has no Pulse-Next trailer")
	}
}

func TestHistoryBadRequests(t *testing.T) {
	base := historyAPI(t, 10)
	for _, c := range []struct {
		query string
		code  int
		says  string
	}{
		{"", 400, "from is required"},
		{"from=yesterday", 400, "RFC 3339"},
		{"from=1000&to=10", 400, "must be after from"},
		{"from=0&fields=nope", 400, "has no column"},
		{"from=0&where=zone", 400, "COLUMN=VALUE"},
		{"from=0&format=xml", 400, "use json or csv"},
		{"from=0&after=xyz", 400, "not a token"},
		{"from=0&limit=0", 400, "positive whole number"},
	} {
		code, body := get(t, base+"/v1/streams/city/history?"+c.query)
		if code != c.code || !strings.Contains(body, c.says) {
			t.Errorf("%q: %d %s, want %d saying %q", c.query, code, body, c.code, c.says)
		}
	}
	if code, body := get(t, base+"/v1/streams/nope/history?from=0"); code != 404 || !strings.Contains(body, "not archived") {
		t.Errorf("unknown stream: %d %s", code, body)
	}
}

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const clicksPipeline = `
name: clicks
description: Sessions and a sliding page-view count of a click stream.
source:
  topic: clicks
  key: user_id
  time: {field: at, format: epoch_ms}
event_time:
  max_out_of_orderness: 1s
where: 'page != "/health"'
derive:
  section: 'page.split("/")[1]'
outputs:
  - name: sessions
    group_by: [user_id]
    window: {session: {gap: 30m}}
    aggregates:
      views: count()
      first_page: first(page)
      last_page: last(page)
      pages: count_distinct(page)
  - name: sections_10m
    group_by: [section]
    window: {hopping: {size: 10m, slide: 5m}}
    aggregates:
      views: count()
`

// TestUserPipeline runs a pipeline file from --pipelines over events sent
// to its own stream: session windows per user and hopping windows per
// derived section, with a where filter.
func TestUserPipeline(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "clicks.yaml"), []byte(clicksPipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	in := newInstance(t, "--pipelines", dir)
	p := in.start(t)

	base := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	min := int64(time.Minute / time.Millisecond)
	click := func(user string, at int64, page string) string {
		return fmt.Sprintf(`{"user_id":%q,"at":%d,"page":%q}`, user, at, page)
	}
	events := []string{
		// u1: one session 10:00–10:20 (+30m gap), then a second at 11:30.
		click("u1", base, "/shop/a"),
		click("u1", base+10*min, "/shop/b"),
		click("u1", base+5*min, "/blog/x"), // out of order, inside the session
		click("u1", base+20*min, "/shop/a"),
		click("u1", base+12*min, "/health"), // filtered by where
		click("u1", base+90*min, "/blog/y"),
		// u2: one click.
		click("u2", base+7*min, "/blog/x"),
		// Moves the watermark past every window above.
		click("u3", base+200*min, "/shop/z"),
	}
	code, ir, raw := p.postTo("clicks", []byte(strings.Join(events, "\n")), "application/x-ndjson")
	if code != 200 || ir.Accepted != len(events) {
		t.Fatalf("ingest: %d %s", code, raw)
	}
	// A clicks event without the user key is rejected by the stream.
	if code, ir, _ := p.postTo("clicks", []byte(`{"at":1,"page":"/x"}`), "application/json"); code != 200 || ir.Rejected != 1 {
		t.Fatalf("event without key: %d %+v", code, ir)
	}

	get := func(query string, want int) []resultRow {
		rows := waitRows(t, p, "clicks", query, want)
		return rows
	}
	sessions := get("output=sessions&key=u1", 2)
	s1, s2 := sessions[0], sessions[1]
	if s1["window_start"] != "2026-06-01T10:00:00Z" || s1["window_end"] != "2026-06-01T10:50:00Z" ||
		s1["views"] != 4.0 || s1["first_page"] != "/shop/a" || s1["last_page"] != "/shop/a" || s1["pages"] != 3.0 {
		t.Errorf("u1 first session: %v", s1)
	}
	if s2["window_start"] != "2026-06-01T11:30:00Z" || s2["views"] != 1.0 || s2["first_page"] != "/blog/y" {
		t.Errorf("u1 second session: %v", s2)
	}
	// Hopping 10m windows every 5m: the shop section at 10:00, 10:10 and
	// 10:20 lands in [9:55,10:05) [10:00,10:10) [10:05,10:15) [10:10,10:20)
	// [10:15,10:25) [10:20,10:30).
	shop := get("output=sections_10m&key=shop&to=2026-06-01T11:00:00Z", 6)
	wantViews := map[string]float64{"09:55": 1, "10:00": 1, "10:05": 1, "10:10": 1, "10:15": 1, "10:20": 1}
	for _, r := range shop {
		start := strings.TrimSuffix(strings.TrimPrefix(r["window_start"].(string), "2026-06-01T"), ":00Z")
		if r["views"] != wantViews[start] {
			t.Errorf("shop window %s: %v views, want %v", start, r["views"], wantViews[start])
		}
	}
	blog := get("output=sections_10m&key=blog&to=2026-06-01T11:00:00Z", 2)
	// blog at 10:05 (u1) and 10:07 (u2): windows 10:00 and 10:05 hold both.
	if len(blog) != 2 {
		t.Errorf("blog windows: %v", blog)
	}
	for _, r := range blog {
		start := r["window_start"].(string)
		want := 2.0
		if start != "2026-06-01T10:00:00Z" && start != "2026-06-01T10:05:00Z" {
			t.Errorf("unexpected blog window %s", start)
		}
		if r["views"] != want {
			t.Errorf("blog window %s: %v views, want %v", start, r["views"], want)
		}
	}
	p.stop()
}

func waitRows(t *testing.T, p *proc, pipeline, query string, want int) []resultRow {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var rows []resultRow
	for time.Now().Before(deadline) {
		rows = p.pipelineResults(pipeline, query)
		if len(rows) >= want {
			return rows
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s results %q: %d rows, want %d: %v", pipeline, query, len(rows), want, rows)
	return nil
}

// TestChangedAggregatesStop changes an output's aggregates between two
// runs over the same data: the window state in the changelog no longer
// fits the pipeline file, and Pulse stops with a message that says what to
// do instead of retrying forever or mixing states.
func TestChangedAggregatesStop(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "clicks.yaml")
	if err := os.WriteFile(file, []byte(clicksPipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	in := newInstance(t, "--pipelines", dir)
	p := in.start(t)
	base := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	send := func(p *proc, at int64) {
		body := fmt.Sprintf(`{"user_id":"u1","at":%d,"page":"/shop/a"}`, at)
		if code, _, raw := p.postTo("clicks", []byte(body), "application/x-ndjson"); code != 200 {
			t.Fatalf("ingest: %d %s", code, raw)
		}
	}
	send(p, base)
	waitMetric(t, p, `pulse_window_events_total{output="sessions",pipeline="clicks"}`, 1)
	waitMetric(t, p, `pulse_checkpoint_duration_seconds_count{pipeline="clicks"}`, 1)
	p.stop()

	changed := strings.Replace(clicksPipeline, "      pages: count_distinct(page)\n", "", 1)
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	// Restoring the changed output may fail before or after Pulse reports
	// ready: send one more event only if it is still up to take it.
	p = in.launch(t)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if len(p.done) > 0 {
			break
		}
		if resp, err := http.Get(p.url("/readyz")); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				body := fmt.Sprintf(`{"user_id":"u1","at":%d,"page":"/shop/a"}`, base+time.Minute.Milliseconds())
				// Pulse may be stopping already: a failed post is fine.
				if resp, err := http.Post(p.url("/v1/streams/clicks/events"), "application/x-ndjson", strings.NewReader(body)); err == nil {
					resp.Body.Close()
				}
				break
			}
		}
	}
	select {
	case err := <-p.done:
		if err == nil {
			t.Fatal("pulse exited without an error")
		}
		if log := p.log.String(); !strings.Contains(log, "changing an output's aggregates needs a new output name") {
			t.Fatalf("pulse exited (%v) without saying why:\n%s", err, log)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("pulse kept running with a changelog that does not fit its pipeline file:\n%s", p.log.String())
	}
}

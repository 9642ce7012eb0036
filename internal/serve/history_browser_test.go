package serve_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/archive"
	"github.com/pulsehq/pulse/internal/browsertest"
	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/serve"
	"github.com/pulsehq/pulse/internal/sink"
	"github.com/pulsehq/pulse/internal/stream"
)

// eventsInfo is what the raw events panel shows, read in one evaluation.
type eventsInfo struct {
	Search           string            `json:"search"`
	Shown            bool              `json:"shown"`
	State            string            `json:"state"`
	Total            int               `json:"total"`
	More             string            `json:"more"`
	Sub              string            `json:"sub"`
	Count            string            `json:"count"`
	MoreShown        bool              `json:"moreShown"`
	ErrorShown       bool              `json:"errorShown"`
	ErrorText        string            `json:"errorText"`
	EmptyShown       bool              `json:"emptyShown"`
	EmptyText        string            `json:"emptyText"`
	NoteShown        bool              `json:"noteShown"`
	NoteText         string            `json:"noteText"`
	UnavailableShown bool              `json:"unavailableShown"`
	UnavailableText  string            `json:"unavailableText"`
	BodyShown        bool              `json:"bodyShown"`
	WholeShown       bool              `json:"wholeShown"`
	Columns          []string          `json:"columns"`
	Rows             [][]string        `json:"rows"`
	Times            []string          `json:"times"`
	Filters          map[string]string `json:"filters"`
	CSV              string            `json:"csv"`
	Parquet          string            `json:"parquet"`
	ChartRows        int               `json:"chartRows"`
}

const readEvents = `(() => {
  const root = document.getElementById('events');
  const q = (sel) => root.querySelector(sel);
  const text = (sel) => (q(sel) ? q(sel).textContent.trim() : '');
  const shown = (sel) => !!q(sel) && !q(sel).hidden && q(sel).offsetParent !== null;
  const filters = {};
  for (const i of root.querySelectorAll('.events-fields input')) filters[i.name] = i.value;
  const trs = Array.from(root.querySelectorAll('.events-table tbody tr'));
  return {
    search: location.search, shown: !root.hidden && root.offsetParent !== null,
    state: root.dataset.state || '', total: +(root.dataset.total || 0), more: root.dataset.more || '',
    sub: text('.events-sub'), count: text('.events-count'), moreShown: shown('.events-more'),
    errorShown: shown('.events-error'), errorText: text('.events-error'),
    emptyShown: shown('.events-empty'), emptyText: text('.events-empty'),
    noteShown: shown('.events-note'), noteText: text('.events-note'),
    unavailableShown: shown('.events-unavailable'), unavailableText: text('.events-unavailable'),
    bodyShown: shown('.events-body'), wholeShown: shown('.events-whole'),
    columns: Array.from(root.querySelectorAll('.events-table thead th')).map((th) => th.textContent),
    rows: trs.map((tr) => Array.from(tr.cells).map((td) => td.textContent)),
    times: trs.map((tr) => tr.dataset.time),
    filters, csv: q('.events-csv').getAttribute('href') || '', parquet: q('.events-parquet').getAttribute('href') || '',
    chartRows: +(document.getElementById('rows').dataset.total || 0),
  };
})()`

// reading is one city reading of the test archive.
type reading struct {
	ts                 time.Time
	sensor, zone, kind string
	metric             string
	value              float64
}

var kinds = []struct{ kind, metric string }{{"traffic", "speed_kmh"}, {"air", "pm25"}, {"weather", "temp_c"}}

// testReadings are the archive of TestHistoryBrowser: 300 readings one
// every 2 s from h0 (sensor S-(i%6): S-0 to S-2 in zone-01, S-3 to S-5
// in zone-02; kind by sensor), in partitions 0 and 1, and 20 readings of
// S-9 in the ten minutes before now, in partition 2.
func testReadings(now time.Time) (old, recent []reading) {
	for i := range 300 {
		s := i % 6
		k := kinds[s%3]
		zone := "zone-01"
		if s >= 3 {
			zone = "zone-02"
		}
		v := float64(i%40) + 0.5
		if k.metric == "speed_kmh" {
			v = 20 + float64(i%60) + 0.25
		}
		old = append(old, reading{h0.Add(time.Duration(i) * 2 * time.Second), fmt.Sprintf("S-%d", s), zone, k.kind, k.metric, v})
	}
	start := now.Add(-10 * time.Minute).Truncate(time.Second)
	for j := range 20 {
		recent = append(recent, reading{start.Add(time.Duration(j) * 30 * time.Second), "S-9", "zone-01", "air", "pm25", 50 + float64(j)})
	}
	return old, recent
}

func (r reading) record(partition int32, offset int64) *kgo.Record {
	v := fmt.Sprintf(`{"sensor_id":%q,"zone":%q,"kind":%q,"ts":%d,%q:%s}`, r.sensor, r.zone, r.kind, r.ts.UnixMilli(), r.metric,
		strconv.FormatFloat(r.value, 'g', -1, 64))
	return &kgo.Record{Key: []byte(r.sensor), Value: []byte(v), Partition: partition, Offset: offset}
}

// TestHistoryBrowser loads the dashboard in headless Chromium against a
// server with a real Parquet archive of the city stream, and checks the
// raw events panel: exactly the archived events of a custom range, page
// after page with Load more, the sensor and kind filters, the state in
// the URL across a reload, a drill-down from a result window (a table
// row and a chart point), the download links, the trailing live range,
// the API's error shown, and a server without an archive.
func TestHistoryBrowser(t *testing.T) {
	browsertest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	now := time.Now()
	old, recent := testReadings(now)
	archiveDir := t.TempDir()
	st, err := archive.NewLocal(archiveDir)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i, r := range old {
		recs = append(recs, r.record(int32(i%2), int64(i/2)))
	}
	for j, r := range recent {
		recs = append(recs, r.record(2, int64(j)))
	}
	if err := archive.Import(ctx, st, citySrc, recs, 500, 100); err != nil {
		t.Fatal(err)
	}

	// Stored finals of both zones for the minutes of the archive, and the
	// current minute open on the live board.
	plan := cityPlan(t)
	sq, err := sink.OpenSQLite(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	var finals []stream.Result
	for m := range 10 {
		finals = append(finals, final(t, "zone-01", h0.Add(time.Duration(m)*time.Minute), zoneValues{40 + float64(m), 10, 20}),
			final(t, "zone-02", h0.Add(time.Duration(m)*time.Minute), zoneValues{30, 12, 18}))
	}
	commitResults(t, sq, plan, finals...)
	cur := now.Truncate(time.Minute)
	board := &stream.Board{}
	board.Set("city", "zone_1m", 0, stream.Live{Watermark: now.Add(-5 * time.Second).UnixMilli(), Results: []stream.Result{
		result(t, "zone-01", cur.UnixMilli(), zoneValues{44, 12, 21}),
		result(t, "zone-02", cur.UnixMilli(), zoneValues{31, 11, 16}),
	}})
	start := func(hist *serve.History) string {
		srv, err := serve.New(serve.Config{Addr: "127.0.0.1:0", Pipelines: []*pipeline.Plan{plan}, Store: sq, Board: board,
			History: hist, LiveEvery: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		srvCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- srv.Run(srvCtx) }()
		t.Cleanup(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("server: %v", err)
			}
		})
		return "http://" + srv.Addr()
	}
	base := start(&serve.History{Reader: archive.NewReader(st), Streams: map[string]archive.Source{"city": citySrc}})

	bctx := browsertest.Start(t, ctx)
	ist := time.FixedZone("IST", 5*3600+1800)
	if _, err := chromedp.Call(bctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Kolkata"}); err != nil {
		t.Fatalf("set the browser's time zone: %v", err)
	}
	problems := watchPage(t, bctx, base, nil)
	defer problems()

	wait := func(what string, ok func(eventsInfo) error) eventsInfo {
		t.Helper()
		var r eventsInfo
		checkfor.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
			var err error
			if r, err = chromedp.Run(bctx, chromedp.Evaluate[eventsInfo](readEvents)); err != nil {
				return err
			}
			if err := ok(r); err != nil {
				return fmt.Errorf("%s: %v; panel: %+v", what, err, r)
			}
			return nil
		})
		return r
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// setFilter types value into the raw events filter of column.
	setFilter := func(column, value string) chromedp.Action[chromedp.Void] {
		js := fmt.Sprintf(`(() => { const i = document.querySelector('#events input[name=%q]'); if (!i) return false; i.value = %q; return true; })()`, column, value)
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
			if err == nil && !ok {
				err = fmt.Errorf("no filter input for %s", column)
			}
			return err
		})
	}
	const isoMs = "2006-01-02T15:04:05.000Z07:00"
	// in returns the readings of rs in [from, to) that keep accepts.
	in := func(rs []reading, from, to time.Time, keep func(reading) bool) []reading {
		var out []reading
		for _, r := range rs {
			if !r.ts.Before(from) && r.ts.Before(to) && keep(r) {
				out = append(out, r)
			}
		}
		return out
	}
	all := func(reading) bool { return true }
	// exactly checks that the panel's rows are want, in any order, each
	// row's cells what the reading holds, event_time in local time.
	exactly := func(want []reading) func(eventsInfo) error {
		return func(p eventsInfo) error {
			if p.State != "ready" || p.Total != len(want) || len(p.Rows) != len(want) {
				return fmt.Errorf("state %q with %d events (%d rows), want ready with %d", p.State, p.Total, len(p.Rows), len(want))
			}
			col := map[string]int{}
			for i, c := range p.Columns {
				col[c] = i
			}
			for _, c := range []string{"event_time", "sensor_id", "zone", "kind"} {
				if _, ok := col[c]; !ok {
					return fmt.Errorf("columns %v lack %s", p.Columns, c)
				}
			}
			if p.Columns[0] != "event_time" {
				return fmt.Errorf("columns %v: want event_time first", p.Columns)
			}
			byTime := map[string]reading{}
			for _, r := range want {
				byTime[r.ts.UTC().Format(isoMs)] = r
			}
			seen := map[string]bool{}
			for i, row := range p.Rows {
				r, ok := byTime[p.Times[i]]
				if !ok || seen[p.Times[i]] {
					return fmt.Errorf("row %d (%s, %v) is not one of the range's events, or shown twice", i, p.Times[i], row)
				}
				seen[p.Times[i]] = true
				cell := func(c string) string {
					if j, ok := col[c]; ok && j < len(row) {
						return row[j]
					}
					return "(no column " + c + ")"
				}
				wantCells := map[string]string{"event_time": r.ts.In(ist).Format("2006-01-02 15:04:05"), "sensor_id": r.sensor,
					"zone": r.zone, "kind": r.kind, r.metric: strconv.FormatFloat(r.value, 'g', -1, 64)}
				for c, v := range wantCells {
					if cell(c) != v {
						return fmt.Errorf("row %d (%s): %s is %q, want %q", i, p.Times[i], c, cell(c), v)
					}
				}
				for _, k := range kinds {
					if k.metric != r.metric && cell(k.metric) != "–" && !strings.HasPrefix(cell(k.metric), "(no column") {
						return fmt.Errorf("row %d (%s, %s): %s is %q, want –", i, p.Times[i], r.kind, k.metric, cell(k.metric))
					}
				}
			}
			return nil
		}
	}
	counted := func(n int, more bool) func(eventsInfo) error {
		return func(p eventsInfo) error {
			want := fmt.Sprintf("%d events · the whole range", n)
			if more {
				want = fmt.Sprintf("%d events · more in this range", n)
			}
			if p.Count != want || p.More != strconv.FormatBool(more) || p.MoreShown != more || p.ErrorShown || p.EmptyShown || p.Total != n {
				return fmt.Errorf("count %q (more %s, Load more shown %v, error %v, empty %v), want %q", p.Count, p.More, p.MoreShown, p.ErrorShown, p.EmptyShown, want)
			}
			return nil
		}
	}
	both := func(fs ...func(eventsInfo) error) func(eventsInfo) error {
		return func(p eventsInfo) error {
			for _, f := range fs {
				if err := f(p); err != nil {
					return err
				}
			}
			return nil
		}
	}
	// apiError asks the history API of srv what the panel asked, and
	// returns its status and error message.
	apiError := func(srv string, q url.Values) (int, string) {
		t.Helper()
		code, body := get(t, srv+"/v1/streams/city/history?"+q.Encode())
		var e struct{ Error string }
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
			t.Fatalf("history API answered %d %q: want a JSON error", code, body)
		}
		return code, e.Error
	}
	query := func(p eventsInfo) url.Values {
		q, _ := url.ParseQuery(strings.TrimPrefix(p.Search, "?"))
		return q
	}

	// A custom range of two minutes, 60 readings, 25 a page: the first
	// page, then Load more twice.
	from, to := h0.Add(time.Minute), h0.Add(3*time.Minute)
	rangeURL := base + "/?zone=zone-01&from=" + from.Format(time.RFC3339) + "&to=" + to.Format(time.RFC3339)
	do("open a custom range", chromedp.Navigate(rangeURL+"&events_limit=25"))
	want := in(old, from, to, all)
	if len(want) != 60 {
		t.Fatalf("the test range has %d readings, want 60", len(want))
	}
	first := wait("the first page", func(p eventsInfo) error {
		if p.State != "ready" || len(p.Rows) != 25 {
			return fmt.Errorf("state %q, %d rows: want the first 25", p.State, len(p.Rows))
		}
		if err := counted(25, true)(p); err != nil {
			return err
		}
		wantSub := from.In(ist).Format("2006-01-02 15:04") + " – " + to.In(ist).Format("2006-01-02 15:04") + " · city · archive order"
		if p.Sub != wantSub {
			return fmt.Errorf("subtitle %q, want %q", p.Sub, wantSub)
		}
		if _, ok := p.Filters["kind"]; !ok {
			return fmt.Errorf("filters %v: the stream has a kind column, want a kind filter", p.Filters)
		}
		if _, ok := p.Filters["sensor_id"]; !ok {
			return fmt.Errorf("filters %v: want a sensor filter", p.Filters)
		}
		return nil
	})
	do("load more", chromedp.Click(chromedp.CSS("#events .events-more")))
	second := wait("two pages", counted(50, true))
	if !slices.Equal(second.Times[:25], first.Times) {
		t.Errorf("Load more changed the first page: %v, then %v", first.Times, second.Times[:25])
	}
	do("load more", chromedp.Click(chromedp.CSS("#events .events-more")))
	p := wait("every event of the range", both(counted(60, false), exactly(want)))
	if !slices.Equal(p.Times[:50], second.Times) {
		t.Errorf("the third page did not append to the first two")
	}
	q := query(p)
	if q.Get("events_limit") != "25" || q.Get("from") != from.Format(time.RFC3339) || q.Has("where") {
		t.Errorf("URL %q: want the range and events_limit=25, no filter", p.Search)
	}
	screenshot(t, bctx, "dashboard-raw-events.png")

	// The sensor filter narrows the rows; it goes into the URL and a
	// reload keeps it.
	do("filter by sensor", setFilter("sensor_id", "S-3"),
		chromedp.Click(chromedp.CSS("#events .events-apply")))
	s3 := in(old, from, to, func(r reading) bool { return r.sensor == "S-3" })
	filtered := both(counted(len(s3), false), exactly(s3), func(p eventsInfo) error {
		if w := query(p)["where"]; !slices.Equal(w, []string{"sensor_id=S-3"}) || p.Filters["sensor_id"] != "S-3" {
			return fmt.Errorf("where in the URL %v, sensor filter %q: want sensor_id=S-3", w, p.Filters["sensor_id"])
		}
		return nil
	})
	p = wait("the events of S-3", filtered)

	// The download links ask for the same query: the CSV has the same
	// events.
	csvURL, err := url.Parse(base + p.CSV)
	if err != nil {
		t.Fatal(err)
	}
	cq := csvURL.Query()
	if csvURL.Path != "/v1/streams/city/history" || cq.Get("format") != "csv" || cq.Get("from") != from.Format(time.RFC3339) ||
		cq.Get("to") != to.Format(time.RFC3339) || !slices.Equal(cq["where"], []string{"sensor_id=S-3"}) {
		t.Errorf("CSV link %s: want the panel's query as CSV", p.CSV)
	}
	pq, err := url.Parse(base + p.Parquet)
	if err != nil {
		t.Fatal(err)
	}
	cq.Set("format", "parquet")
	if pq.Path != csvURL.Path || pq.Query().Encode() != cq.Encode() {
		t.Errorf("Parquet link %s: want the CSV link's query with format=parquet", p.Parquet)
	}
	resp, err := http.Get(csvURL.String())
	if err != nil {
		t.Fatal(err)
	}
	csvRows, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(csvRows) != len(s3)+1 {
		t.Fatalf("CSV download: %d, %d lines, %v: want a header and %d events", resp.StatusCode, len(csvRows), err, len(s3))
	}
	ti := slices.Index(csvRows[0], "event_time")
	var csvTimes []string
	for _, r := range csvRows[1:] {
		csvTimes = append(csvTimes, r[ti])
	}
	if !slices.Equal(csvTimes, p.Times) {
		t.Errorf("CSV download has events %v, the panel %v", csvTimes, p.Times)
	}

	do("reload", chromedp.Reload())
	wait("the events of S-3 after a reload", filtered)

	// The kind filter, the sensor one cleared.
	do("filter by kind", setFilter("sensor_id", ""),
		setFilter("kind", "air"),
		chromedp.Click(chromedp.CSS("#events .events-apply")))
	air := in(old, from, to, func(r reading) bool { return r.kind == "air" })
	wait("the air readings", both(counted(len(air), false), exactly(air), func(p eventsInfo) error {
		if w := query(p)["where"]; !slices.Equal(w, []string{"kind=air"}) {
			return fmt.Errorf("where in the URL %v, want kind=air", w)
		}
		return nil
	}))
	do("clear the filter", setFilter("kind", ""),
		chromedp.Click(chromedp.CSS("#events .events-apply")))
	wait("the whole range again", both(counted(25, true), func(p eventsInfo) error {
		if query(p).Has("where") {
			return fmt.Errorf("URL %q still has a filter", p.Search)
		}
		return nil
	}))

	// A click on a row of the results table shows the raw events of that
	// window of zone-01.
	w0 := h0.Add(2 * time.Minute)
	do("click a window", chromedp.Click(chromedp.CSS(`#rows tbody tr[data-start="`+w0.Format(time.RFC3339)+`"]`)))
	win := in(old, w0, w0.Add(time.Minute), func(r reading) bool { return r.zone == "zone-01" })
	drilled := func(w time.Time, rs []reading) func(eventsInfo) error {
		return both(counted(len(rs), false), exactly(rs), func(p eventsInfo) error {
			q := query(p)
			if !slices.Equal(q["where"], []string{"zone=zone-01"}) || q.Get("events_from") != w.Format(time.RFC3339) ||
				q.Get("events_to") != w.Add(time.Minute).Format(time.RFC3339) || p.Filters["zone"] != "zone-01" {
				return fmt.Errorf("URL %q, zone filter %q: want the window and zone=zone-01", p.Search, p.Filters["zone"])
			}
			wantSub := "window " + w.In(ist).Format("2006-01-02 15:04:05") + " – " + w.Add(time.Minute).In(ist).Format("2006-01-02 15:04:05")
			if !strings.HasPrefix(p.Sub, wantSub) || !p.WholeShown {
				return fmt.Errorf("subtitle %q (whole range button %v), want it to start %q", p.Sub, p.WholeShown, wantSub)
			}
			return nil
		})
	}
	wait("the events of one window of zone-01", drilled(w0, win))
	do("reload", chromedp.Reload())
	wait("the window after a reload", drilled(w0, win))
	do("back to the whole range", chromedp.Click(chromedp.CSS("#events .events-whole")))
	zone1 := in(old, from, to, func(r reading) bool { return r.zone == "zone-01" })
	wait("zone-01 over the whole range", both(counted(25, true), func(p eventsInfo) error {
		if q := query(p); q.Has("events_from") || q.Has("events_to") || !slices.Equal(q["where"], []string{"zone=zone-01"}) || p.WholeShown {
			return fmt.Errorf("URL %q (whole range button %v): want the zone filter, no window", p.Search, p.WholeShown)
		}
		return nil
	}))
	do("load more", chromedp.Click(chromedp.CSS("#events .events-more")))
	wait("every event of zone-01", both(counted(len(zone1), false), exactly(zone1)))

	// A click on a chart point: the middle of the first chart is the
	// second of the range's two windows.
	do("scroll to the chart", chromedp.ScrollIntoView(chromedp.CSS("#chart .u-over")))
	box, err := chromedp.Run(bctx, chromedp.Evaluate[[]float64](`(() => { const r = document.querySelector('#chart .u-over').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`))
	if err != nil || len(box) != 4 {
		t.Fatalf("find the chart: %v %v", box, err)
	}
	x, y := box[0]+box[2]/2, box[1]+box[3]/2
	do("click a chart point", chromedp.MouseEvent(chromedp.MouseMoved, x, y), chromedp.MouseClickXY(x, y))
	w1 := h0.Add(2 * time.Minute)
	wait("the window of the point", drilled(w1, in(old, w1, w1.Add(time.Minute), func(r reading) bool { return r.zone == "zone-01" })))

	// A pick of another range drops the window; the trailing range reads
	// the events of the last 15 minutes.
	do("the last 15 minutes", chromedp.Click(chromedp.CSS(`#range-presets button[data-range="15m"]`)))
	recent1 := in(recent, now.Add(-15*time.Minute), now.Add(time.Hour), func(r reading) bool { return r.zone == "zone-01" })
	wait("the recent events", both(counted(20, false), exactly(recent1), func(p eventsInfo) error {
		if q := query(p); q.Has("events_from") || q.Get("range") != "15m" || !strings.HasPrefix(p.Sub, "the range up to ") {
			return fmt.Errorf("URL %q, subtitle %q: want the last 15 minutes, no window", p.Search, p.Sub)
		}
		return nil
	}))

	// A range without events, a bad answer and a bad link.
	do("an empty range", chromedp.Navigate(base+"/?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z"))
	wait("the empty state", func(p eventsInfo) error {
		if p.State != "empty" || !p.EmptyShown || p.EmptyText != "No raw events in this range." || p.ErrorShown || p.Count != "" {
			return errors.New("want the empty state alone")
		}
		return nil
	})
	rangeQuery := func(extra ...string) url.Values {
		q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "limit": {"100"}}
		for i := 0; i+1 < len(extra); i += 2 {
			q.Add(extra[i], extra[i+1])
		}
		return q
	}
	code, msg := apiError(base, rangeQuery("where", "nope=1"))
	if code != 400 || !strings.Contains(msg, "nope") {
		t.Fatalf("where=nope=1: %d %q, want a 400 naming the column", code, msg)
	}
	do("a filter on a column the stream lacks", chromedp.Navigate(rangeURL+"&where=nope=1"))
	wait("the API's error", func(p eventsInfo) error {
		if p.State != "error" || !p.ErrorShown || p.EmptyShown || len(p.Rows) != 0 ||
			p.ErrorText != "could not load the raw events of city: HTTP 400: "+msg {
			return fmt.Errorf("want the server's error alone: %s", msg)
		}
		if _, ok := p.Filters["nope"]; !ok {
			return fmt.Errorf("filters %v: want the link's filter shown to fix", p.Filters)
		}
		return nil
	})
	do("a link with a bad page size", chromedp.Navigate(rangeURL+"&events_limit=abc"))
	wait("the note on the page size", both(counted(60, false), func(p eventsInfo) error {
		if !p.NoteShown || p.NoteText != "events_limit=abc is not a whole number from 1 to 100000: ignored" {
			return errors.New("want a note on events_limit")
		}
		return nil
	}))

	// An archive that cannot be read: the server's 500 and its message.
	corrupted := 0
	if err := filepath.WalkDir(archiveDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".parquet") {
			return err
		}
		corrupted++
		return os.WriteFile(path, []byte("not a Parquet file"), 0o644)
	}); err != nil || corrupted == 0 {
		t.Fatalf("corrupt the archive: %d files, %v", corrupted, err)
	}
	code, msg = apiError(base, rangeQuery())
	if code < 500 {
		t.Fatalf("a broken archive: %d %q, want a server error", code, msg)
	}
	do("read a broken archive", chromedp.Navigate(rangeURL))
	wait("the server's error", func(p eventsInfo) error {
		if p.State != "error" || !p.ErrorShown || p.EmptyShown || len(p.Rows) != 0 ||
			p.ErrorText != fmt.Sprintf("could not load the raw events of city: HTTP %d: %s", code, msg) {
			return fmt.Errorf("want the server's error alone: %d %s", code, msg)
		}
		return nil
	})

	// A server without an archive, in a tab of its own: the panel says
	// so and shows nothing else; the charts are there.
	noArchive := start(nil)
	code, msg = apiError(noArchive, rangeQuery())
	if code != 404 {
		t.Fatalf("a server without an archive: %d %q, want a 404", code, msg)
	}
	bctx, closeTab := chromedp.NewContext(bctx)
	defer closeTab()
	defer watchPage(t, bctx, noArchive, nil)()
	do("a server without an archive", chromedp.Navigate(noArchive+"/?zone=zone-01&from="+from.Format(time.RFC3339)+"&to="+to.Format(time.RFC3339)))
	wait("the note that there is no archive", func(p eventsInfo) error {
		if p.State != "unavailable" || !p.UnavailableShown || p.BodyShown || p.ChartRows != 2 ||
			p.UnavailableText != "Raw events are not available: "+msg {
			return fmt.Errorf("want the note alone with %q, and the two stored windows charted", msg)
		}
		return nil
	})
}

// eventsModuleCases runs the raw events panel's pure functions
// (events.js) in the page on known inputs.
const eventsModuleCases = `(async () => {
  const e = await import('/events.js');
  const parse = (q) => { const p = e.parse(q); return { where: p.where, window: p.window, limit: p.limit, note: p.note }; };
  return JSON.stringify({
    parsed: parse('?range=1h&where=sensor_id=S-1&where=zone=a=b&where=bad&where=kind=air&where=kind=traffic' +
      '&events_from=2026-12-01T10:00:00Z&events_to=2026-12-01T10:01:00Z&events_limit=5'),
    badWindow: parse('?events_from=2026-12-01T10:01:00Z&events_to=2026-12-01T10:00:00Z&events_limit=0'),
    plain: parse('?zone=zone-01'),
    written: e.write('?range=1h&zone=z&events_limit=9&where=kind=air',
      { where: [['sensor_id', 'S 1'], ['zone', 'a=b']], window: [Date.parse('2026-12-01T10:00:00Z'), Date.parse('2026-12-01T10:01:00.5Z')], limit: 100 }),
    writtenLimit: e.write('', { where: [], window: null, limit: 7 }),
    query: e.query(Date.parse('2026-12-01T10:00:00Z'), Date.parse('2026-12-01T11:00:00Z'), [['sensor_id', 'S-1'], ['kind', 'air']]).toString(),
    columns: e.columnsOf([], [{ kafka_offset: 1, sensor_id: 'a', event_time: 'x' }, { pm25: 1, key: 'k', sensor_id: 'b' }]),
    columnsMore: e.columnsOf(['event_time', 'sensor_id', 'kafka_offset'], [{ temp_c: 1, kafka_partition: 0 }]),
    cells: [e.cellText('event_time', '2026-12-01T10:00:00.250Z'), e.cellText('event_time', '2026-12-01T10:00:07Z'),
      e.cellText('pm25', null), e.cellText('pm25', undefined), e.cellText('occupancy', 0), e.cellText('ok', true), e.cellText('event_time', 'soon')],
  });
})()`

// TestHistoryModulesBrowser checks the raw events panel's URL state, its
// API query, its columns and its cells on known inputs, run by Chromium
// (in the Asia/Kolkata time zone) as the page runs them.
func TestHistoryModulesBrowser(t *testing.T) {
	browsertest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base, _, _ := startAPI(t)
	bctx := browsertest.Start(t, ctx)
	if _, err := chromedp.Call(bctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Kolkata"}); err != nil {
		t.Fatalf("set the browser's time zone: %v", err)
	}
	defer watchPage(t, bctx, base, nil)()
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("load the dashboard: %v", err)
	}
	got, err := chromedp.Run(bctx, chromedp.Evaluate[string](eventsModuleCases, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("run the cases: %v", err)
	}
	const want = `{
	  "parsed": {"where": [["sensor_id", "S-1"], ["zone", "a=b"], ["kind", "traffic"]],
	    "window": [1796119200000, 1796119260000], "limit": 5, "note": "where=bad is not COLUMN=VALUE: ignored"},
	  "badWindow": {"where": [], "window": null, "limit": 100,
	    "note": "events_from=2026-12-01T10:01:00Z&events_to=2026-12-01T10:00:00Z is not a from–to range of two RFC 3339 times; events_limit=0 is not a whole number from 1 to 100000: ignored"},
	  "plain": {"where": [], "window": null, "limit": 100, "note": null},
	  "written": "?range=1h&zone=z&where=sensor_id%3DS+1&where=zone%3Da%3Db&events_from=2026-12-01T10%3A00%3A00Z&events_to=2026-12-01T10%3A01%3A00.500Z",
	  "writtenLimit": "?events_limit=7",
	  "query": "from=2026-12-01T10%3A00%3A00Z&to=2026-12-01T11%3A00%3A00Z&where=sensor_id%3DS-1&where=kind%3Dair",
	  "columns": ["event_time", "sensor_id", "pm25", "kafka_offset", "key"],
	  "columnsMore": ["event_time", "sensor_id", "temp_c", "kafka_offset", "kafka_partition"],
	  "cells": ["2026-12-01 15:30:00.250", "2026-12-01 15:30:07", "–", "–", "0", "true", "soon"]
	}`
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("results %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		gj, _ := json.MarshalIndent(g, "", "  ")
		wj, _ := json.MarshalIndent(w, "", "  ")
		t.Errorf("events.js gave\n%s\nwant\n%s", gj, wj)
	}
}

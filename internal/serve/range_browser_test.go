package serve_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/pulsehq/pulse/internal/browsertest"
	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/serve"
	"github.com/pulsehq/pulse/internal/sink"
	"github.com/pulsehq/pulse/internal/stream"
)

// failingStore answers queries from its store, or fails them while fail
// is set.
type failingStore struct {
	sink.Querier
	fail atomic.Bool
}

var errInjected = errors.New("disk I/O error (injected by the test)")

func (f *failingStore) Query(ctx context.Context, q sink.Query) ([]sink.Row, error) {
	if f.fail.Load() {
		return nil, errInjected
	}
	return f.Querier.Query(ctx, q)
}

// final is a final window of zone like result's, made from one template
// so that 10,000 of them do not parse the pipeline file 10,000 times.
func final(t *testing.T, zone string, start time.Time, v zoneValues) stream.Result {
	templateOnce.Do(func() { template = result(t, "", 0, zoneValues{}) })
	r := template
	r.Key = []string{zone}
	r.Start, r.End, r.Final = start.UnixMilli(), start.Add(time.Minute).UnixMilli(), true
	r.Values = slices.Clone(template.Values)
	for i, name := range r.Names {
		switch name {
		case "speed_kmh_avg":
			r.Values[i] = event.NumberValue(v.speed)
		case "pm25_avg":
			r.Values[i] = event.NumberValue(v.pm25)
		case "temp_c_avg":
			r.Values[i] = event.NumberValue(v.temp)
		}
	}
	return r
}

var (
	templateOnce sync.Once
	template     stream.Result
)

// screenshot saves the page as the test artifact name.
func screenshot(t *testing.T, bctx context.Context, name string) {
	t.Helper()
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := artifactPath(t, name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// rangeInfo is what the chart panel shows, read in one evaluation.
type rangeInfo struct {
	Search      string   `json:"search"`
	Title       string   `json:"title"`
	Active      string   `json:"active"`
	Pressed     []string `json:"pressed"`
	Sub         string   `json:"sub"`
	State       string   `json:"state"`
	Points      int      `json:"points"`
	Drawn       int      `json:"drawn"`
	Width       int      `json:"width"`
	First       string   `json:"first"`
	Last        string   `json:"last"`
	Pages       int      `json:"pages"`
	ChartShown  bool     `json:"chartShown"`
	EmptyShown  bool     `json:"emptyShown"`
	EmptyText   string   `json:"emptyText"`
	ErrorShown  bool     `json:"errorShown"`
	ErrorText   string   `json:"errorText"`
	StatusShown bool     `json:"statusShown"`
	StatusText  string   `json:"statusText"`
	NoteShown   bool     `json:"noteShown"`
	NoteText    string   `json:"noteText"`
	CustomShown bool     `json:"customShown"`
	From        string   `json:"from"`
	To          string   `json:"to"`
	RowsTotal   int      `json:"rowsTotal"`
	RowsShown   int      `json:"rowsShown"`
	FirstRow    string   `json:"firstRow"`
	RowsCount   string   `json:"rowsCount"`
	Zone01Speed string   `json:"zone01Speed"`
}

const readRange = `(() => {
  const $ = (id) => document.getElementById(id);
  const text = (id) => ($(id) ? $(id).textContent.trim() : '');
  const shown = (id) => !!$(id) && !$(id).hidden && $(id).offsetParent !== null;
  const c = $('chart'), rows = $('rows');
  const trs = rows ? rows.querySelectorAll('tbody tr') : [];
  const speed = document.querySelector('.tile[data-zone="zone-01"] .speed');
  return {
    search: location.search, title: text('chart-title'),
    active: $('range') ? $('range').dataset.active || '' : '',
    pressed: Array.from(document.querySelectorAll('#range-presets button.active')).map((b) => b.dataset.range),
    sub: text('range-sub'), state: c.dataset.state || '',
    points: +(c.dataset.points || 0), drawn: +(c.dataset.drawn || 0), width: c.clientWidth,
    first: c.dataset.first || '', last: c.dataset.last || '', pages: +(c.dataset.pages || 0),
    chartShown: shown('chart'), emptyShown: shown('chart-empty'), emptyText: text('chart-empty'),
    errorShown: shown('chart-error'), errorText: text('chart-error'),
    statusShown: shown('chart-status'), statusText: text('chart-status'),
    noteShown: shown('range-note'), noteText: text('range-note'),
    customShown: shown('range-custom'), from: $('range-from').value, to: $('range-to').value,
    rowsTotal: +(rows.dataset.total || 0), rowsShown: trs.length,
    firstRow: trs.length ? trs[0].dataset.start : '', rowsCount: rows.querySelector('.rows-count') ? rows.querySelector('.rows-count').textContent.trim() : '',
    zone01Speed: speed ? speed.textContent.trim() : '',
  };
})()`

// TestDashboardRangeBrowser loads the dashboard in headless Chromium
// against the real server with a week of stored one-minute results, and
// checks what each time range shows: the points charted and drawn, the
// first and last window, the rows table, the URL, paging through the
// results API, a custom range in the browser's local time, the empty
// state, an API error and reloads.
func TestDashboardRangeBrowser(t *testing.T) {
	browsertest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	// zone-01 has a final for each of the 10,080 minutes before the
	// current one (7 days), zone-02 for the last 30; both have the
	// current minute open on the live board.
	cur := time.Now().Truncate(time.Minute)
	plan := cityPlan(t)
	const week = 7 * 24 * 60
	var finals []stream.Result
	for i := week; i >= 1; i-- {
		v := zoneValues{speed: 40 + 18*math.Sin(float64(i)/90), pm25: 20 + 10*math.Cos(float64(i)/300), temp: 20 + 5*math.Sin(float64(i)/720)}
		finals = append(finals, final(t, "zone-01", cur.Add(-time.Duration(i)*time.Minute), v))
	}
	for i := 30; i >= 1; i-- {
		finals = append(finals, final(t, "zone-02", cur.Add(-time.Duration(i)*time.Minute), zoneValues{30, 10, 15}))
	}
	sq, err := sink.OpenSQLite(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	commitResults(t, sq, plan, finals...)
	store := &failingStore{Querier: sq}

	board := &stream.Board{}
	setLive := func(speed float64) {
		board.Set("city", "zone_1m", 0, stream.Live{Watermark: cur.Add(-5 * time.Second).UnixMilli(), Results: []stream.Result{
			result(t, "zone-01", cur.UnixMilli(), zoneValues{speed, 12, 21}),
			result(t, "zone-02", cur.UnixMilli(), zoneValues{31, 11, 16}),
		}})
	}
	setLive(44)
	srv, err := serve.New(serve.Config{Addr: "127.0.0.1:0", Pipelines: []*pipeline.Plan{plan}, Store: store, Board: board, LiveEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stopSrv := context.WithCancel(ctx)
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(srvCtx) }()
	defer func() {
		stopSrv()
		if err := <-srvDone; err != nil {
			t.Errorf("server: %v", err)
		}
	}()
	base := "http://" + srv.Addr()

	bctx := browsertest.Start(t, ctx)
	// A zone east of UTC with a half-hour offset and no daylight saving:
	// a custom range read as UTC instead of local time shows.
	ist := time.FixedZone("IST", 5*3600+1800)
	if _, err := chromedp.Call(bctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Kolkata"}); err != nil {
		t.Fatalf("set the browser's time zone: %v", err)
	}
	var mu sync.Mutex
	var afterRequests int
	problems := watchPage(t, bctx, base, func(ev any) {
		if ev, ok := ev.(*network.EventRequestWillBeSent); ok && strings.Contains(ev.Request.URL, "/results?") && strings.Contains(ev.Request.URL, "after=") {
			mu.Lock()
			afterRequests++
			mu.Unlock()
		}
	})
	defer problems()

	wait := func(what string, ok func(rangeInfo) error) rangeInfo {
		t.Helper()
		var r rangeInfo
		checkfor.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
			var err error
			if r, err = chromedp.Run(bctx, chromedp.Evaluate[rangeInfo](readRange)); err != nil {
				return err
			}
			if err := ok(r); err != nil {
				return fmt.Errorf("%s: %v; panel: %+v", what, err, r)
			}
			return nil
		})
		return r
	}
	click := func(sel string) {
		t.Helper()
		if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("click %s: %v", sel, err)
		}
	}
	minute := func(i int) string { return cur.Add(time.Duration(i) * time.Minute).UTC().Format(time.RFC3339) }
	// showing checks a loaded trailing or fixed range of zone-01.
	showing := func(active string, points int, first, last string, pages int) func(rangeInfo) error {
		return func(r rangeInfo) error {
			q, _ := url.ParseQuery(strings.TrimPrefix(r.Search, "?"))
			switch {
			case r.State != "ready":
				return fmt.Errorf("state %q, want ready", r.State)
			case r.Active != active || len(r.Pressed) != 1 || r.Pressed[0] != active:
				return fmt.Errorf("active range %q (pressed %v), want %s", r.Active, r.Pressed, active)
			case active != "custom" && (q.Get("range") != active || q.Has("from") || q.Has("to")):
				return fmt.Errorf("URL query %q, want range=%s", r.Search, active)
			case q.Get("zone") != "zone-01" || r.Title != "zone-01":
				return fmt.Errorf("zone %q in the URL, %q in the title, want zone-01", q.Get("zone"), r.Title)
			case r.Points != points || r.RowsTotal != points:
				return fmt.Errorf("%d points charted, %d rows in the table, want %d", r.Points, r.RowsTotal, points)
			case r.First != first || r.Last != last:
				return fmt.Errorf("windows %s to %s, want %s to %s", r.First, r.Last, first, last)
			case r.Pages != pages:
				return fmt.Errorf("%d pages read, want %d", r.Pages, pages)
			case !r.ChartShown || r.EmptyShown || r.ErrorShown || r.StatusShown:
				return fmt.Errorf("chart shown %v, empty state %v, error %v, status %q", r.ChartShown, r.EmptyShown, r.ErrorShown, r.StatusText)
			case r.Drawn <= 0 || r.Drawn > points || r.Drawn > 2*r.Width:
				return fmt.Errorf("%d points drawn in %d px, want 1 to min(%d, 2 per pixel)", r.Drawn, r.Width, points)
			case r.RowsShown != min(points, 12) || r.FirstRow != last:
				return fmt.Errorf("table shows %d rows from %s, want %d from %s", r.RowsShown, r.FirstRow, min(points, 12), last)
			}
			return nil
		}
	}

	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("load the dashboard: %v", err)
	}
	// The default trails the live event time over 15 minutes: 14 finals and
	// the open window, the newest first in the table.
	r := wait("the last 15 minutes of zone-01", showing("15m", 15, minute(-14), minute(0), 1))
	if !strings.Contains(r.Sub, "last 15 minutes") || !strings.HasSuffix(r.Sub, "· live") {
		t.Errorf("panel subtitle %q, want the last 15 minutes, live", r.Sub)
	}
	click(`#range-presets button[data-range="1h"]`)
	wait("the last hour", showing("1h", 60, minute(-59), minute(0), 1))
	click(`#range-presets button[data-range="24h"]`)
	wait("the last 24 hours", showing("24h", 1440, minute(-1439), minute(0), 1))

	// A week is 10,079 stored rows, more than one page of the results API
	// (10,000): the page reads both, and draws about two points per pixel.
	click(`#range-presets button[data-range="7d"]`)
	r = wait("the last 7 days", showing("7d", week, minute(-week+1), minute(0), 2))
	if r.Drawn >= week/2 {
		t.Errorf("%d of %d points drawn in %d px: not downsampled", r.Drawn, week, r.Width)
	}
	mu.Lock()
	if afterRequests < 1 {
		t.Errorf("no results request with after=: the second page was not read")
	}
	mu.Unlock()
	t.Logf("7 days: %d points drawn in %d px", r.Drawn, r.Width)
	screenshot(t, bctx, "dashboard-range-7d.png")
	if r.RowsCount != "rows 1–12 of 10,080" {
		t.Errorf("table count %q, want rows 1–12 of 10,080", r.RowsCount)
	}
	click(`#rows button.older`)
	wait("the second page of the table", func(r rangeInfo) error {
		if r.FirstRow != minute(-12) || r.RowsCount != "rows 13–24 of 10,080" {
			return fmt.Errorf("table starts at %s (%q), want %s, rows 13–24", r.FirstRow, r.RowsCount, minute(-12))
		}
		return nil
	})

	// A range longer than the page reads at most is cut after the page
	// that reaches the limit, and says so.
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[int](`import('/sources.js').then((m) => (m.limits.maxRows = 5000))`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("lower the row limit: %v", err)
	}
	click(`#range-presets button[data-range="7d"]`)
	wait("the first page of 7 days and a note", func(r rangeInfo) error {
		if r.State != "ready" || r.Pages != 1 || r.Points != 10_001 || r.First != minute(-week+1) || r.Last != minute(0) ||
			!r.StatusShown || r.StatusText != "showing the first 10,000 stored rows of this range: pick a shorter one to see the rest" {
			return errors.New("want one page, the open window and the note")
		}
		return nil
	})
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[int](`import('/sources.js').then((m) => (m.limits.maxRows = 200000))`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("restore the row limit: %v", err)
	}

	// A custom range is fixed: two hours three days ago, typed in the
	// browser's local time, in the URL as UTC; live updates pause.
	click(`#range-presets button[data-range="custom"]`)
	wait("the custom inputs", func(r rangeInfo) error {
		if !r.CustomShown || r.Active != "7d" {
			return errors.New("want the from–to inputs shown, the range still 7d")
		}
		return nil
	})
	from, to := cur.Add(-72*time.Hour), cur.Add(-70*time.Hour)
	local := func(t time.Time) string { return t.In(ist).Format("2006-01-02T15:04") }
	if err := chromedp.Do(bctx,
		chromedp.SetValue(chromedp.ID("range-from"), local(from)),
		chromedp.SetValue(chromedp.ID("range-to"), local(to)),
		chromedp.Click(chromedp.ID("range-apply"))); err != nil {
		t.Fatalf("enter a custom range: %v", err)
	}
	customShown := showing("custom", 120, minute(-72*60), minute(-70*60-1), 1)
	checkCustom := func(r rangeInfo) error {
		if err := customShown(r); err != nil {
			return err
		}
		q, _ := url.ParseQuery(strings.TrimPrefix(r.Search, "?"))
		want := from.UTC().Format(time.RFC3339)
		if q.Get("from") != want || q.Get("to") != to.UTC().Format(time.RFC3339) || q.Has("range") {
			return fmt.Errorf("URL query %q, want from=%s and to=%s", r.Search, want, to.UTC().Format(time.RFC3339))
		}
		if !r.CustomShown || r.From != local(from) || r.To != local(to) {
			return fmt.Errorf("inputs %q to %q (shown %v), want %q to %q", r.From, r.To, r.CustomShown, local(from), local(to))
		}
		if !strings.Contains(r.Sub, "live updates paused") {
			return fmt.Errorf("subtitle %q does not say live updates are paused", r.Sub)
		}
		return nil
	}
	wait("the custom range", checkCustom)
	screenshot(t, bctx, "dashboard-range-custom.png")

	// The tiles stay live while the chart holds still.
	setLive(77)
	wait("the new live value in the tile, the chart unchanged", func(r rangeInfo) error {
		if r.Zone01Speed != "77" {
			return fmt.Errorf("zone-01 tile speed %q, want 77", r.Zone01Speed)
		}
		return checkCustom(r)
	})

	// A reload keeps the range.
	if err := chromedp.Do(bctx, chromedp.Reload()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	wait("the custom range after a reload", checkCustom)

	// A range without stored results says so.
	if err := chromedp.Do(bctx,
		chromedp.SetValue(chromedp.ID("range-from"), local(cur.Add(-30*24*time.Hour))),
		chromedp.SetValue(chromedp.ID("range-to"), local(cur.Add(-29*24*time.Hour))),
		chromedp.Click(chromedp.ID("range-apply"))); err != nil {
		t.Fatalf("enter an empty range: %v", err)
	}
	wait("the empty state", func(r rangeInfo) error {
		if r.State != "empty" || !r.EmptyShown || r.EmptyText != "No stored results in this range." || r.ChartShown || r.RowsTotal != 0 || r.ErrorShown {
			return errors.New("want the empty state alone")
		}
		return nil
	})

	// An end before the start is refused in the picker.
	if err := chromedp.Do(bctx,
		chromedp.SetValue(chromedp.ID("range-from"), local(to)),
		chromedp.SetValue(chromedp.ID("range-to"), local(from)),
		chromedp.Click(chromedp.ID("range-apply"))); err != nil {
		t.Fatalf("enter a reversed range: %v", err)
	}
	wait("the picker's note", func(r rangeInfo) error {
		if !r.NoteShown || r.NoteText != "the start must be before the end" || r.State != "empty" {
			return errors.New("want the note, the range unchanged")
		}
		return nil
	})

	// An error of the results API is shown with the server's message.
	store.fail.Store(true)
	click(`#range-presets button[data-range="24h"]`)
	wait("the API error", func(r rangeInfo) error {
		if r.State != "error" || !r.ErrorShown || r.NoteShown || r.EmptyShown ||
			!strings.Contains(r.ErrorText, "could not load the stored results of zone-01: HTTP 500: "+errInjected.Error()) {
			return errors.New("want the error alone")
		}
		return nil
	})
	store.fail.Store(false)

	// Back to a trailing range: live again, the open window included.
	click(`#range-presets button[data-range="15m"]`)
	r = wait("the last 15 minutes again", showing("15m", 15, minute(-14), minute(0), 1))
	if !strings.HasSuffix(r.Sub, "· live") || r.CustomShown {
		t.Errorf("subtitle %q, custom inputs shown %v: want live, no inputs", r.Sub, r.CustomShown)
	}

	// A link names the range and the zone; a reload keeps both.
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/?range=24h&zone=zone-02")); err != nil {
		t.Fatalf("open a link: %v", err)
	}
	zone02 := func(r rangeInfo) error {
		if r.State != "ready" || r.Title != "zone-02" || r.Active != "24h" || r.Points != 31 || r.First != minute(-30) || r.Last != minute(0) {
			return errors.New("want 31 windows of zone-02 over 24 h")
		}
		return nil
	}
	wait("zone-02 over 24 hours", zone02)
	if err := chromedp.Do(bctx, chromedp.Reload()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	wait("zone-02 over 24 hours after a reload", zone02)

	// A link with a range the page does not know says so and shows the
	// default.
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/?range=3d&zone=zone-01")); err != nil {
		t.Fatalf("open a link: %v", err)
	}
	wait("the note on the unknown range", func(r rangeInfo) error {
		if !r.NoteShown || !strings.HasPrefix(r.NoteText, "range=3d is unknown") {
			return errors.New("want a note on range=3d")
		}
		return showing("15m", 15, minute(-14), minute(0), 1)(r)
	})

	// The open window closes: its final is stored, the next minute opens.
	// The trailing range moves on, reads the new final and charts the new
	// open window.
	commitResults(t, sq, plan, final(t, "zone-01", cur, zoneValues{50, 12, 21}))
	next := cur.Add(time.Minute)
	board.Set("city", "zone_1m", 0, stream.Live{Watermark: next.Add(-5 * time.Second).UnixMilli(), Results: []stream.Result{
		result(t, "zone-01", next.UnixMilli(), zoneValues{52, 12, 21}),
	}})
	wait("the next minute", showing("15m", 15, minute(-13), minute(1), 1))
}

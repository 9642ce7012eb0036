package serve_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/pulsehq/pulse/internal/browsertest"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/serve"
	"github.com/pulsehq/pulse/internal/sink"
	"github.com/pulsehq/pulse/internal/stream"
)

// zoneValues are the averages a test window of one zone gets.
type zoneValues struct {
	speed, pm25, temp float64
}

// tileInfo is what the page shows in one zone tile.
type tileInfo struct {
	Zone      string `json:"zone"`
	Speed     string `json:"speed"`
	PM25      string `json:"pm25"`
	Temp      string `json:"temp"`
	SpeedBand string `json:"speedBand"`
	PM25Band  string `json:"pm25Band"`
	Selected  bool   `json:"selected"`
}

// pageInfo is a snapshot of the page's state, read in one evaluation.
type pageInfo struct {
	Tiles         []tileInfo `json:"tiles"`
	EmptyShown    bool       `json:"emptyShown"`
	EmptyText     string     `json:"emptyText"`
	IngestRate    string     `json:"ingestRate"`
	Watermark     string     `json:"watermark"`
	Status        string     `json:"status"`
	ChartTitle    string     `json:"chartTitle"`
	ChartPoints   string     `json:"chartPoints"`
	ChartCanvases int        `json:"chartCanvases"`
	ChartVisible  bool       `json:"chartVisible"`
}

const readPage = `(() => {
  const text = (root, sel) => { const e = root.querySelector(sel); return e ? e.textContent.trim() : ''; };
  const band = (root, sel) => { const e = root.querySelector(sel); return e ? (e.dataset.band || '') : ''; };
  const empty = document.getElementById('empty');
  return {
    tiles: Array.from(document.querySelectorAll('#tiles .tile')).map((t) => ({
      zone: t.dataset.zone,
      speed: text(t, '.speed'), pm25: text(t, '.pm25'), temp: text(t, '.temp'),
      speedBand: band(t, '.m-speed'), pm25Band: band(t, '.m-pm25'),
      selected: t.classList.contains('selected'),
    })),
    emptyShown: !!empty && !empty.hidden && empty.offsetParent !== null,
    emptyText: empty ? empty.textContent.trim() : '',
    ingestRate: text(document, '#ingest-rate'),
    watermark: text(document, '#watermark'),
    status: text(document, '#status'),
    chartTitle: text(document, '#chart-title'),
    chartPoints: (document.getElementById('chart') || {dataset: {}}).dataset.points || '',
    chartCanvases: document.querySelectorAll('#chart canvas').length,
    chartVisible: Array.from(document.querySelectorAll('#chart canvas')).some((c) => c.offsetParent !== null && c.getBoundingClientRect().width > 300),
  };
})()`

// TestDashboardBrowser loads the dashboard in headless Chromium against the
// real server fed through the live board and the result store, and checks
// that the tiles, the header and the chart show the data and follow it.
func TestDashboardBrowser(t *testing.T) {
	browsertest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// The current minute's window and 25 minutes of finals before it.
	now := time.Now()
	cur := now.Truncate(time.Minute).UnixMilli()
	minute := time.Minute.Milliseconds()
	zones := []string{"zone-01", "zone-02", "zone-03", "zone-04", "zone-05", "zone-06"}
	live := map[string]zoneValues{
		"zone-01": {42, 8, 21.5},
		"zone-02": {17, 28, 22.4},
		"zone-03": {55, 41, 19.8},
		"zone-04": {33, 12, 23.1},
		"zone-05": {61, 66, 20.6},
		"zone-06": {24, 19, 18.9},
	}

	store, err := sink.OpenSQLite(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var finals []stream.Result
	for zi, zone := range zones {
		for i := 25; i >= 1; i-- {
			phase := float64(i)/4 + float64(zi)
			v := zoneValues{
				speed: 40 + 18*math.Sin(phase),
				pm25:  20 + 12*math.Cos(phase/2),
				temp:  20 + 2*math.Sin(phase/3),
			}
			finals = append(finals, result(t, zone, cur-int64(i)*minute, v))
		}
	}
	for i := range finals {
		finals[i].Final = true
	}
	commitResults(t, store, cityPlan(t), finals...)

	// The board starts empty so that the page first waits for data.
	board := &stream.Board{}
	var accepted atomic.Uint64
	srv, err := serve.New(serve.Config{
		Addr:      "127.0.0.1:0",
		Pipelines: []*pipeline.Plan{cityPlan(t)},
		Store:     store,
		Board:     board,
		LiveEvery: 200 * time.Millisecond,
		Accepted:  accepted.Load,
	})
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
	go func() { // about 5000 events/s
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-srvCtx.Done():
				return
			case <-tick.C:
				accepted.Add(250)
			}
		}
	}()
	base := "http://" + srv.Addr()

	bctx := browsertest.Start(t, ctx)

	defer watchPage(t, bctx, base, nil)()

	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("load the dashboard: %v", err)
	}
	title, err := chromedp.Run(bctx, chromedp.Title())
	if err != nil || !strings.Contains(title, "Pulse") {
		t.Fatalf("page title = %q, %v; want the Pulse dashboard", title, err)
	}

	// No results yet: the page says it is waiting.
	waitFor(t, bctx, "the waiting message and a live connection", func(p pageInfo) bool {
		return p.EmptyShown && strings.Contains(strings.ToLower(p.EmptyText), "waiting for data") &&
			len(p.Tiles) == 0 && strings.Contains(p.Status, "live")
	})

	// Data arrives: zone-02 also has the previous minute's window still
	// open, and its tile must show the latest one.
	setLive := func() {
		results := []stream.Result{result(t, "zone-02", cur-minute, zoneValues{99, 99, 99})}
		for _, z := range zones {
			results = append(results, result(t, z, cur, live[z]))
		}
		board.Set("city", "zone_1m", 0, stream.Live{Watermark: time.Now().Add(-3 * time.Second).UnixMilli(), Results: results})
	}
	setLive()
	p := waitFor(t, bctx, "a tile per zone showing the board's values", func(p pageInfo) bool {
		if len(p.Tiles) != len(zones) {
			return false
		}
		for _, tile := range p.Tiles {
			if !matches(tile, live[tile.Zone]) {
				return false
			}
		}
		return true
	})
	var got []string
	for _, tile := range p.Tiles {
		got = append(got, tile.Zone)
	}
	if !slices.Equal(got, zones) {
		t.Errorf("tiles are %v, want them sorted by zone: %v", got, zones)
	}
	if p.EmptyShown {
		t.Errorf("the waiting message is still shown with data")
	}

	// The header shows the ingest rate and the watermark.
	waitFor(t, bctx, "a positive ingest rate and a watermark", func(p pageInfo) bool {
		rate, err := strconv.ParseFloat(strings.ReplaceAll(p.IngestRate, ",", ""), 64)
		return err == nil && rate > 0 && strings.Count(p.Watermark, ":") == 2
	})

	// The first zone is selected and its chart has the finals and the live
	// window.
	waitFor(t, bctx, "zone-01 selected with its history charted", func(p pageInfo) bool {
		n, _ := strconv.Atoi(p.ChartPoints)
		return p.Tiles[0].Selected && p.ChartTitle == "zone-01" && p.ChartCanvases > 0 && p.ChartVisible && n >= 14
	})

	// The board changes: the tiles follow, colours included.
	live["zone-01"] = zoneValues{12, 80, 31.5}
	live["zone-04"] = zoneValues{47, 9, 16.2}
	setLive()
	waitFor(t, bctx, "the tiles to show the new values", func(p pageInfo) bool {
		for _, tile := range p.Tiles {
			if !matches(tile, live[tile.Zone]) {
				return false
			}
		}
		return p.Tiles[0].SpeedBand == "bad" && p.Tiles[0].PM25Band == "bad" && p.Tiles[3].PM25Band == "good"
	})

	// Clicking a tile selects its zone and charts its history.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`.tile[data-zone="zone-03"]`))); err != nil {
		t.Fatalf("click zone-03: %v", err)
	}
	waitFor(t, bctx, "zone-03 selected with its history charted", func(p pageInfo) bool {
		n, _ := strconv.Atoi(p.ChartPoints)
		return p.Tiles[2].Selected && !p.Tiles[0].Selected && p.ChartTitle == "zone-03" && p.ChartCanvases > 0 && p.ChartVisible && n >= 14
	})

	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := artifactPath(t, "dashboard.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// watchPage records uncaught exceptions, console errors and any request
// that leaves the server at base (the dashboard must work offline), and
// passes every event to also when it is not nil. The function it returns
// reports what it recorded as test errors.
func watchPage(t *testing.T, bctx context.Context, base string, also func(ev any)) func() {
	t.Helper()
	var mu sync.Mutex
	var problems []string
	if err := chromedp.Listen(bctx, func(ev any) {
		if also != nil {
			also(ev)
		}
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text+" "+describe(ev.ExceptionDetails.Exception))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, describe(a))
				}
				problems = append(problems, "console.error: "+strings.Join(args, " "))
			}
		case *network.EventRequestWillBeSent:
			u := ev.Request.URL
			if !strings.HasPrefix(u, base+"/") && !strings.HasPrefix(u, "data:") {
				problems = append(problems, "request outside the server: "+u)
			}
		}
	}); err != nil {
		t.Fatalf("listen to the browser: %v", err)
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("page: %s", p)
		}
	}
}

// waitFor reads the page until ok accepts it, failing the test with the last
// state read when the context ends first.
func waitFor(t *testing.T, ctx context.Context, what string, ok func(pageInfo) bool) pageInfo {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last pageInfo
	var lastErr error
	for {
		p, err := chromedp.Run(ctx, chromedp.Evaluate[pageInfo](readPage))
		if err == nil {
			last = p
			if ok(p) {
				return p
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last error %v); page state: %+v", what, ctx.Err(), lastErr, last)
		case <-tick.C:
		}
	}
}

// matches reports whether the tile's numbers are v as the page rounds them.
func matches(tile tileInfo, v zoneValues) bool {
	return near(tile.Speed, v.speed, 0.5) && near(tile.PM25, v.pm25, 0.05) && near(tile.Temp, v.temp, 0.05)
}

func near(text string, want, tol float64) bool {
	got, err := strconv.ParseFloat(text, 64)
	return err == nil && math.Abs(got-want) <= tol+1e-9
}

// result is a live window of zone starting at start whose speed, PM2.5
// and temperature average to v.
func result(t *testing.T, zone string, start int64, v zoneValues) stream.Result {
	return zoneWindow(t, zone, time.UnixMilli(start), false, map[string]float64{
		"count": 6, "speed_kmh_count": 2, "speed_kmh_avg": v.speed, "speed_kmh_min": v.speed - 1, "speed_kmh_max": v.speed + 1,
		"vehicle_count_count": 2, "vehicle_count_avg": 12, "pm25_count": 2, "pm25_avg": v.pm25, "pm25_min": v.pm25 - 1, "pm25_max": v.pm25 + 1,
		"temp_c_count": 2, "temp_c_avg": v.temp, "temp_c_min": v.temp - 1, "temp_c_max": v.temp + 1,
	})
}

// describe gives a short text for a remote object.
func describe(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	if o.Description != "" {
		return o.Description
	}
	return string(o.Value)
}

// artifactPath returns where to save a test artifact: $PULSE_ARTIFACTS, or
// artifacts/ at the root of the repository.
func artifactPath(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("PULSE_ARTIFACTS")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

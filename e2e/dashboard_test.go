package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pulsehq/pulse/internal/browsertest"
)

type tile struct {
	Zone  string `json:"zone"`
	Speed string `json:"speed"`
	PM25  string `json:"pm25"`
	Temp  string `json:"temp"`
}

const readTiles = `Array.from(document.querySelectorAll('#tiles .tile')).map((t) => ({
  zone: t.dataset.zone,
  speed: (t.querySelector('.speed') || {}).textContent || '',
  pm25: (t.querySelector('.pm25') || {}).textContent || '',
  temp: (t.querySelector('.temp') || {}).textContent || '',
}))`

// TestDashboardLive runs `pulse run --demo` and opens its dashboard in
// headless Chromium: zone tiles show numbers computed from the simulator's
// events, and they change as new events arrive.
func TestDashboardLive(t *testing.T) {
	browsertest.Require(t)
	in := newInstance(t, "--demo", "--demo-rate", "1000", "--demo-sensors", "150", "--demo-zones", "5", "--live-interval", "200ms")
	p := in.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bctx := browsertest.Start(t, ctx)
	if err := chromedp.Do(bctx, chromedp.Navigate(p.url("/"))); err != nil {
		t.Fatal(err)
	}
	numeric := func(ts []tile) bool {
		if len(ts) != 5 {
			return false
		}
		for _, x := range ts {
			for _, v := range []string{x.Speed, x.PM25, x.Temp} {
				if _, err := strconv.ParseFloat(v, 64); err != nil {
					return false
				}
			}
		}
		return true
	}
	var first []tile
	for ctx.Err() == nil {
		ts, err := chromedp.Run(bctx, chromedp.Evaluate[[]tile](readTiles))
		if err == nil && numeric(ts) {
			first = ts
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if first == nil {
		t.Fatalf("no zone tiles with numbers within 90s")
	}
	changed := false
	for ctx.Err() == nil && !changed {
		ts, err := chromedp.Run(bctx, chromedp.Evaluate[[]tile](readTiles))
		if err == nil && numeric(ts) {
			for i := range ts {
				if ts[i] != first[i] {
					changed = true
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !changed {
		t.Fatalf("tiles did not change as events arrived: %+v", first)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("PULSE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err == nil {
		os.WriteFile(filepath.Join(dir, "dashboard-live.png"), shot, 0o644)
	}
	p.stop()
}

package serve_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pulsehq/pulse/internal/browsertest"
	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/stream"
)

type watermarkNote struct {
	Shown bool   `json:"shown"`
	Text  string `json:"text"`
	Title string `json:"title"`
	Held  bool   `json:"held"`
}

const readWatermarkNote = `(() => {
  const e = document.getElementById('watermark-held');
  return e ? {shown: !e.hidden && e.offsetParent !== null, text: e.textContent.trim(), title: e.title, held: e.classList.contains('held')} : {};
})()`

// TestDashboardWatermarkBrowser loads the dashboard in headless Chromium
// against the real server and checks that the header says which source
// partition holds the watermark back, and that every source is idle once
// they are.
func TestDashboardWatermarkBrowser(t *testing.T) {
	browsertest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base, _, board := startAPI(t)
	now := time.Now().UnixMilli()
	board.Set("city", "zone_1m", 0, stream.Live{Watermark: now - 60_000})
	board.SetSources("city", 0, []stream.SourceWatermark{
		{Topic: "city", Partition: 0, EventTime: now - 2_000, Seen: true, Unread: 0, LastRead: now},
		{Topic: "city", Partition: 1, EventTime: now - 60_000, Seen: true, Unread: 0, LastRead: now - 12_000},
	}, now)

	bctx := browsertest.Start(t, ctx)
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("load the dashboard: %v", err)
	}
	wait := func(what string, ok func(watermarkNote) bool) watermarkNote {
		t.Helper()
		var n watermarkNote
		checkfor.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
			var err error
			if n, err = chromedp.Run(bctx, chromedp.Evaluate[watermarkNote](readWatermarkNote)); err != nil {
				return err
			}
			if !ok(n) {
				return fmt.Errorf("the watermark note is %+v, want %s", n, what)
			}
			return nil
		})
		return n
	}
	n := wait("held by city:1 with its quiet time", func(n watermarkNote) bool {
		return n.Shown && n.Held && strings.HasPrefix(n.Text, "held by city:1 (last event ") && strings.Contains(n.Title, "held by city:1")
	})
	if path := os.Getenv("PULSE_SCREENSHOT"); path != "" {
		if png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)); err == nil {
			_ = os.WriteFile(path, png, 0o644)
		}
	}
	t.Logf("held: %+v", n)

	board.SetSources("city", 0, []stream.SourceWatermark{
		{Topic: "city", Partition: 0, EventTime: now - 2_000, Seen: true, Idle: true, Advanced: now + 30_000},
		{Topic: "city", Partition: 1, EventTime: now - 60_000, Seen: true, Idle: true, Advanced: now - 30_000},
	}, now)
	wait("every source idle", func(n watermarkNote) bool {
		return n.Shown && !n.Held && n.Text == "all sources idle · advancing with the clock" && strings.Contains(n.Title, "advances with the clock")
	})
}

package serve_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pulsehq/pulse/internal/browsertest"
)

// moduleCases runs the dashboard's pure functions (series.js, range.js)
// in the page on known inputs and returns what they gave.
const moduleCases = `(async () => {
  const s = await import('/series.js');
  const r = await import('/range.js');
  // 10,000 points of a wave with a spike, a dip and a run of nulls.
  const xs = [], ys = [];
  for (let i = 0; i < 10000; i++) { xs.push(i * 60); ys.push(10 * Math.sin(i / 100)); }
  ys[5000] = 1000; ys[7000] = -1000;
  for (let i = 100; i < 200; i++) ys[i] = null;
  const [dx, dy] = s.downsample(xs, ys, 100);
  const few = s.downsample(xs.slice(0, 150), ys.slice(0, 150), 100);
  const t = (row) => row.t;
  const merged = s.merge([{ t: 0 }, { t: 60 }, { t: 120 }, { t: 180, v: 'stored' }],
    [{ t: 240, v: 'live' }, { t: 180, v: 'live' }], t, 60, 300);
  const parse = (q) => { const p = r.parse(q); return { kind: p.range.kind, id: p.range.id || '', from: p.range.from || 0, to: p.range.to || 0, note: p.note || '' }; };
  const custom = { kind: 'custom', from: Date.parse('2026-12-01T10:00:00Z'), to: Date.parse('2026-12-01T12:00:30.5Z') };
  const written = r.write('?foo=1&range=7d', custom, 'zone 01');
  return {
    drawn: dx.length, drawnMax: Math.max(...dy), drawnMin: Math.min(...dy),
    increasing: dx.every((x, i) => i === 0 || x > dx[i - 1]), nulls: dy.filter((y) => y == null).length,
    firstX: dx[0], lastX: dx[dx.length - 1], few: few[0].length,
    merged: merged.map((m) => m.t), mergedAt180: merged[2].v,
    presets: ['15m', '1h', '24h', '7d'].map((id) => r.bounds({ kind: 'preset', id }, 1e12)[0]),
    parsed: [parse('?range=1h'), parse('?from=2026-12-01T10:00:00Z&to=2026-12-01T12:00:00Z'), parse('?range=3d'),
      parse('?from=2026-12-01T10:00:00Z'), parse('?from=2026-12-01T12:00:00Z&to=2026-12-01T10:00:00Z'), parse('')],
    written, reparsed: parse(written),
    customOK: r.custom('2026-12-01T10:00', '2026-12-01T11:00').range != null,
    customReversed: r.custom('2026-12-01T11:00', '2026-12-01T10:00').error || '',
    customEmpty: r.custom('', '2026-12-01T10:00').error || '',
  };
})()`

type parsedRange struct {
	Kind string  `json:"kind"`
	ID   string  `json:"id"`
	From float64 `json:"from"`
	To   float64 `json:"to"`
	Note string  `json:"note"`
}

type moduleResults struct {
	Drawn          int           `json:"drawn"`
	DrawnMax       float64       `json:"drawnMax"`
	DrawnMin       float64       `json:"drawnMin"`
	Increasing     bool          `json:"increasing"`
	Nulls          int           `json:"nulls"`
	FirstX         float64       `json:"firstX"`
	LastX          float64       `json:"lastX"`
	Few            int           `json:"few"`
	Merged         []float64     `json:"merged"`
	MergedAt180    string        `json:"mergedAt180"`
	Presets        []float64     `json:"presets"`
	Parsed         []parsedRange `json:"parsed"`
	Written        string        `json:"written"`
	Reparsed       parsedRange   `json:"reparsed"`
	CustomOK       bool          `json:"customOK"`
	CustomReversed string        `json:"customReversed"`
	CustomEmpty    string        `json:"customEmpty"`
}

// TestDashboardModulesBrowser checks the dashboard's downsampling, merging
// and range parsing on known inputs, run by Chromium as the page runs them.
func TestDashboardModulesBrowser(t *testing.T) {
	browsertest.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base, _, _ := startAPI(t)
	bctx := browsertest.Start(t, ctx)
	defer watchPage(t, bctx, base, nil)()
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("load the dashboard: %v", err)
	}
	got, err := chromedp.Run(bctx, chromedp.Evaluate[moduleResults](moduleCases, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("run the cases: %v", err)
	}
	js, _ := json.Marshal(got)
	t.Logf("results: %s", js)

	// Downsampling keeps at most two points a bucket, in x order, the
	// extremes among them, and drops the nulls; a short series is kept.
	if got.Drawn > 200 || got.Drawn < 100 || !got.Increasing || got.Nulls != 0 {
		t.Errorf("downsampled to %d points (increasing %v, %d nulls), want 100 to 200 increasing, no null", got.Drawn, got.Increasing, got.Nulls)
	}
	if got.DrawnMax != 1000 || got.DrawnMin != -1000 {
		t.Errorf("downsampled range [%v, %v], want the spike and the dip [-1000, 1000]", got.DrawnMin, got.DrawnMax)
	}
	if got.FirstX != 0 || got.LastX < 9900*60 {
		t.Errorf("downsampled x from %v to %v, want from 0 to the last bucket", got.FirstX, got.LastX)
	}
	if got.Few != 150 {
		t.Errorf("150 points in 100 buckets became %d, want all 150", got.Few)
	}

	// Merging keeps the stored rows in range and the newer live ones; a
	// stored final wins over the live row of its window.
	if want := []float64{60, 120, 180, 240}; !slices.Equal(got.Merged, want) || got.MergedAt180 != "stored" {
		t.Errorf("merged %v (180 from %q), want %v with 180 stored", got.Merged, got.MergedAt180, want)
	}
	if want := []float64{1e12 - 15*60e3, 1e12 - 3600e3, 1e12 - 24*3600e3, 1e12 - 7*24*3600e3}; !slices.Equal(got.Presets, want) {
		t.Errorf("preset starts %v, want %v", got.Presets, want)
	}

	from := float64(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).UnixMilli())
	to := float64(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	wants := []struct {
		kind, id   string
		from, to   float64
		notePrefix string
	}{
		{"preset", "1h", 0, 0, ""},
		{"custom", "", from, to, ""},
		{"preset", "15m", 0, 0, "range=3d is unknown"},
		{"preset", "15m", 0, 0, "the link's range (from=2026-12-01T10:00:00Z&to=) needs two times"},
		{"preset", "15m", 0, 0, "the link's range starts (2026-12-01T12:00:00Z) at or after its end"},
		{"preset", "15m", 0, 0, ""},
	}
	if len(got.Parsed) != len(wants) {
		t.Fatalf("%d parsed, want %d", len(got.Parsed), len(wants))
	}
	for i, w := range wants {
		p := got.Parsed[i]
		if p.Kind != w.kind || p.ID != w.id || p.From != w.from || p.To != w.to || len(p.Note) < len(w.notePrefix) || p.Note[:len(w.notePrefix)] != w.notePrefix || (w.notePrefix == "" && p.Note != "") {
			t.Errorf("case %d parsed as %+v, want %+v", i, p, w)
		}
	}

	// Writing keeps other parameters, replaces the range, and reads back.
	if want := "?foo=1&from=2026-12-01T10%3A00%3A00Z&to=2026-12-01T12%3A00%3A30.500Z&zone=zone+01"; got.Written != want {
		t.Errorf("written %q, want %q", got.Written, want)
	}
	if r := got.Reparsed; r.Kind != "custom" || r.From != from || r.To != to+30500 || r.Note != "" {
		t.Errorf("written range read back as %+v", r)
	}
	if !got.CustomOK || got.CustomReversed != "the start must be before the end" || got.CustomEmpty != "give both a start and an end time" {
		t.Errorf("custom inputs: ok %v, reversed %q, empty %q", got.CustomOK, got.CustomReversed, got.CustomEmpty)
	}
}

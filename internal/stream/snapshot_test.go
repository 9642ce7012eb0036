package stream

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestSnapshotRestore checks that an engine restored from a snapshot taken
// at any point produces the same finals, in the same order, and the same
// open windows as an engine that ran uninterrupted.
func TestSnapshotRestore(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 7))
	feed := randomFeed(rng, 6000, 300)
	const advanceEvery = 97

	ref := NewEngine(City().Outputs, oracleDisorder, oracleIdle)
	want := runFeed(t, ref, feed, advanceEvery)
	wantOpen := openResults(ref)
	if len(want) == 0 || len(wantOpen) == 0 {
		t.Fatalf("degenerate run: %d finals, %d open", len(want), len(wantOpen))
	}

	for _, cut := range []int{0, 1, advanceEvery - 1, advanceEvery, 2500, len(feed) - 1, len(feed)} {
		t.Run(fmt.Sprintf("cut=%d", cut), func(t *testing.T) {
			e := NewEngine(City().Outputs, oracleDisorder, oracleIdle)
			var got []Result
			for i := range feed {
				if i == cut {
					e = snapshotRestore(t, e, int64(i))
				}
				now := int64(i)
				if !e.Add(feed[i].part, &feed[i].r, now) {
					t.Fatalf("event %d late", i)
				}
				if i%advanceEvery == advanceEvery-1 {
					got = e.Advance(now, got)
				}
			}
			if cut == len(feed) {
				e = snapshotRestore(t, e, int64(len(feed)))
			}
			got = e.Advance(int64(len(feed))+oracleIdle, got)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("restored engine emitted %d finals, uninterrupted %d; first difference at %d", len(got), len(want), firstDiff(got, want))
			}
			if open := openResults(e); !reflect.DeepEqual(open, wantOpen) {
				t.Fatalf("restored engine has %d open windows, uninterrupted %d", len(open), len(wantOpen))
			}
		})
	}
}

// snapshotRestore snapshots e and restores the snapshot into a new engine,
// as a restarted processor would.
func snapshotRestore(t *testing.T, e *Engine, now int64) *Engine {
	t.Helper()
	data, err := e.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	r := NewEngine(City().Outputs, oracleDisorder, oracleIdle)
	if err := r.Restore(data, time.UnixMilli(now)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if r.OpenWindows() != e.OpenWindows() || r.Watermark() != e.Watermark() {
		t.Fatalf("restored: %d open windows, watermark %d; original %d, %d", r.OpenWindows(), r.Watermark(), e.OpenWindows(), e.Watermark())
	}
	return r
}

func openResults(e *Engine) []Result {
	var rs []Result
	for _, o := range City().Outputs {
		rs = e.Partials(o.Name, rs)
	}
	return sortedResults(rs)
}

func firstDiff(a, b []Result) int {
	for i := range min(len(a), len(b)) {
		if !reflect.DeepEqual(a[i], b[i]) {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestSnapshotEmptyEngine(t *testing.T) {
	e := NewEngine(City().Outputs, 5000, 30000)
	r := snapshotRestore(t, e, 0)
	if r.Watermark() != NoWatermark || r.OpenWindows() != 0 {
		t.Fatalf("restored empty engine: watermark %d, %d open", r.Watermark(), r.OpenWindows())
	}
	if out := r.Advance(1e9, nil); len(out) != 0 {
		t.Fatalf("restored empty engine fired %v", out)
	}
}

// TestRestoreDropsUnknownOutputs restores a city snapshot into an engine
// that only has zone_1m.
func TestRestoreDropsUnknownOutputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	feed := randomFeed(rng, 500, 40)
	full := NewEngine(City().Outputs, oracleDisorder, oracleIdle)
	for i := range feed {
		full.Add(feed[i].part, &feed[i].r, int64(i))
	}
	data, err := full.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	zoneOnly := NewEngine(City().Outputs[1:], oracleDisorder, oracleIdle)
	if err := zoneOnly.Restore(data, time.UnixMilli(0)); err != nil {
		t.Fatal(err)
	}
	if got, want := zoneOnly.OpenWindows(), len(full.Partials("zone_1m", nil)); got != want {
		t.Fatalf("%d open windows after restore, want the %d of zone_1m", got, want)
	}
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	var v2 bytes.Buffer
	if err := gob.NewEncoder(&v2).Encode(&snapshot{Version: snapshotVersion + 1}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		err  string
	}{
		{"empty", nil, "decode engine snapshot"},
		{"garbage", []byte("not a snapshot"), "decode engine snapshot"},
		{"newer version", v2.Bytes(), fmt.Sprintf("version %d is not supported", snapshotVersion+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine(City().Outputs, 5000, 30000)
			err := e.Restore(tt.data, time.UnixMilli(0))
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Restore = %v, want an error containing %q", err, tt.err)
			}
		})
	}
}

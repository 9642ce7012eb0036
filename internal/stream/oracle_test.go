package stream

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
)

const (
	oracleDisorder = 5_000
	oracleIdle     = 30_000
	oracleBase     = 1772366400000 // 2026-03-01T12:00:00Z
)

// feedStep is one event as a consumer sees it: its partition and reading.
type feedStep struct {
	part int32
	r    event.Reading
}

// randomFeed returns n readings of keys sensors over 4 partitions (a
// sensor always on the same one), in a random interleaving of the
// partitions that keeps each partition's order. Within a partition an
// event is never more than disorder-1 ms behind the latest before it.
func randomFeed(rng *rand.Rand, n, keys int) []feedStep {
	const parts = 4
	perPart := make([][]feedStep, parts)
	var cursor [parts]int64
	for p := range cursor {
		cursor[p] = oracleBase + rng.Int64N(10_000)
	}
	for range n {
		id := rng.IntN(keys)
		p := int32(id % parts)
		cursor[p] += rng.Int64N(200)
		r := event.Reading{
			SensorID: fmt.Sprintf("s-%04d", id),
			Zone:     fmt.Sprintf("zone-%02d", id%17),
			TS:       cursor[p] - rng.Int64N(oracleDisorder),
		}
		switch id % 3 {
		case 0:
			r.Kind = event.KindTraffic
			r.Set(event.SpeedKmh, float64(rng.IntN(30000))/100)
			if rng.IntN(2) == 0 {
				r.Set(event.VehicleCount, float64(rng.IntN(200)))
			}
		case 1:
			r.Kind = event.KindAir
			r.Set(event.PM25, rng.Float64()*500)
			r.Set(event.NO2, rng.Float64()*100)
		default:
			r.Kind = event.KindWeather
			r.Set(event.TempC, rng.Float64()*60-30)
		}
		perPart[p] = append(perPart[p], feedStep{part: p, r: r})
	}
	out := make([]feedStep, 0, n)
	for len(out) < n {
		p := rng.IntN(parts)
		if len(perPart[p]) == 0 {
			continue
		}
		out = append(out, perPart[p][0])
		perPart[p] = perPart[p][1:]
	}
	return out
}

// windowKey identifies one window of one key of one output.
type windowKey struct {
	output, key string
	start       int64
}

// batchResults computes every window of the city pipeline from scratch.
func batchResults(feed []feedStep) map[windowKey]WindowState {
	out := make(map[windowKey]WindowState)
	for _, o := range City().Outputs {
		for i := range feed {
			r := &feed[i].r
			k := windowKey{o.Name, o.Key(r), r.TS - ((r.TS%60_000)+60_000)%60_000}
			s := out[k]
			s.Count++
			s.Has |= r.Has
			for m := event.Metric(0); m < event.NumMetrics; m++ {
				if !r.HasMetric(m) {
					continue
				}
				a := &s.Metrics[m]
				v := r.Values[m]
				if a.Count == 0 || v < a.Min {
					a.Min = v
				}
				if a.Count == 0 || v > a.Max {
					a.Max = v
				}
				a.Count++
				a.Sum += v
			}
			out[k] = s
		}
	}
	return out
}

// runFeed feeds the engine one event per ms of processing time, advancing
// every advanceEvery events, and finally advances with every partition
// idle. It returns the finals in emission order.
func runFeed(t *testing.T, e *Engine, feed []feedStep, advanceEvery int) []Result {
	t.Helper()
	var finals []Result
	for i := range feed {
		now := int64(i)
		if !e.Add(feed[i].part, &feed[i].r, now) {
			t.Fatalf("event %d (ts %d, partition %d) is late with bounded disorder", i, feed[i].r.TS, feed[i].part)
		}
		if i%advanceEvery == advanceEvery-1 {
			finals = e.Advance(now, finals)
		}
	}
	return e.Advance(int64(len(feed))+oracleIdle, finals)
}

func TestEngineMatchesBatch(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x9e3779b9))
			feed := randomFeed(rng, 20_000, 50+rng.IntN(500))
			e := NewEngine(City().Outputs, oracleDisorder, oracleIdle)
			finals := runFeed(t, e, feed, 1+rng.IntN(300))
			want := batchResults(feed)

			// With every partition idle the watermark is the highest event
			// time minus the disorder: windows ending by then are final,
			// the others still open.
			var maxTS int64
			for i := range feed {
				maxTS = max(maxTS, feed[i].r.TS)
			}
			wm := maxTS - oracleDisorder
			if e.Watermark() != wm {
				t.Fatalf("final watermark %d, want %d", e.Watermark(), wm)
			}
			got := make(map[windowKey]Result)
			for _, r := range finals {
				k := windowKey{r.Output, r.Key, r.Start}
				if _, dup := got[k]; dup {
					t.Fatalf("window %v fired twice", k)
				}
				if !r.Final || r.End > wm {
					t.Fatalf("final %v ends at %d, after the watermark %d", k, r.End, wm)
				}
				got[k] = r
			}
			var open []Result
			for _, o := range City().Outputs {
				open = e.Partials(o.Name, open)
			}
			if len(open) != e.OpenWindows() {
				t.Fatalf("%d partials, OpenWindows() = %d", len(open), e.OpenWindows())
			}
			for _, r := range open {
				k := windowKey{r.Output, r.Key, r.Start}
				if _, dup := got[k]; dup || r.Final || r.End <= wm {
					t.Fatalf("window %v still open (final %v, end %d) with watermark %d", k, r.Final, r.End, wm)
				}
				got[k] = r
			}
			if len(got) != len(want) {
				t.Fatalf("engine has %d windows (%d final), batch %d", len(got), len(finals), len(want))
			}
			for k, w := range want {
				g, ok := got[k]
				if !ok {
					t.Fatalf("window %v missing", k)
				}
				if g.End != k.start+60_000 {
					t.Fatalf("window %v ends at %d", k, g.End)
				}
				if err := sameState(g.State, w); err != nil {
					t.Fatalf("window %v: %v", k, err)
				}
			}
			if len(finals) == 0 || len(open) == 0 {
				t.Fatalf("degenerate run: %d finals, %d open", len(finals), len(open))
			}
		})
	}
}

// sameState compares counts, minima and maxima exactly and sums within
// 1e-9 relative, since the engine adds in a different order.
func sameState(got, want WindowState) error {
	if got.Count != want.Count || got.Has != want.Has {
		return fmt.Errorf("count %d has %b, want %d %b", got.Count, got.Has, want.Count, want.Has)
	}
	for m := event.Metric(0); m < event.NumMetrics; m++ {
		g, w := got.Metrics[m], want.Metrics[m]
		if g.Count != w.Count || g.Min != w.Min || g.Max != w.Max {
			return fmt.Errorf("%s: %+v, want %+v", m, g, w)
		}
		if !closeTo(g.Sum, w.Sum) {
			return fmt.Errorf("%s: sum %v, want %v", m, g.Sum, w.Sum)
		}
	}
	return nil
}

func sortedResults(rs []Result) []Result {
	rs = append([]Result(nil), rs...)
	sort.Slice(rs, func(i, j int) bool {
		a, b := &rs[i], &rs[j]
		if a.Output != b.Output {
			return a.Output < b.Output
		}
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		return a.Key < b.Key
	})
	return rs
}

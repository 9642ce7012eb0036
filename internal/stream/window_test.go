package stream

import (
	"encoding/json"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
)

func TestTumblingStart(t *testing.T) {
	const min = 60_000
	tests := []struct {
		size, ts, want int64
	}{
		{min, 0, 0},
		{min, 1, 0},
		{min, min - 1, 0},     // end-1 belongs to the window
		{min, min, min},       // end starts the next one
		{min, min + 1, min},   //
		{min, 2*min - 1, min}, //
		{min, -1, -min},       // before the epoch: round down, not toward 0
		{min, -min + 1, -min}, //
		{min, -min, -min},     // start belongs to the window
		{min, -min - 1, -2 * min},
		{min, 1772366400000, 1772366400000},        // 2026-03-01T12:00:00Z
		{min, 1772366459999, 1772366400000},        // 12:00:59.999
		{min, 1772366460000, 1772366460000},        // 12:01:00
		{1, 12345, 12345},                          // 1 ms windows
		{1, -7, -7},                                //
		{3_600_000, 1772368199999, 1772366400000},  // hour window, 12:29:59.999
		{86_400_000, 1772366400000, 1772323200000}, // day window starts at 00:00Z
		{7, -7, -7},                                //
		{7, -8, -14},                               //
		{7, 6, 0},                                  //
	}
	for _, tt := range tests {
		if got := (Tumbling{Size: tt.size}).Start(tt.ts); got != tt.want {
			t.Errorf("Tumbling{%d}.Start(%d) = %d, want %d", tt.size, tt.ts, got, tt.want)
		}
	}
	// Every time lies in [Start, Start+Size) and Start is aligned.
	for _, size := range []int64{1, 7, 1000, min, 3_600_000} {
		w := Tumbling{Size: size}
		for _, ts := range []int64{-3*size - 1, -size - 1, -size, -1, 0, 1, size - 1, size, 5*size + 3, 1772366400000, 1e15} {
			s := w.Start(ts)
			if s > ts || ts >= s+size || s%size != 0 {
				t.Errorf("Tumbling{%d}.Start(%d) = %d: not the aligned window holding ts", size, ts, s)
			}
		}
	}
}

func TestWatermarks(t *testing.T) {
	type obs struct {
		p       int32
		ts, now int64
		touch   bool
	}
	tests := []struct {
		name string
		obs  []obs
		now  int64
		want int64
	}{
		{"no partition: no watermark", nil, 0, NoWatermark},
		{"max event time minus disorder", []obs{{0, 10_000, 0, false}, {0, 20_000, 0, false}, {0, 15_000, 0, false}}, 0, 19_000},
		{"an older event does not lower it", []obs{{0, 20_000, 0, false}, {0, 1, 0, false}}, 0, 19_000},
		{"minimum over partitions", []obs{{0, 50_000, 0, false}, {1, 20_000, 0, false}, {2, 30_000, 0, false}}, 0, 19_000},
		{"a partition idle for less than the timeout holds it", []obs{{0, 50_000, 100, false}, {1, 20_000, 0, false}}, 29_999, 19_000},
		{"a partition idle for the timeout is skipped", []obs{{0, 50_000, 100, false}, {1, 20_000, 0, false}}, 30_000, 49_000},
		{"Touch keeps a partition active", []obs{{0, 50_000, 100, false}, {1, 20_000, 0, false}, {1, 0, 20_000, true}}, 49_999, 19_000},
		{"Touch of an unknown partition does nothing", []obs{{0, 50_000, 0, false}, {3, 0, 0, true}}, 0, 49_000},
		{"all idle: the maximum", []obs{{0, 50_000, 0, false}, {1, 20_000, 0, false}, {2, 90_000, 10, false}}, 30_010, 89_000},
		{"negative event times", []obs{{0, -120_000, 0, false}, {1, -60_000, 0, false}}, 0, -121_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := Watermarks{Disorder: 1000, IdleTimeout: 30_000}
			for _, o := range tt.obs {
				if o.touch {
					w.Touch(o.p, o.now)
				} else {
					w.Observe(o.p, o.ts, o.now)
				}
			}
			if got := w.Current(tt.now); got != tt.want {
				t.Errorf("Current(%d) = %d, want %d", tt.now, got, tt.want)
			}
		})
	}
}

func TestWatermarksRestore(t *testing.T) {
	w := Watermarks{Disorder: 1000, IdleTimeout: 30_000}
	w.Observe(0, 50_000, 0)
	w.Observe(1, 20_000, 0)
	saved := w.PartitionMax()
	if len(saved) != 2 || saved[0] != 50_000 || saved[1] != 20_000 {
		t.Fatalf("PartitionMax = %v", saved)
	}
	var r Watermarks
	r.Disorder, r.IdleTimeout = 1000, 30_000
	r.Restore(saved, 1_000_000)
	// Restored partitions count as seen at the restore time.
	if got := r.Current(1_000_000 + 29_999); got != 19_000 {
		t.Errorf("after restore Current = %d, want 19000", got)
	}
	if got := r.Current(1_000_000 + 30_000); got != 49_000 {
		t.Errorf("after restore, all idle: Current = %d, want 49000", got)
	}
}

func TestAgg(t *testing.T) {
	var a Agg
	if a.Avg() != 0 {
		t.Errorf("empty Avg = %v", a.Avg())
	}
	for _, v := range []float64{3, -1.5, 10, 0} {
		a.Add(v)
	}
	if want := (Agg{Count: 4, Sum: 11.5, Min: -1.5, Max: 10}); a != want || a.Avg() != 2.875 {
		t.Errorf("Agg = %+v avg %v, want %+v avg 2.875", a, a.Avg(), want)
	}
	// The first value sets min and max even when it is above 0 or below.
	var pos, neg Agg
	pos.Add(5)
	neg.Add(-5)
	if pos.Min != 5 || pos.Max != 5 || neg.Min != -5 || neg.Max != -5 {
		t.Errorf("single values: %+v %+v", pos, neg)
	}
	tests := []struct {
		name string
		a, b []float64
	}{
		{"both empty", nil, nil},
		{"empty into full", []float64{1, 2}, nil},
		{"full into empty", nil, []float64{-4, 7}},
		{"overlapping", []float64{1, 9}, []float64{-2, 5, 12}},
	}
	for _, tt := range tests {
		var x, y, all Agg
		for _, v := range tt.a {
			x.Add(v)
			all.Add(v)
		}
		for _, v := range tt.b {
			y.Add(v)
			all.Add(v)
		}
		x.Merge(y)
		if x != all {
			t.Errorf("%s: Merge = %+v, adding all = %+v", tt.name, x, all)
		}
	}
}

func TestWindowState(t *testing.T) {
	var w WindowState
	r := func(vals map[event.Metric]float64) *event.Reading {
		var r event.Reading
		for m, v := range vals {
			r.Set(m, v)
		}
		return &r
	}
	w.Add(r(map[event.Metric]float64{event.SpeedKmh: 10, event.VehicleCount: 4}))
	w.Add(r(map[event.Metric]float64{event.SpeedKmh: 20}))
	w.Add(r(map[event.Metric]float64{event.PM25: 12.5}))
	if w.Count != 3 {
		t.Errorf("Count = %d, want 3", w.Count)
	}
	wantHas := uint16(1<<event.SpeedKmh | 1<<event.VehicleCount | 1<<event.PM25)
	if w.Has != wantHas {
		t.Errorf("Has = %b, want %b", w.Has, wantHas)
	}
	want := map[event.Metric]Agg{
		event.SpeedKmh:     {Count: 2, Sum: 30, Min: 10, Max: 20},
		event.VehicleCount: {Count: 1, Sum: 4, Min: 4, Max: 4},
		event.PM25:         {Count: 1, Sum: 12.5, Min: 12.5, Max: 12.5},
	}
	for m := event.Metric(0); m < event.NumMetrics; m++ {
		if w.Metrics[m] != want[m] {
			t.Errorf("%s: %+v, want %+v", m, w.Metrics[m], want[m])
		}
	}
	got := string(AppendAggsJSON(nil, &w))
	wantJSON := `{"count":3,` +
		`"speed_kmh_count":2,"speed_kmh_avg":15,"speed_kmh_min":10,"speed_kmh_max":20,` +
		`"vehicle_count_count":1,"vehicle_count_avg":4,"vehicle_count_min":4,"vehicle_count_max":4,` +
		`"pm25_count":1,"pm25_avg":12.5,"pm25_min":12.5,"pm25_max":12.5}`
	if got != wantJSON {
		t.Errorf("AppendAggsJSON =\n%s\nwant\n%s", got, wantJSON)
	}
	if !json.Valid([]byte(got)) {
		t.Error("AppendAggsJSON is not valid JSON")
	}
	if got := string(AppendAggsJSON(nil, &WindowState{})); got != `{"count":0}` {
		t.Errorf("empty state: %s", got)
	}
}

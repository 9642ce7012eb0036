package loadgen

import (
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/event"
)

func TestAppendField(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0.0"}, {-0.04, "0.0"}, {-0.05, "-0.1"}, {12.34, "12.3"}, {12.35, "12.4"},
		{99.96, "100.0"}, {-90, "-90.0"}, {300, "300.0"}, {0.95, "1.0"}, {1e6, "1000000.0"},
	} {
		if got := string(appendField(nil, `,"x":`, tc.v)); got != `,"x":`+tc.want {
			t.Errorf("appendField(%v) = %s, want %s", tc.v, got, tc.want)
		}
	}
}

func TestCityRain(t *testing.T) {
	// Over 60 days it rains now and then, not always, and rain is humid.
	c := NewCity(5, 60, 20)
	c.AnomalyRate = 0
	var wetHours, hours int
	var wetRH, dryRH float64
	var wetN, dryN int
	for h := range 60 * 24 {
		now := weekday.Add(time.Duration(h) * time.Hour)
		wet := false
		for _, r := range readings(t, c, 60, now) {
			if r.Kind != event.KindWeather {
				continue
			}
			if r.Values[event.RainMm] > 0 {
				wet = true
				wetRH += r.Values[event.Humidity]
				wetN++
			} else {
				dryRH += r.Values[event.Humidity]
				dryN++
			}
		}
		hours++
		if wet {
			wetHours++
		}
	}
	share := float64(wetHours) / float64(hours)
	if share < 0.03 || share > 0.3 {
		t.Fatalf("rain in %.1f%% of hours, want occasional rain", 100*share)
	}
	if wetRH/float64(wetN) <= dryRH/float64(dryN) {
		t.Fatalf("humidity when raining %.1f, dry %.1f: rain should be humid", wetRH/float64(wetN), dryRH/float64(dryN))
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	var s snapshot
	h.snapshot(&s)
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := s.quantile(tc.q)
		if d := float64(got-tc.want) / float64(tc.want); d < -0.04 || d > 0.04 {
			t.Errorf("q%v = %v, want about %v", tc.q, got, tc.want)
		}
	}
	var empty snapshot
	if q := empty.quantile(0.5); q != 0 {
		t.Errorf("quantile of nothing = %v", q)
	}
	h.record(5 * time.Second)
	var s2 snapshot
	h.snapshot(&s2)
	if win := s2.since(&s); win.quantile(0.5) < 4*time.Second {
		t.Errorf("window quantile %v, want about 5s", win.quantile(0.5))
	}
	for v := uint64(1); v < 1<<62; v = v*3 + 1 {
		if b := bucketOf(v); b >= numBuckets || bucketMid(b) > v*2 || bucketMid(b)*2 < v {
			t.Fatalf("value %d: bucket %d mid %d", v, b, bucketMid(b))
		}
	}
}

package sink

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// retentionPlan is a pipeline whose sensor_1m output keeps its results
// keep long and whose zone_1m output keeps them forever.
func retentionPlan(keep time.Duration) *pipeline.Plan {
	return &pipeline.Plan{Name: "city", Outputs: []pipeline.Output{
		{Name: "sensor_1m", GroupBy: []string{"sensor_id"}, Sinks: []string{"sqlite"}, Retention: keep},
		{Name: "zone_1m", GroupBy: []string{"zone"}, Sinks: []string{"sqlite"}},
	}}
}

// TestRetentionDeletesExpired stores 25 minutes of one sensor's and one
// zone's results and runs a round 30 minutes after the first with a
// retention of 20 minutes and batches of 3 rows: the sensor's 10 oldest
// minutes go, in 4 deletes, the rest and the zone's (no retention) stay.
func TestRetentionDeletesExpired(t *testing.T) { eachStore(t, testRetentionDeletesExpired) }

func testRetentionDeletesExpired(t *testing.T, s testStore) {
	var rs []stream.Result
	for i := range int64(25) {
		rs = append(rs, result("sensor_1m", "S-1", t0+i*minute, 10), result("zone_1m", "Z-1", t0+i*minute, 10))
	}
	commit(t, s, "city", rs...)
	m := telemetry.New()
	r := NewRetention(RetentionConfig{Store: s, Plans: []*pipeline.Plan{retentionPlan(20 * time.Minute)}, Metrics: m, Batch: 3, Pause: time.Millisecond,
		Now: func() time.Time { return time.UnixMilli(t0 + 30*minute) }})
	if r.Empty() {
		t.Fatal("Empty with an output that has a retention")
	}
	if n := r.Round(context.Background()); n != 10 {
		t.Fatalf("round deleted %d rows, want 10 (the minutes before %s)", n, time.UnixMilli(t0+10*minute).UTC())
	}
	got := query(t, s, Query{Pipeline: "city", Outputs: outs("sensor_1m")})
	if len(got) != 15 || got[0].Start != t0+10*minute {
		t.Fatalf("sensor_1m holds %d rows from %d; want 15 from the 10th minute", len(got), got[0].Start)
	}
	if got := query(t, s, Query{Pipeline: "city", Outputs: outs("zone_1m")}); len(got) != 25 {
		t.Fatalf("zone_1m (no retention) holds %d rows, want 25", len(got))
	}
	if v := testutil.ToFloat64(m.SinkExpired.WithLabelValues("city", "sensor_1m")); v != 10 {
		t.Errorf("pulse_sink_expired_rows_total = %v, want 10", v)
	}
	if n := r.Round(context.Background()); n != 0 {
		t.Errorf("a second round at the same time deleted %d rows, want 0", n)
	}
}

// failingStore refuses every delete.
type failingStore struct{ calls int }

func (f *failingStore) DeleteBefore(context.Context, string, *stream.Schema, int64, int) (int, error) {
	f.calls++
	return 0, errors.New("database is locked")
}

// TestRetentionStoreError counts a failed round in a metric and tries
// again at the next round.
func TestRetentionStoreError(t *testing.T) {
	f := &failingStore{}
	m := telemetry.New()
	r := NewRetention(RetentionConfig{Store: f, Plans: []*pipeline.Plan{retentionPlan(time.Hour)}, Metrics: m})
	r.Round(context.Background())
	r.Round(context.Background())
	if f.calls != 2 {
		t.Errorf("store asked %d times in 2 rounds, want 2", f.calls)
	}
	if v := testutil.ToFloat64(m.SinkRetentionErr.WithLabelValues("city", "sensor_1m")); v != 2 {
		t.Errorf("pulse_sink_retention_errors_total = %v, want 2", v)
	}
}

// TestRetentionNone has nothing to do without a retention: Run returns
// when its context ends.
func TestRetentionNone(t *testing.T) {
	r := NewRetention(RetentionConfig{Store: &failingStore{}, Plans: []*pipeline.Plan{retentionPlan(0)}, Metrics: telemetry.New()})
	if !r.Empty() {
		t.Fatal("not Empty without a retention")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

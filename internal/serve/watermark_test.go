package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

type wmPartition struct {
	Topic      string  `json:"topic"`
	Partition  int32   `json:"partition"`
	EventTime  *string `json:"event_time"`
	AdvancedTo *string `json:"advanced_to"`
	Idle       bool    `json:"idle"`
	Backlog    bool    `json:"backlog"`
	Unread     int64   `json:"unread"`
	Holding    bool    `json:"holding"`
}

type wmResponse struct {
	Pipeline   string        `json:"pipeline"`
	Watermark  *string       `json:"watermark"`
	AllIdle    bool          `json:"all_idle"`
	HeldBy     []string      `json:"held_by"`
	Reason     string        `json:"reason"`
	Partitions []wmPartition `json:"partitions"`
}

func getWatermark(t *testing.T, url string) wmResponse {
	t.Helper()
	code, body := get(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	var w wmResponse
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
	return w
}

func ms(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

// TestWatermarkAPI: the watermark endpoint and the results response name
// the partition that holds the watermark, and say when every partition
// is idle.
func TestWatermarkAPI(t *testing.T) {
	base, _, board := startAPI(t)
	now := time.Now().UnixMilli()
	board.SetSources("city", 0, []stream.SourceWatermark{
		{Topic: "city", Partition: 0, EventTime: ms("2026-03-01T12:03:05Z"), Seen: true, Unread: 0, LastRead: now},
		{Topic: "city", Partition: 1, EventTime: ms("2026-03-01T12:01:00Z"), Seen: true, Backlog: true, Unread: 12, LastRead: now - 40_000},
	}, now)
	w := getWatermark(t, base+"/v1/pipelines/city/watermark")
	if w.Watermark == nil || *w.Watermark != "2026-03-01T12:00:55.000Z" {
		t.Errorf("watermark %v, want 12:01:00 minus 5 s", w.Watermark)
	}
	if len(w.HeldBy) != 1 || w.HeldBy[0] != "city:1" || !strings.Contains(w.Reason, "held by city:1") {
		t.Errorf("held by %v (%q), want city:1", w.HeldBy, w.Reason)
	}
	if len(w.Partitions) != 2 || w.Partitions[0].Holding || !w.Partitions[1].Holding || !w.Partitions[1].Backlog || w.Partitions[1].Unread != 12 {
		t.Errorf("partitions %+v", w.Partitions)
	}
	// The results response carries the same object.
	code, body := get(t, base+"/v1/pipelines/city/results?output=zone_1m")
	var res struct {
		Watermark wmResponse `json:"watermark"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil {
		t.Fatalf("results: %d %s", code, body)
	}
	if res.Watermark.Watermark == nil || *res.Watermark.Watermark != "2026-03-01T12:00:55.000Z" || len(res.Watermark.HeldBy) != 1 {
		t.Errorf("results watermark %+v", res.Watermark)
	}

	board.SetSources("city", 0, []stream.SourceWatermark{
		{Topic: "city", Partition: 0, EventTime: ms("2026-03-01T12:03:05Z"), Seen: true, Idle: true, Advanced: ms("2026-03-01T12:03:35Z")},
		{Topic: "city", Partition: 1, EventTime: ms("2026-03-01T12:01:00Z"), Seen: true, Idle: true, Advanced: ms("2026-03-01T12:01:30Z")},
	}, now)
	w = getWatermark(t, base+"/v1/pipelines/city/watermark")
	if !w.AllIdle || w.Watermark == nil || *w.Watermark != "2026-03-01T12:03:30.000Z" || len(w.HeldBy) != 0 {
		t.Errorf("all idle: %+v, want the maximum advanced time 12:03:35 minus 5 s, held by none", w)
	}
	if w.Partitions[0].AdvancedTo == nil || !strings.Contains(w.Reason, "advances with the clock") {
		t.Errorf("all idle: %+v", w)
	}
	if code, body := get(t, base+"/v1/pipelines/nope/watermark"); code != http.StatusNotFound || !strings.Contains(body, "GET /v1/pipelines") {
		t.Errorf("unknown pipeline: %d %s", code, body)
	}
}

// TestWatermarkAPIFromShuffle runs the shuffle stage of a pipeline
// against an in-process broker, with the real server reading its board:
// the endpoint shows the partition's event time as the stage reads it,
// holding the watermark, and then idle and advancing with the clock.
func TestWatermarkAPIFromShuffle(t *testing.T) {
	plan, err := pipeline.Parse("errs.yaml", []byte(`name: errs
source: {topic: logs, key: service, time: {field: ts}}
event_time: {max_out_of_orderness: 0s, idle_timeout: 2s}
outputs:
  - name: errors_1m
    group_by: [service]
    window: {tumbling: 1m}
    aggregates:
      count: count()
`))
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	repart, changelog := stream.InternalTopics(plan)
	topics := append([]string{"logs", pipeline.DLQTopic("logs"), pipeline.LateTopic("errs"), plan.Outputs[0].Topic}, append(repart, changelog...)...)
	if err := bus.EnsureTopics(ctx, cl, 1, topics...); err != nil {
		t.Fatal(err)
	}
	base, _, board := startAPIWith(t, plan)
	sh := stream.NewShuffler(stream.StageConfig{Plan: plan, Board: board, CommitEvery: 50 * time.Millisecond,
		Cluster: stream.Cluster{Opts: opts, Node: "test", SessionTimeout: 6 * time.Second}})
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := sh.Run(runCtx); err != nil {
			t.Errorf("shuffle: %v", err)
		}
	})
	defer func() { stop(); wg.Wait() }()

	ts := time.Now().Add(-time.Minute).Truncate(time.Second).UTC()
	rec := &kgo.Record{Topic: "logs", Value: fmt.Appendf(nil, `{"service":"api","ts":%q}`, ts.Format(time.RFC3339))}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	url := base + "/v1/pipelines/errs/watermark"
	want := ts.Format("2006-01-02T15:04:05.000Z")
	checkfor.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		w := getWatermark(t, url)
		if len(w.Partitions) != 1 || w.Partitions[0].EventTime == nil || *w.Partitions[0].EventTime != want {
			return fmt.Errorf("partitions %+v, want logs:0 at %s", w.Partitions, want)
		}
		if w.AllIdle || len(w.HeldBy) != 1 || w.HeldBy[0] != "logs:0" || w.Watermark == nil || *w.Watermark != want {
			return fmt.Errorf("watermark %v held by %v (all idle %v), want %s held by logs:0", w.Watermark, w.HeldBy, w.AllIdle, want)
		}
		return nil
	})
	// Nothing more arrives: after idle_timeout it is idle and its event
	// time advances with the clock.
	checkfor.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		w := getWatermark(t, url)
		if !w.AllIdle || len(w.Partitions) != 1 || !w.Partitions[0].Idle || w.Partitions[0].AdvancedTo == nil {
			return fmt.Errorf("%+v, want logs:0 idle and advanced", w)
		}
		if w.Watermark == nil || *w.Watermark <= want {
			return fmt.Errorf("watermark %v, want past %s", w.Watermark, want)
		}
		return nil
	})
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// TestHTTPLimitFlagsChecked: limits that cannot work stop pulse run
// before it starts anything, with the flag to fix.
func TestHTTPLimitFlagsChecked(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--http-write-timeout", "5s"}, "must exceed --produce-timeout"},
		{[]string{"--http-max-conns", "0"}, "--http-max-conns 0"},
		{[]string{"--live-max-clients", "0"}, "--live-max-clients 0"},
		{[]string{"--http-body-timeout", "0s"}, "--http-body-timeout"},
		{[]string{"--http-min-body-rate", "-1"}, "--http-min-body-rate -1"},
	} {
		err := runCmd(context.Background(), append([]string{"--data-dir", t.TempDir()}, c.args...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("pulse run %v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}

// TestProducerBuffer checks that the ingest producer's buffer follows the
// in-flight limit, and keeps franz-go's former bound without one.
func TestProducerBuffer(t *testing.T) {
	for _, tc := range []struct {
		limit          int64
		bytes, records int
	}{
		{0, 512 << 20, 1 << 20},
		{128 << 20, 256 << 20, 4 << 20},
		{1 << 20, 2 << 20, 1 << 16},
	} {
		cl, err := kgo.NewClient(append(producerBuffer(tc.limit), kgo.SeedBrokers("127.0.0.1:1"))...)
		if err != nil {
			t.Fatal(err)
		}
		gotBytes := cl.OptValue(kgo.MaxBufferedBytes)
		gotRecords := cl.OptValue(kgo.MaxBufferedRecords)
		cl.Close()
		if fmt.Sprint(gotBytes) != fmt.Sprint(tc.bytes) || fmt.Sprint(gotRecords) != fmt.Sprint(tc.records) {
			t.Errorf("limit %d: buffer of %v bytes and %v records, want %d and %d", tc.limit, gotBytes, gotRecords, tc.bytes, tc.records)
		}
	}
}

func TestMaxConsumerLag(t *testing.T) {
	m := telemetry.New()
	plans := []*pipeline.Plan{{Name: "a"}, {Name: "b"}}
	lag := maxConsumerLag(m, plans)
	if got := lag(); got != 0 {
		t.Fatalf("lag before any measurement = %d, want 0", got)
	}
	m.ConsumerLag.WithLabelValues("a").Set(120)
	m.ConsumerLag.WithLabelValues("b").Set(4500)
	if got := lag(); got != 4500 {
		t.Fatalf("lag = %d, want the largest, 4500", got)
	}
}

// TestLoadPlansBuiltin: --builtin=false runs only the pipelines of
// --pipelines, and refuses to run none.
func TestLoadPlansBuiltin(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mine.yaml"), []byte(`name: mine
source: {topic: logs, key: service, time: {field: ts}}
outputs:
  - name: per_minute
    group_by: [service]
    window: {tumbling: 1m}
    aggregates: {n: count()}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	names := func(withBuiltin bool) []string {
		plans, err := loadPlans(dir, withBuiltin)
		if err != nil {
			t.Fatalf("loadPlans(builtin %v): %v", withBuiltin, err)
		}
		var out []string
		for _, p := range plans {
			out = append(out, p.Name)
		}
		return out
	}
	if got := names(true); !slices.Contains(got, "city") || !slices.Contains(got, "mine") {
		t.Errorf("with the built-ins: %v, want city and mine", got)
	}
	if got := names(false); !slices.Equal(got, []string{"mine"}) {
		t.Errorf("--builtin=false: %v, want only mine", got)
	}
	// Refused before anything starts (no broker, no data dir).
	dd := filepath.Join(t.TempDir(), "data")
	err := runCmd(context.Background(), []string{"--builtin=false", "--data-dir", dd})
	if err == nil || !strings.Contains(err.Error(), "--pipelines") {
		t.Errorf("--builtin=false without --pipelines: %v, want an error naming --pipelines", err)
	}
	if _, serr := os.Stat(dd); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("the refused run created its data dir (%v)", serr)
	}
}

package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/internal/telemetry"
)

// TestArchiveFlags: the archive flags choose the store, and values that
// cannot work are refused with the flag to fix.
func TestArchiveFlags(t *testing.T) {
	plans, err := loadPlans("", true)
	if err != nil {
		t.Fatal(err)
	}
	after := func(run func(context.Context) error) func(context.Context) error { return run }
	for _, c := range []struct {
		args  []string
		comps int
		err   string
	}{
		{nil, 1, ""},
		{[]string{"--archive", "off"}, 0, ""},
		{[]string{"--archive", "s3://bucket/prefix"}, 1, ""},
		{[]string{"--archive", "/var/archive"}, 0, "use local, s3://bucket/prefix or off"},
		{[]string{"--archive", "s3://"}, 0, "use s3://bucket/prefix"},
		{[]string{"--archive-compression", "lz4"}, 0, "use zstd or snappy"},
		{[]string{"--archive-roll-rows", "0"}, 0, "--archive-roll-rows 0"},
		{[]string{"--archive-workers", "0"}, 0, "--archive-workers 0"},
	} {
		var f runFlags
		dir := t.TempDir()
		if err := runFlagSet(&f).Parse(append([]string{"--data-dir", dir}, c.args...)); err != nil {
			t.Fatal(err)
		}
		comps, hist, err := archiveComponent(f, plans, nil, telemetry.New(), slog.New(slog.DiscardHandler), nil, after)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%v: %v, want an error saying %q", c.args, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%v: %v", c.args, err)
		case len(comps) != c.comps:
			t.Errorf("%v: %d components, want %d", c.args, len(comps), c.comps)
		case (hist != nil) != (c.comps > 0):
			t.Errorf("%v: history %v with %d archive components", c.args, hist, c.comps)
		}
		if len(c.args) == 0 {
			if _, err := os.Stat(filepath.Join(dir, "archive", ".spool")); err != nil {
				t.Errorf("default archive: %v, want the folder under --data-dir", err)
			}
		}
	}
}

package diskguard

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pulsehq/pulse/internal/checkfor"
)

func TestParseReserve(t *testing.T) {
	for _, tc := range []struct {
		in   string
		size uint64
		want uint64
		bad  bool
	}{
		{in: "512MiB", size: 1 << 40, want: 512 << 20},
		{in: "2GB", size: 1 << 40, want: 2e9},
		{in: "5%", size: 1000 << 20, want: 50 << 20},
		{in: "1GiB,10%", size: 64 << 20, want: 64 << 20 / 10},
		{in: "1GiB,10%", size: 1 << 40, want: 1 << 30},
		{in: "0", size: 1 << 30, want: 0},
		{in: "100%", bad: true},
		{in: "-5%", bad: true},
		{in: "lots", bad: true},
	} {
		r, err := ParseReserve(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseReserve(%q) accepted it as %v", tc.in, r)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseReserve(%q): %v", tc.in, err)
			continue
		}
		if got := r.Bytes(tc.size); got != tc.want {
			t.Errorf("ParseReserve(%q).Bytes(%d) = %d, want %d", tc.in, tc.size, got, tc.want)
		}
		again, err := ParseReserve(r.String())
		if err != nil || again.Bytes(tc.size) != tc.want {
			t.Errorf("ParseReserve(%q).String() = %q does not parse back to the same reserve", tc.in, r.String())
		}
	}
}

// fakeDisk is a file system whose free space the test sets.
type fakeDisk struct{ free atomic.Uint64 }

func (d *fakeDisk) statfs(string) (uint64, uint64, error) { return d.free.Load(), 1 << 30, nil }

func TestGuardTripsAndResumes(t *testing.T) {
	d := &fakeDisk{}
	d.free.Store(500 << 20)
	reg := prometheus.NewRegistry()
	g, err := New(Config{Path: "/data", Reserve: Reserve{Fixed: 100 << 20}, Every: time.Millisecond, Registerer: reg, statfs: d.statfs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go g.Run(ctx)
	if g.Low() || g.Check() != nil {
		t.Fatal("500 MiB free over a 100 MiB reserve is not low")
	}

	d.free.Store(50 << 20)
	checkfor.CheckFor(t, 5*time.Second, time.Millisecond, func() error {
		if !g.Low() {
			return errNotYet("low")
		}
		return nil
	})
	err = g.Check()
	if err == nil || !strings.Contains(err.Error(), "/data") || !strings.Contains(err.Error(), "--disk-reserve") {
		t.Fatalf("Check on a low disk = %v, want the path and the flag named", err)
	}
	if v := testutil.ToFloat64(g.lowG); v != 1 {
		t.Fatalf("pulse_disk_low = %v, want 1", v)
	}

	// Above the reserve but within the margin: still low, so that a
	// disk hovering at the reserve does not flap.
	d.free.Store(110 << 20)
	for range 3 {
		if err := g.measure(); err != nil {
			t.Fatal(err)
		}
	}
	if !g.Low() {
		t.Fatal("110 MiB free is within the 25 % margin over a 100 MiB reserve: still low")
	}

	d.free.Store(300 << 20)
	checkfor.CheckFor(t, 5*time.Second, time.Millisecond, func() error {
		if g.Low() {
			return errNotYet("room again")
		}
		return nil
	})
	if g.Low() || g.Check() != nil {
		t.Fatal("300 MiB free is not low")
	}
	if v := testutil.ToFloat64(g.trips); v != 1 {
		t.Fatalf("pulse_disk_low_total = %v, want 1", v)
	}
}

func TestGuardLowAtStart(t *testing.T) {
	d := &fakeDisk{}
	d.free.Store(1 << 20)
	g, err := New(Config{Path: "/data", Reserve: Reserve{Fixed: 100 << 20}, statfs: d.statfs})
	if err != nil {
		t.Fatal(err)
	}
	if !g.Low() || g.Check() == nil {
		t.Fatal("a disk already low at start must be low before Run measures")
	}
}

func TestRealFileSystem(t *testing.T) {
	g, err := New(Config{Path: t.TempDir(), Reserve: Reserve{Fixed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if g.Low() {
		t.Fatal("a test's temp dir has more than 1 byte free")
	}
}

type errNotYet string

func (e errNotYet) Error() string { return "not yet " + string(e) }

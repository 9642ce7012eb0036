package diskguard

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// Config configures a Guard.
type Config struct {
	// Path is a directory on the watched file system (the data dir).
	Path string
	// Reserve is the free space below which the disk is low, as bytes
	// ("1GiB") or a share of the file system ("5%"); see ParseReserve.
	Reserve Reserve
	// Every is how often free space is measured (default 100 ms).
	Every time.Duration
	// Registerer takes the guard's metrics; nil registers none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// statfs measures the file system; tests replace it.
	statfs func(path string) (free, size uint64, err error)
}

// Guard reports whether the disk under Path is low on space.
type Guard struct {
	cfg     Config
	low     atomic.Bool
	mu      sync.Mutex
	reason  string // why the disk is low, or the last measuring error
	free    prometheus.Gauge
	reserve prometheus.Gauge
	lowG    prometheus.Gauge
	trips   prometheus.Counter
}

// New returns a Guard; Run measures. It measures once before returning, so
// that a disk already low at start is refused from the first request.
func New(cfg Config) (*Guard, error) {
	if cfg.Every <= 0 {
		cfg.Every = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.statfs == nil {
		cfg.statfs = statfs
	}
	g := &Guard{cfg: cfg,
		free: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pulse_disk_free_bytes",
			Help: "Free space of the data directory's file system."}),
		reserve: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pulse_disk_reserve_bytes",
			Help: "Free space below which Pulse refuses ingest and pauses the pipelines (--disk-reserve)."}),
		lowG: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pulse_disk_low",
			Help: "1 while the data directory's free space is below the reserve."}),
		trips: prometheus.NewCounter(prometheus.CounterOpts{Name: "pulse_disk_low_total",
			Help: "Times the data directory's free space fell below the reserve."}),
	}
	if r := cfg.Registerer; r != nil {
		for _, c := range []prometheus.Collector{g.free, g.reserve, g.lowG, g.trips} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("register disk guard metrics: %w", err)
			}
		}
	}
	if err := g.measure(); err != nil {
		return nil, fmt.Errorf("measure free space of %s: %w", cfg.Path, err)
	}
	return g, nil
}

// Run measures free space every Config.Every until ctx ends.
func (g *Guard) Run(ctx context.Context) error {
	t := time.NewTicker(g.cfg.Every)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := g.measure(); err != nil && err.Error() != lastErr {
			// Keep the last verdict: a file system that cannot be
			// measured for a moment is not full.
			lastErr = err.Error()
			g.cfg.Logger.Warn("cannot measure free disk space", "path", g.cfg.Path, "err", err)
		} else if err == nil {
			lastErr = ""
		}
	}
}

// measure takes one reading and updates the verdict, with hysteresis: low
// below the reserve, not low again from the reserve plus a quarter.
func (g *Guard) measure() error {
	free, size, err := g.cfg.statfs(g.cfg.Path)
	if err != nil {
		return err
	}
	reserve := g.cfg.Reserve.Bytes(size)
	g.free.Set(float64(free))
	g.reserve.Set(float64(reserve))
	wasLow := g.low.Load()
	low := free < reserve || (wasLow && free < reserve+reserve/4)
	if low == wasLow {
		if low {
			g.setReason(free, reserve)
		}
		return nil
	}
	if low {
		g.setReason(free, reserve)
		g.trips.Inc()
		g.lowG.Set(1)
		g.cfg.Logger.Error("disk space low: refusing ingest and pausing pipelines until space returns",
			"path", g.cfg.Path, "free", humanize.IBytes(free), "reserve", humanize.IBytes(reserve))
	} else {
		g.lowG.Set(0)
		g.cfg.Logger.Info("disk space back above the reserve: resuming ingest and pipelines",
			"path", g.cfg.Path, "free", humanize.IBytes(free), "reserve", humanize.IBytes(reserve))
	}
	g.low.Store(low)
	return nil
}

func (g *Guard) setReason(free, reserve uint64) {
	r := fmt.Sprintf("disk full: only %s free on %s, below the reserve of %s; free space there (or lower --disk-reserve) and Pulse resumes by itself",
		humanize.IBytes(free), g.cfg.Path, humanize.IBytes(reserve))
	g.mu.Lock()
	g.reason = r
	g.mu.Unlock()
}

// Low reports whether free space is below the reserve. It is cheap: the
// hot paths call it.
func (g *Guard) Low() bool { return g != nil && g.low.Load() }

// Check returns nil while the disk has room, and why not otherwise; it
// is the guard's readiness check.
func (g *Guard) Check() error {
	if !g.Low() {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return fmt.Errorf("%s", g.reason)
}

// Reserve is an amount of free space: fixed bytes, or a share of the file
// system, whichever is set, capped by Max when both are.
type Reserve struct {
	Fixed   uint64  // fixed bytes; 0: unset
	Percent float64 // share of the file system size, 0–100; 0: unset
}

// Bytes returns the reserve on a file system of size bytes.
func (r Reserve) Bytes(size uint64) uint64 {
	switch {
	case r.Fixed > 0 && r.Percent > 0:
		return min(r.Fixed, uint64(float64(size)*r.Percent/100))
	case r.Percent > 0:
		return uint64(float64(size) * r.Percent / 100)
	}
	return r.Fixed
}

// String formats r as ParseReserve reads it.
func (r Reserve) String() string {
	var parts []string
	if r.Fixed > 0 {
		b := humanize.IBytes(r.Fixed)
		if v, err := humanize.ParseBytes(b); err != nil || v != r.Fixed {
			b = strconv.FormatUint(r.Fixed, 10) // not a round number of KiB, MiB, …
		}
		parts = append(parts, b)
	}
	if r.Percent > 0 {
		parts = append(parts, fmt.Sprintf("%g%%", r.Percent))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ",")
}

// DefaultReserve is 1 GiB, or 10 % of a smaller file system.
var DefaultReserve = Reserve{Fixed: 1 << 30, Percent: 10}

// ParseReserve reads "512MiB", "2GB", "5%", or both comma separated
// ("1GiB,10%": the smaller of the two); "0" disables the guard.
func ParseReserve(s string) (Reserve, error) {
	var r Reserve
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if p, ok := strings.CutSuffix(part, "%"); ok {
			var v float64
			if _, err := fmt.Sscanf(p, "%g", &v); err != nil || v < 0 || v >= 100 || math.IsNaN(v) {
				return Reserve{}, fmt.Errorf("disk reserve %q: a share is a number from 0 to 100 followed by %%, such as 5%%", part)
			}
			r.Percent = v
			continue
		}
		b, err := humanize.ParseBytes(part)
		if err != nil {
			return Reserve{}, fmt.Errorf("disk reserve %q: give bytes such as 512MiB or 2GB, or a share such as 5%%", part)
		}
		r.Fixed = b
	}
	return r, nil
}

func statfs(path string) (free, size uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	// Bavail: what an unprivileged writer may still use; the blocks kept
	// for root are no room to count on.
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

// Set parses s into r, so that a Reserve is a flag.Value.
func (r *Reserve) Set(s string) error {
	v, err := ParseReserve(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

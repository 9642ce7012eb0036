package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a load generation run of the city scenario.
type Config struct {
	// Target is the base URL of a Pulse HTTP server; readings are POSTed
	// to {Target}/v1/streams/{Stream}/events. Set Target or Brokers.
	Target string
	// Brokers are Kafka seed brokers; readings are produced to topic Stream.
	Brokers []string
	// Stream is the stream or topic name; default "city".
	Stream string
	// Rate is the total readings per second; 0 or less sends unpaced.
	Rate float64
	// Sensors and Zones size the simulated city (defaults 1000 and 20).
	Sensors, Zones int
	// Duration ends the run; 0 runs until ctx ends.
	Duration time.Duration
	// Seed makes the readings reproducible.
	Seed int64
	// BatchSize is readings per request (or per Kafka batch); default
	// Rate/50, at least 1 and at most 5000.
	BatchSize int
	// Concurrency is the number of requests in flight; default 4.
	Concurrency int
	// AnomalyRate is the share of readings with an injected anomaly;
	// 0 means DefaultAnomalyRate, negative means none.
	AnomalyRate float64
	// Progress, when not nil, gets one line of statistics per second.
	Progress io.Writer
	// Logger gets errors and lifecycle messages; nil discards them.
	Logger *slog.Logger
}

// Summary is what a run did. Every sent reading ends up accepted, rejected
// or counted as an error: Sent == Accepted + Rejected + Errors.
type Summary struct {
	Sent, Accepted, Rejected, Errors uint64
	// Refused counts the readings of Errors whose request the target
	// turned away unread with Retry-After (overloaded, consumer lag,
	// broker unreachable); the worker waited that long before its next.
	Refused uint64
	// Anomalies is how many generated readings carried an injected anomaly.
	Anomalies uint64
	Elapsed   time.Duration
	// Rate is readings sent per second over Elapsed.
	Rate float64
	// P50 and P99 are request latencies (HTTP) or produce-to-ack
	// latencies (Kafka).
	P50, P99 time.Duration
}

func (s Summary) String() string {
	return fmt.Sprintf("sent=%d accepted=%d rejected=%d errors=%d (refused=%d) anomalies=%d elapsed=%s rate=%.0f/s p50=%s p99=%s",
		s.Sent, s.Accepted, s.Rejected, s.Errors, s.Refused, s.Anomalies, s.Elapsed.Round(time.Millisecond), s.Rate, roundLatency(s.P50), roundLatency(s.P99))
}

// connectGrace is how long after the start a refused connection means the
// target is still starting, so the batch is retried quietly.
const connectGrace = 10 * time.Second

// stopGrace is how long in-flight requests may take once ctx has ended.
const stopGrace = 5 * time.Second

func (c Config) withDefaults() (Config, error) {
	if c.Stream == "" {
		c.Stream = "city"
	}
	if c.Sensors == 0 {
		c.Sensors = 1000
	}
	if c.Zones == 0 {
		c.Zones = 20
	}
	if c.Sensors < 0 || c.Zones < 0 {
		return c, fmt.Errorf("loadgen: sensors (%d) and zones (%d) must be positive", c.Sensors, c.Zones)
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
		if c.Rate > 0 {
			c.BatchSize = min(max(1, int(c.Rate/50)), 5000)
		}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.AnomalyRate == 0 {
		c.AnomalyRate = DefaultAnomalyRate
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Target != "" && len(c.Brokers) > 0:
		return c, errors.New("loadgen: set a target URL or Kafka brokers, not both")
	case c.Target == "" && len(c.Brokers) == 0:
		return c, errors.New("loadgen: no target URL nor Kafka brokers to send to")
	case c.Target != "":
		u, err := url.Parse(c.Target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("loadgen: target %q is not an http(s) URL like http://127.0.0.1:8080", c.Target)
		}
	}
	return c, nil
}

// stats are the counters of a run, shared by all workers.
type stats struct {
	sent, accepted, rejected, errors, anomalies atomic.Uint64
	refused                                     atomic.Uint64
	lat                                         histogram
	waiting                                     atomic.Bool // the target refuses connections
	log                                         *slog.Logger

	mu         sync.Mutex
	lastLog    time.Time
	suppressed int
}

// done counts the outcome of n readings; the rest of n not accepted nor
// rejected are errors.
func (s *stats) done(n, accepted, rejected int) {
	s.sent.Add(uint64(n))
	s.accepted.Add(uint64(accepted))
	s.rejected.Add(uint64(rejected))
	if e := n - accepted - rejected; e > 0 {
		s.errors.Add(uint64(e))
	}
}

// warn logs a problem, at most once per 10 s with a count of the others.
func (s *stats) warn(msg string, args ...any) {
	s.mu.Lock()
	now := time.Now()
	if !s.lastLog.IsZero() && now.Sub(s.lastLog) < 10*time.Second {
		s.suppressed++
		s.mu.Unlock()
		return
	}
	s.lastLog = now
	n := s.suppressed
	s.suppressed = 0
	s.mu.Unlock()
	if n > 0 {
		args = append(args, "similar_problems_not_logged", n)
	}
	s.log.Warn(msg, args...)
}

// worker generates and delivers batches; one per concurrent request.
type worker interface {
	// fill generates n readings; the generator lock is held.
	fill(c *City, n int, now time.Time)
	// send delivers the filled batch and records its outcome.
	send()
}

// Run generates city readings and sends them as configured until
// cfg.Duration has passed or ctx ends, then waits for the requests in
// flight and returns what happened. It fails only on a bad configuration
// or when it cannot create its Kafka client.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Summary{}, err
	}
	st := &stats{log: cfg.Logger}
	start := time.Now()
	// In-flight requests outlive ctx by up to stopGrace.
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	stopAfter := context.AfterFunc(ctx, func() { time.AfterFunc(stopGrace, cancelReqs) })
	defer stopAfter()

	var newWorker func() worker
	if len(cfg.Brokers) > 0 {
		ks, err := newKafkaSender(cfg, st, reqCtx)
		if err != nil {
			return Summary{}, err
		}
		defer ks.close()
		newWorker = ks.newWorker
	} else {
		hs := newHTTPSender(cfg, st, ctx, reqCtx, start)
		defer hs.close()
		newWorker = hs.newWorker
	}
	city := NewCity(cfg.Seed, cfg.Sensors, cfg.Zones)
	city.AnomalyRate = max(cfg.AnomalyRate, 0)
	var genMu sync.Mutex
	pace := newPacer(cfg.Rate, cfg.BatchSize, cfg.Concurrency, start, cfg.Duration)
	cfg.Logger.Info("load generator started", "target", cfg.Target, "brokers", cfg.Brokers, "stream", cfg.Stream,
		"rate", cfg.Rate, "sensors", cfg.Sensors, "zones", cfg.Zones, "batch", cfg.BatchSize, "concurrency", cfg.Concurrency)

	var wg sync.WaitGroup
	for range cfg.Concurrency {
		w := newWorker()
		wg.Go(func() {
			for pace.wait(ctx) {
				genMu.Lock()
				before := city.Anomalies()
				w.fill(city, cfg.BatchSize, time.Now())
				st.anomalies.Add(city.Anomalies() - before)
				genMu.Unlock()
				w.send()
			}
		})
	}
	stopProgress := startProgress(cfg.Progress, st)
	wg.Wait()
	stopProgress()

	var snap snapshot
	st.lat.snapshot(&snap)
	sum := Summary{
		Sent: st.sent.Load(), Accepted: st.accepted.Load(), Rejected: st.rejected.Load(), Errors: st.errors.Load(), Refused: st.refused.Load(),
		Anomalies: st.anomalies.Load(), Elapsed: time.Since(start),
		P50: snap.quantile(0.5), P99: snap.quantile(0.99),
	}
	if s := sum.Elapsed.Seconds(); s > 0 {
		sum.Rate = float64(sum.Sent) / s
	}
	cfg.Logger.Info("load generator stopped", "summary", sum.String())
	return sum, nil
}

// startProgress prints a line of statistics to w every second until the
// returned function is called.
func startProgress(w io.Writer, st *stats) (stop func()) {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var prev, cur snapshot
		prevSent, prevAt := uint64(0), time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				st.lat.snapshot(&cur)
				win := cur.since(&prev)
				prev = cur
				sent := st.sent.Load()
				rate := float64(sent-prevSent) / now.Sub(prevAt).Seconds()
				prevSent, prevAt = sent, now
				note := ""
				if st.waiting.Load() {
					note = " (waiting for the target to accept connections)"
				}
				fmt.Fprintf(w, "sent=%d rate=%.0f/s errors=%d p50=%s p99=%s%s\n",
					sent, rate, st.errors.Load(), roundLatency(win.quantile(0.5)), roundLatency(win.quantile(0.99)), note)
			}
		}
	}()
	return func() { close(done); <-finished }
}

func roundLatency(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

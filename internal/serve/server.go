package serve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pulsehq/pulse/internal/health"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/ratelog"
	"github.com/pulsehq/pulse/internal/sink"
	"github.com/pulsehq/pulse/internal/stream"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// Config configures the HTTP server.
type Config struct {
	// Addr is the host:port to listen on; port 0 picks a free one.
	Addr      string
	Ingest    http.Handler
	Pipelines []*pipeline.Plan
	// Store answers the results API.
	Store sink.Querier
	Board *stream.Board
	// History, when not nil, answers GET /v1/streams/{stream}/history
	// from the Parquet archive.
	History *History
	Metrics *telemetry.Metrics
	// Health holds the components /readyz reports on: ready while every
	// one is (nil: always ready).
	Health *health.Registry
	// Accepted returns the count of events accepted by ingest so far; the
	// live views derive the ingest rate from it.
	Accepted func() uint64
	// LiveEvery is how often live views push an update.
	LiveEvery time.Duration
	// MaxLiveClients bounds the live views open at once; beyond it a new
	// one gets 503 with Retry-After (default 64).
	MaxLiveClients int
	// LiveWriteTimeout is how long a live view's push may wait for a
	// client that does not read before the stream is cut (default 10 s).
	LiveWriteTimeout time.Duration
	// MaxConns bounds the connections open at once (default 1024); see
	// ReserveConns for what happens past it.
	MaxConns int
	// BodyTimeout and MinBodyRate bound how slowly a request body may
	// arrive: within BodyTimeout (default 10 s) plus 1 s per MinBodyRate
	// bytes received (0: the whole body within BodyTimeout).
	BodyTimeout time.Duration
	MinBodyRate int64
	// WriteTimeout bounds writing a response once its request is in
	// (default 30 s); it must exceed ingest's produce timeout.
	WriteTimeout time.Duration
	// AllowHosts are Host names answered besides localhost, IP addresses
	// and the name in Addr; with any, every name is checked even when not
	// on loopback. "*" answers every name.
	AllowHosts []string
	// DebugAddr, when set, is the address of a second listener serving
	// Go's profiler under /debug/pprof/; empty serves no profiler.
	DebugAddr string
	Logger    *slog.Logger
}

// maxHeaderBytes bounds a request's header (Go's default is 1 MiB).
const maxHeaderBytes = 32 << 10

// Server is Pulse's HTTP server.
type Server struct {
	cfg     Config
	ln      *limitListener
	srv     *http.Server
	debug   *debugServer
	rate    *rateMeter
	frames  frames
	schemas schemas
	hosts   hostPolicy
	refused *prometheus.CounterVec
	warn    *ratelog.Logger
	// liveClients counts the open live views.
	liveClients atomic.Int64
	// done is closed when shutdown starts so that SSE streams end.
	done chan struct{}
}

// New listens on cfg.Addr; Run serves.
func New(cfg Config) (*Server, error) {
	if cfg.LiveEvery <= 0 {
		cfg.LiveEvery = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.MaxLiveClients = cmp.Or(cfg.MaxLiveClients, 64)
	cfg.LiveWriteTimeout = cmp.Or(cfg.LiveWriteTimeout, 10*time.Second)
	cfg.MaxConns = cmp.Or(cfg.MaxConns, 1024)
	cfg.BodyTimeout = cmp.Or(cfg.BodyTimeout, 10*time.Second)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, 30*time.Second)
	cfg.MinBodyRate = max(cfg.MinBodyRate, 0)
	sch := schemasOf(cfg.Pipelines)
	s := &Server{cfg: cfg, done: make(chan struct{}), rate: newRateMeter(cfg.Accepted), schemas: sch,
		frames: frames{board: cfg.Board, schemas: sch}, warn: ratelog.New(cfg.Logger, 10*time.Second),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_http_refused_total",
			Help: "HTTP connections and requests refused or cut off, by reason: conn_limit, live_limit, slow_body, host, cross_origin.",
		}, []string{"reason"}),
	}
	raw, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen for HTTP on %s (choose another address with --http): %w", cfg.Addr, err)
	}
	s.ln = newLimitListener(raw, cfg.MaxConns, func() {
		s.refused.WithLabelValues("conn_limit").Inc()
		s.warn.Warn("http conn_limit", "closed a new connection at once: the server holds its maximum of connections and its reserve for health checks",
			"max_conns", cfg.MaxConns, "reserve", ReserveConns)
	})
	s.hosts = newHostPolicy(raw, cfg.Addr, cfg.AllowHosts)
	if cfg.DebugAddr != "" {
		s.debug, err = newDebugServer(cfg.DebugAddr, func(ln net.Listener, h http.Handler) http.Handler {
			return s.checkHost(newHostPolicy(ln, cfg.DebugAddr, cfg.AllowHosts), h)
		})
		if err != nil {
			raw.Close()
			return nil, err
		}
	}
	mux := http.NewServeMux()
	if cfg.Ingest != nil {
		mux.Handle("POST /v1/streams/{stream}/events", cfg.Ingest)
	}
	mux.HandleFunc("GET /v1/streams/{stream}/history", s.history)
	mux.HandleFunc("GET /v1/pipelines", s.listPipelines)
	mux.HandleFunc("GET /v1/pipelines/{pipeline}/results", s.results)
	mux.HandleFunc("GET /v1/pipelines/{pipeline}/live", s.live)
	mux.HandleFunc("GET /v1/pipelines/{pipeline}/watermark", s.watermark)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Metrics.Registry, promhttp.HandlerOpts{}))
		s.register(cfg.Metrics.Registry)
	}
	mux.Handle("GET /", dashboard())
	s.srv = &http.Server{
		Handler:           s.guard(mux),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnContext:       connContext,
		ErrorLog:          log.New(serverLog{s.warn}, "", 0),
	}
	return s, nil
}

// schemas holds the schema of every output, by "pipeline/output".
type schemas map[string]*stream.Schema

func schemasOf(plans []*pipeline.Plan) schemas {
	out := schemas{}
	for _, p := range plans {
		for i := range p.Outputs {
			out[p.Name+"/"+p.Outputs[i].Name] = stream.SchemaOf(&p.Outputs[i])
		}
	}
	return out
}

// of returns the schemas of p's outputs named (none: every one), in the
// order of the pipeline file.
func (s schemas) of(p *pipeline.Plan, outputs []string) []*stream.Schema {
	var out []*stream.Schema
	for _, o := range p.Outputs {
		if len(outputs) == 0 || slices.Contains(outputs, o.Name) {
			out = append(out, s[p.Name+"/"+o.Name])
		}
	}
	return out
}

// serverLog writes net/http's own error lines (such as "http: Accept
// error: ... too many open files") as warnings, one per kind every 10 s.
type serverLog struct{ warn *ratelog.Logger }

func (l serverLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	// The kind is the line's first two parts: "http: Accept error".
	parts := strings.SplitN(msg, ":", 3)
	l.warn.Warn("net/http "+strings.Join(parts[:min(2, len(parts))], ":"), "HTTP server: "+msg)
	return len(p), nil
}

// register adds the server's own metrics to reg.
func (s *Server) register(reg *prometheus.Registry) {
	cs := []prometheus.Collector{
		s.refused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pulse_http_connections", Help: "HTTP connections open now."},
			func() float64 { return float64(s.ln.open()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pulse_live_clients", Help: "Live views (Server-Sent Events streams) open now."},
			func() float64 { return float64(s.liveClients.Load()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			s.cfg.Logger.Warn("register HTTP metrics", "err", err)
		}
	}
}

// DebugAddr is the address of the profiler's listener, empty without one.
func (s *Server) DebugAddr() string {
	if s.debug == nil {
		return ""
	}
	return s.debug.ln.Addr().String()
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then stops accepting requests and waits up
// to 10 s for in-flight ones (ingest requests wait for their broker
// acknowledgements) to finish.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	go s.rate.run(ctx)
	if s.debug != nil {
		go s.debug.run(ctx, s.cfg.Logger)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve HTTP: %w", err)
	case <-ctx.Done():
	}
	close(s.done)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down HTTP server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve HTTP: %w", err)
	}
	return nil
}

// readyz answers 200 while every component is ready, else 503; the body
// lists each component with its reason (docs/api.md).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	rep := health.Report{Status: "ready", Components: []health.Component{}}
	if s.cfg.Health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		rep = s.cfg.Health.Report(ctx)
	}
	code := http.StatusOK
	if !rep.Ready() {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rep)
}

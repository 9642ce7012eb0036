package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pulsehq/pulse/internal/health"
	"github.com/pulsehq/pulse/internal/pipeline"
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
	Store     *sink.SQLite
	Board     *stream.Board
	Metrics   *telemetry.Metrics
	// Health holds the components /readyz reports on: ready while every
	// one is (nil: always ready).
	Health *health.Registry
	// Accepted returns the count of events accepted by ingest so far; the
	// live views derive the ingest rate from it.
	Accepted func() uint64
	// LiveEvery is how often live views push an update.
	LiveEvery time.Duration
	Logger    *slog.Logger
}

// Server is Pulse's HTTP server.
type Server struct {
	cfg  Config
	ln   net.Listener
	srv  *http.Server
	rate *rateMeter
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
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen for HTTP on %s (choose another address with --http): %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, ln: ln, done: make(chan struct{}), rate: newRateMeter(cfg.Accepted)}
	mux := http.NewServeMux()
	if cfg.Ingest != nil {
		mux.Handle("POST /v1/streams/{stream}/events", cfg.Ingest)
	}
	mux.HandleFunc("GET /v1/pipelines", s.listPipelines)
	mux.HandleFunc("GET /v1/pipelines/{pipeline}/results", s.results)
	mux.HandleFunc("GET /v1/pipelines/{pipeline}/live", s.live)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Metrics.Registry, promhttp.HandlerOpts{}))
	}
	// Go's profiler, for operators chasing CPU or memory (see
	// docs/operations.md).
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.Handle("GET /", dashboard())
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	return s, nil
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

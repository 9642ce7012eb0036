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
)

// debugServer serves Go's profiler on a listener of its own, which the
// operator opts into (--debug-listen): profiles reveal internals and cost
// CPU, so they are not on the public address.
type debugServer struct {
	ln  net.Listener
	srv *http.Server
}

// newDebugServer listens on addr; guard wraps its handler (the Host check:
// a rebinding page must not read profiles either).
func newDebugServer(addr string, guard func(net.Listener, http.Handler) http.Handler) (*debugServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for the profiler on %s (choose another address with --debug-listen): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile or trace takes as long as asked.
	return &debugServer{ln: ln, srv: &http.Server{Handler: guard(ln, mux), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: time.Minute, MaxHeaderBytes: maxHeaderBytes}}, nil
}

// run serves until ctx ends; a profile in progress is cut off then.
func (d *debugServer) run(ctx context.Context, log *slog.Logger) {
	go func() {
		<-ctx.Done()
		d.srv.Close()
	}()
	if err := d.srv.Serve(d.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("profiler listener stopped", "addr", d.ln.Addr().String(), "err", err)
	}
}

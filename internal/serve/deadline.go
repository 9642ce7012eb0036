package serve

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// deadlines bounds how long a request may take to arrive and its answer
// to leave. A body must arrive within BodyTimeout plus one second per
// MinBodyRate bytes received (a client sending a byte a second is cut off
// after BodyTimeout, a large body on a slow link is not); the response
// must be written within WriteTimeout once the body is in. The live view
// sets its own write deadline per push.
func (s *Server) deadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		now := time.Now()
		if r.Body == nil || r.Body == http.NoBody {
			_ = rc.SetWriteDeadline(now.Add(s.cfg.WriteTimeout))
			next.ServeHTTP(w, r)
			return
		}
		// Set now, not only as the body is read: a handler may answer
		// without reading it (and net/http then discards up to 256 KiB of
		// it), and a kept-alive connection still has the deadlines of its
		// previous request.
		_ = rc.SetReadDeadline(now.Add(s.cfg.BodyTimeout))
		_ = rc.SetWriteDeadline(now.Add(s.cfg.BodyTimeout + s.cfg.WriteTimeout))
		b := &deadlineBody{body: r.Body, rc: rc, start: now, grace: s.cfg.BodyTimeout,
			rate: s.cfg.MinBodyRate, write: s.cfg.WriteTimeout}
		r.Body = b
		sw := &slowStatusWriter{ResponseWriter: w, body: b}
		next.ServeHTTP(sw, r)
		if b.timedOut.Load() {
			s.refuse("slow_body", "cut off a request body that arrived too slowly", r,
				"received_bytes", b.n, "min_rate", s.cfg.MinBodyRate)
		}
	})
}

// deadlineBody moves the connection's read deadline forward as the body
// arrives. Once the body is in, net/http lifts the read deadline itself
// (its background read must not cancel a handler still waiting, as ingest
// waits for the broker's acknowledgements) and the response gets
// WriteTimeout from then.
type deadlineBody struct {
	body     io.ReadCloser
	rc       *http.ResponseController
	start    time.Time
	grace    time.Duration
	rate     int64
	write    time.Duration
	n        int64
	done     bool
	timedOut atomic.Bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done {
		return b.body.Read(p)
	}
	dl := b.start.Add(b.grace)
	if b.rate > 0 {
		dl = dl.Add(time.Duration(float64(b.n) / float64(b.rate) * float64(time.Second)))
	}
	_ = b.rc.SetReadDeadline(dl)
	_ = b.rc.SetWriteDeadline(dl.Add(b.write))
	n, err := b.body.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.done = true
		_ = b.rc.SetWriteDeadline(time.Now().Add(b.write))
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.timedOut.Store(true)
		return n, fmt.Errorf("request body arrived too slowly (%d bytes in %s; Pulse allows %s plus 1 s per %d bytes, see --http-body-timeout and --http-min-body-rate): send it faster or in smaller batches",
			b.n, time.Since(b.start).Round(time.Millisecond), b.grace, b.rate)
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.body.Close() }

// slowStatusWriter turns the handler's error status into 408 Request
// Timeout when the body was cut off for arriving too slowly.
type slowStatusWriter struct {
	http.ResponseWriter
	body *deadlineBody
}

func (w *slowStatusWriter) WriteHeader(code int) {
	if w.body.timedOut.Load() && code >= 400 {
		w.Header().Set("Connection", "close")
		code = http.StatusRequestTimeout
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *slowStatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

package serve

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/pulsehq/pulse/internal/stream"
)

// live streams an output's open windows as Server-Sent Events: one "live"
// event every LiveEvery with the ingest rate, the watermark and the
// partial results. The first event of a stream is a snapshot of every open
// window; each later one carries only the windows that are new or changed
// since the event before (a changed window with its changed fields only)
// and those that closed, unless the client asked for ?full=1. A client
// that does not read its stream for LiveWriteTimeout is disconnected, and
// no more than MaxLiveClients streams are open at once.
func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pipeline(r.PathValue("pipeline"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("unknown pipeline %q: GET /v1/pipelines lists them", r.PathValue("pipeline"))})
		return
	}
	output := r.URL.Query().Get("output")
	if output == "" {
		badRequest(w, "output is required: one of %v", outputNames(p))
		return
	}
	if _, err := parseOutputs(p, output); err != nil {
		badRequest(w, "%v", err)
		return
	}
	full := false
	if v := r.URL.Query().Get("full"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			badRequest(w, "full=%q: use full=1 for a snapshot in every event, or leave it out for changes only", v)
			return
		}
		full = b
	}
	if n := s.liveClients.Add(1); n > int64(s.cfg.MaxLiveClients) {
		s.liveClients.Add(-1)
		s.refuse("live_limit", "refused a live view: too many open", r, "max_live_clients", s.cfg.MaxLiveClients)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": fmt.Sprintf(
			"%d live views are open, the most this server allows (--live-max-clients): retry later or close another dashboard", s.cfg.MaxLiveClients)})
		return
	}
	defer s.liveClients.Add(-1)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Vary", "Accept-Encoding")
	// Browsers accept gzip on an EventSource; one compressor per stream
	// keeps its window across events, so the repeated field names and keys
	// of the deltas cost little.
	var out io.Writer = w
	var gz *gzip.Writer
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		gz, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
		defer gz.Close()
		out = gz
	}
	w.WriteHeader(http.StatusOK)
	tick := time.NewTicker(s.cfg.LiveEvery)
	defer tick.Stop()
	var (
		buf  []byte
		prev *frame
	)
	for {
		f := s.frames.current(p.Name, output)
		if full {
			prev = nil
		}
		buf = s.appendLive(buf[:0], f, prev)
		prev = f
		// A client that does not read fills the socket's buffers, and the
		// write blocks until this deadline cuts it off.
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.LiveWriteTimeout))
		if _, err := out.Write(buf); err != nil {
			return
		}
		if gz != nil {
			if err := gz.Flush(); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-tick.C:
		}
	}
}

// acceptsGzip reports whether r's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// appendLive appends one live event: a snapshot of f when prev is nil,
// else what changed since prev.
func (s *Server) appendLive(buf []byte, f, prev *frame) []byte {
	buf = append(buf, "event: live\ndata: {\"time\":"...)
	buf = strconv.AppendInt(buf, time.Now().UnixMilli(), 10)
	buf = append(buf, `,"ingest_rate":`...)
	buf = strconv.AppendFloat(buf, s.rate.perSecond(), 'f', 1, 64)
	buf = append(buf, `,"watermark":`...)
	if f.watermark == stream.NoWatermark || f.watermark == 0 {
		buf = append(buf, "null"...)
	} else {
		buf = strconv.AppendInt(buf, f.watermark, 10)
	}
	if prev == nil {
		buf = append(buf, `,"snapshot":true,"results":[`...)
		buf = append(buf, f.snapshot()...)
		return append(buf, "]}\n\n"...)
	}
	d := f.deltaFrom(prev)
	buf = append(buf, `,"snapshot":false,"results":[`...)
	buf = append(buf, d.results...)
	buf = append(buf, `],"removed":[`...)
	buf = append(buf, d.removed...)
	return append(buf, "]}\n\n"...)
}

// rateMeter turns a monotonically increasing count into a per-second rate
// sampled every second.
type rateMeter struct {
	count func() uint64
	mu    sync.Mutex
	rate  float64
}

func newRateMeter(count func() uint64) *rateMeter { return &rateMeter{count: count} }

func (m *rateMeter) run(ctx context.Context) {
	if m.count == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last, lastT := m.count(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c := m.count()
			m.mu.Lock()
			m.rate = float64(c-last) / now.Sub(lastT).Seconds()
			m.mu.Unlock()
			last, lastT = c, now
		}
	}
}

func (m *rateMeter) perSecond() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rate
}

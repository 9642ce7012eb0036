package serve

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/pulsehq/pulse/internal/stream"
)

// live streams an output's open windows as Server-Sent Events: one "live"
// event every LiveEvery with the ingest rate, the watermark and every
// partial result.
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
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	tick := time.NewTicker(s.cfg.LiveEvery)
	defer tick.Stop()
	var buf []byte
	for {
		buf = s.appendLive(buf[:0], p.Name, output)
		if _, err := w.Write(buf); err != nil {
			return
		}
		flusher.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-tick.C:
		}
	}
}

func (s *Server) appendLive(buf []byte, pipeline, output string) []byte {
	l := s.cfg.Board.Get(pipeline, output)
	buf = append(buf, "event: live\ndata: {\"time\":"...)
	buf = strconv.AppendInt(buf, time.Now().UnixMilli(), 10)
	buf = append(buf, `,"ingest_rate":`...)
	buf = strconv.AppendFloat(buf, s.rate.perSecond(), 'f', 1, 64)
	buf = append(buf, `,"watermark":`...)
	if l.Watermark == stream.NoWatermark || l.Watermark == 0 {
		buf = append(buf, "null"...)
	} else {
		buf = strconv.AppendInt(buf, l.Watermark, 10)
	}
	buf = append(buf, `,"results":[`...)
	for i := range l.Results {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = stream.AppendResultJSON(buf, &l.Results[i])
	}
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

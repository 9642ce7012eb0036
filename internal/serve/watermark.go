package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// watermarkJSON is a pipeline's watermark and why a window is still open:
// GET /v1/pipelines/{pipeline}/watermark, and the "watermark" member of
// the results response (docs/api.md).
type watermarkJSON struct {
	Pipeline string `json:"pipeline,omitempty"`
	// Watermark is the event time up to which windows close (RFC 3339),
	// null until every partition that holds it delivered an event.
	Watermark *string `json:"watermark"`
	// AllIdle: every source partition is idle and event time advances
	// with the clock.
	AllIdle       bool            `json:"all_idle"`
	HeldBy        []string        `json:"held_by"`
	Reason        string          `json:"reason"`
	DisorderMs    int64           `json:"max_out_of_orderness_ms"`
	IdleTimeoutMs int64           `json:"idle_timeout_ms"`
	Partitions    []partitionJSON `json:"partitions"`
}

type partitionJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// EventTime is the highest event time read, null before the first;
	// for an idle partition AdvancedTo is where the clock moved it.
	EventTime  *string `json:"event_time"`
	AdvancedTo *string `json:"advanced_to,omitempty"`
	Idle       bool    `json:"idle"`
	Backlog    bool    `json:"backlog"`
	// Unread is how many records wait, -1 when not known yet.
	Unread int64 `json:"unread"`
	// LastReadAgoMs is the processing time since its last record.
	LastReadAgoMs int64 `json:"last_read_ago_ms"`
	Holding       bool  `json:"holding"`
}

func rfc3339Ptr(ms int64) *string {
	s := time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
	return &s
}

// watermarkOf describes the watermark of plan at processing time now.
func watermarkOf(b *stream.Board, plan *pipeline.Plan, now int64) watermarkJSON {
	disorder := plan.Time.MaxOutOfOrderness.Milliseconds()
	out := watermarkJSON{DisorderMs: disorder, IdleTimeoutMs: plan.Time.IdleTimeout.Milliseconds(),
		HeldBy: []string{}, Partitions: []partitionJSON{}}
	if b == nil {
		out.Reason = "this process runs no pipeline stage"
		return out
	}
	st := b.Watermark(plan.Name, disorder)
	if st.Watermark != stream.NoWatermark {
		out.Watermark = rfc3339Ptr(st.Watermark)
	}
	out.AllIdle = st.AllIdle
	held := map[int]bool{}
	for _, i := range st.HeldBy {
		held[i] = true
	}
	for i, s := range st.Sources {
		p := partitionJSON{Topic: s.Topic, Partition: s.Partition, Idle: s.Idle, Backlog: s.Backlog, Unread: s.Unread,
			LastReadAgoMs: max(now-s.LastRead, 0), Holding: held[i]}
		if s.Seen {
			p.EventTime = rfc3339Ptr(s.EventTime)
			if s.Idle && s.Advanced > s.EventTime {
				p.AdvancedTo = rfc3339Ptr(s.Advanced)
			}
		}
		out.Partitions = append(out.Partitions, p)
		if held[i] {
			out.HeldBy = append(out.HeldBy, s.Topic+":"+strconv.Itoa(int(s.Partition)))
		}
	}
	out.Reason = watermarkReason(plan, &out)
	return out
}

// watermarkReason says in a sentence why windows are open where they are.
func watermarkReason(plan *pipeline.Plan, w *watermarkJSON) string {
	idle, disorder := plan.Time.IdleTimeout, plan.Time.MaxOutOfOrderness
	switch {
	case len(w.Partitions) == 0:
		return "no source partition is read by this process yet"
	case w.AllIdle:
		return fmt.Sprintf("every source partition is idle (no event for %s): event time advances with the clock, so open windows close without new events", idle)
	case w.Watermark == nil && len(w.HeldBy) == 1:
		return fmt.Sprintf("%s delivered no event yet: it holds the watermark until it does, or until it has been idle for %s", w.HeldBy[0], idle)
	case w.Watermark == nil:
		return fmt.Sprintf("%s delivered no event yet: they hold the watermark until they do, or until they have been idle for %s", strings.Join(w.HeldBy, ", "), idle)
	}
	return fmt.Sprintf("held by %s: a window closes once the event time there passes its end plus %s, or once that partition has been idle for %s",
		strings.Join(w.HeldBy, ", "), disorder, idle)
}

// watermark serves GET /v1/pipelines/{pipeline}/watermark.
func (s *Server) watermark(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pipeline(r.PathValue("pipeline"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("unknown pipeline %q: GET /v1/pipelines lists them", r.PathValue("pipeline"))})
		return
	}
	wm := watermarkOf(s.cfg.Board, p, time.Now().UnixMilli())
	wm.Pipeline = p.Name
	writeJSON(w, http.StatusOK, wm)
}

// appendWatermark adds the "watermark" member to a results response
// being written (buf ends inside its object).
func (s *Server) appendWatermark(buf []byte, p *pipeline.Plan) []byte {
	b, err := json.Marshal(watermarkOf(s.cfg.Board, p, time.Now().UnixMilli()))
	if err != nil {
		return buf
	}
	buf = append(buf, `,"watermark":`...)
	return append(buf, b...)
}

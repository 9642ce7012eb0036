package ingest

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Refusal is why ingest turns a request away before reading it.
//
// Reason is shown to the sender as {"error": Reason}: it says what is wrong
// and when or how the sender may go on. Its text before the first colon is
// a short constant cause ("overloaded", "consumer lag", "broker
// unreachable", "disk full") that labels the refusal in the metric
// pulse_ingest_refused_total{stream,reason}; the rest may vary.
type Refusal struct {
	Code       int
	RetryAfter time.Duration
	Reason     string
}

func (r *Refusal) Error() string { return r.Reason }

// cause is the metric label of r: its reason up to the first colon.
func (r *Refusal) cause() string {
	c, _, _ := strings.Cut(r.Reason, ":")
	return c
}

// Gate returns nil to admit a request, or why not.
type Gate func() *Refusal

// LagGate refuses requests with 503 while lag() is above max records: the
// pipelines are that far behind their input, so taking more only grows
// the backlog. lag is typically the largest consumer lag of the pipelines.
func LagGate(max int64, lag func() int64) Gate {
	return func() *Refusal {
		n := lag()
		if n <= max {
			return nil
		}
		return &Refusal{Code: http.StatusServiceUnavailable, RetryAfter: time.Second,
			Reason: fmt.Sprintf("consumer lag: the pipelines are %d records behind their input, more than the --max-lag of %d; send again after the Retry-After delay", n, max)}
	}
}

// refuse answers a request that is turned away before its body is read.
// The body is discarded first (up to --max-body, through a small buffer,
// so it costs no memory; the server's body deadline bounds the time): a
// client that sends its body without waiting for "100 Continue" would
// otherwise have its connection reset while it still sends, and never
// read the answer, since net/http discards at most 256 KiB of an unread
// body. A client that asked "Expect: 100-continue" is answered at once and
// never sends the body.
func (h *Handler) refuse(w http.ResponseWriter, req *http.Request, stream string, r *Refusal) int {
	if req.Body != nil && !strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
		_, _ = io.Copy(io.Discard, io.LimitReader(req.Body, h.cfg.MaxBody))
	}
	secs := max(int(math.Ceil(r.RetryAfter.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	if h.cfg.Metrics != nil {
		h.cfg.Metrics.IngestRefused.WithLabelValues(stream, r.cause()).Inc()
	}
	return writeJSON(w, r.Code, errorBody{Error: r.Reason})
}

// admit runs the gates in order and returns the first refusal.
func (h *Handler) admit() *Refusal {
	for _, g := range h.gates {
		if r := g(); r != nil {
			return r
		}
	}
	return nil
}

package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fastjson"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// Stream is a named input stream the ingest API accepts.
type Stream struct {
	Name string
	// Source is the pipeline source that reads the stream: its key and
	// event-time fields are required in every event; with schema city,
	// events are validated as city readings (see event.CityParser).
	Source pipeline.Source
}

// Config configures the ingest handler.
type Config struct {
	Streams []Stream
	// Client produces to the stream and dead-letter topics.
	Client *kgo.Client
	// MaxBody bounds a request body, before and after gzip decompression.
	MaxBody int64
	// ProduceTimeout bounds how long a request waits for the broker.
	ProduceTimeout time.Duration
	// MaxFuture rejects event times further ahead of now; 0 disables.
	MaxFuture time.Duration
	Metrics   *telemetry.Metrics
	Logger    *slog.Logger
}

// Handler serves POST /v1/streams/{stream}/events.
type Handler struct {
	cfg      Config
	streams  map[string]Stream
	accepted atomic.Uint64
	pool     sync.Pool
}

// state is the per-request scratch space, pooled across requests.
type state struct {
	body    bytes.Buffer
	split   fastjson.Parser
	parser  event.CityParser
	generic genericParser
	items   []item
	recs    []kgo.Record
}

// New returns an ingest handler.
func New(cfg Config) *Handler {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 10 << 20
	}
	if cfg.ProduceTimeout <= 0 {
		cfg.ProduceTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{cfg: cfg, streams: make(map[string]Stream)}
	for _, s := range cfg.Streams {
		h.streams[s.Name] = s
	}
	h.pool.New = func() any {
		st := &state{}
		st.parser.Limits = event.Limits{MaxFuture: cfg.MaxFuture}
		st.generic.maxFuture = cfg.MaxFuture
		return st
	}
	return h
}

// Accepted returns how many events were accepted since start.
func (h *Handler) Accepted() uint64 { return h.accepted.Load() }

// Response is the body of an ingest answer.
type Response struct {
	Accepted int          `json:"accepted"`
	Rejected int          `json:"rejected"`
	Failed   int          `json:"failed,omitempty"`
	Errors   []EventError `json:"errors"`
}

// EventError says why one event of a request was not accepted.
type EventError struct {
	Index int    `json:"index"`
	Line  int    `json:"line,omitempty"`
	Error string `json:"error"`
}

type errorBody struct {
	Error string `json:"error"`
	Line  int    `json:"line,omitempty"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name := r.PathValue("stream")
	code := h.serve(w, r, name)
	if h.cfg.Metrics != nil {
		label := name
		if _, ok := h.streams[name]; !ok {
			label = "unknown"
		}
		h.cfg.Metrics.IngestDuration.WithLabelValues(label, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, name string) int {
	s, ok := h.streams[name]
	if !ok {
		known := make([]string, 0, len(h.streams))
		for n := range h.streams {
			known = append(known, n)
		}
		sort.Strings(known)
		return writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("unknown stream %q: known streams are %s", name, strings.Join(known, ", "))})
	}
	st := h.pool.Get().(*state)
	if err := h.readBody(r, &st.body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) || errors.Is(err, errTooLarge) {
			h.count(name, "malformed", 1)
			h.pool.Put(st)
			return writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("request body is larger than %d bytes: split it into smaller batches", h.cfg.MaxBody)})
		}
		h.count(name, "malformed", 1)
		h.pool.Put(st)
		return writeJSON(w, http.StatusBadRequest, errorBody{Error: "read body: " + err.Error()})
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	ndjson := ct == "application/x-ndjson" || ct == "application/jsonl"
	var err error
	st.items, err = splitBody(st.body.Bytes(), ndjson, &st.split, st.items[:0])
	if err != nil {
		h.count(name, "malformed", 1)
		h.pool.Put(st)
		var be *BodyError
		if errors.As(err, &be) {
			return writeJSON(w, http.StatusBadRequest, errorBody{Error: be.Error(), Line: be.Line})
		}
		return writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
	}
	return h.produce(w, r.Context(), s, st)
}

var errTooLarge = errors.New("decompressed body too large")

func (h *Handler) readBody(r *http.Request, buf *bytes.Buffer) error {
	buf.Reset()
	var body io.Reader = http.MaxBytesReader(nil, r.Body, h.cfg.MaxBody)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		body = zr
	}
	n, err := buf.ReadFrom(io.LimitReader(body, h.cfg.MaxBody+1))
	if err != nil {
		return err
	}
	if n > h.cfg.MaxBody {
		return errTooLarge
	}
	return nil
}

func (h *Handler) produce(w http.ResponseWriter, rctx context.Context, s Stream, st *state) int {
	resp := Response{Errors: []EventError{}}
	n := len(st.items)
	if cap(st.recs) < n {
		st.recs = make([]kgo.Record, n)
	}
	recs := st.recs[:n]
	var r event.Reading
	for i, it := range st.items {
		rec := &recs[i]
		*rec = kgo.Record{Value: it.raw}
		var key []byte
		var err error
		if s.Source.Schema == "city" {
			if err = st.parser.Parse(it.raw, &r); err == nil {
				key = []byte(r.SensorID)
			}
		} else {
			key, err = st.generic.validate(it.raw, &s.Source)
		}
		if err != nil {
			resp.Rejected++
			resp.Errors = append(resp.Errors, EventError{Index: i, Line: it.line, Error: err.Error()})
			rec.Topic = pipeline.DLQTopic(s.Name)
			rec.Headers = []kgo.RecordHeader{
				{Key: "pulse-error", Value: []byte(err.Error())},
				{Key: "pulse-stage", Value: []byte("ingest")},
				{Key: "pulse-index", Value: []byte(strconv.Itoa(i))},
			}
			continue
		}
		rec.Topic = s.Name
		rec.Key = key
		// The record keeps the ingest time as its timestamp (set by the
		// client), not the event time: franz-go measures
		// RecordDeliveryTimeout from the record timestamp, so an event time
		// older than that timeout would fail at once, and Kafka's retention
		// and timestamp checks expect append times. The event time is in
		// the value.
	}
	errs, complete := h.send(rctx, recs)
	if complete {
		// Otherwise the client still holds records that point into this
		// request's buffers: leave them to the garbage collector.
		defer h.pool.Put(st)
	}
	var failed []EventError
	for i, err := range errs {
		switch {
		case err == nil:
			if recs[i].Topic == s.Name {
				resp.Accepted++
			}
		case recs[i].Topic == s.Name:
			failed = append(failed, EventError{Index: i, Line: st.items[i].line, Error: err.Error()})
		default:
			// A rejected event whose dead-letter copy failed: say so in
			// its existing error.
			resp.Failed++
			for j := range resp.Errors {
				if resp.Errors[j].Index == i {
					resp.Errors[j].Error += "; writing it to the dead-letter topic failed too: " + err.Error()
				}
			}
		}
	}
	h.accepted.Add(uint64(resp.Accepted))
	h.count(s.Name, "accepted", resp.Accepted)
	h.count(s.Name, "rejected", resp.Rejected)
	code := http.StatusOK
	if len(failed) > 0 || resp.Failed > 0 {
		h.count(s.Name, "failed", len(failed))
		h.cfg.Logger.Warn("ingest could not store events", "stream", s.Name, "failed", len(failed), "dead_letters_failed", resp.Failed)
		resp.Failed += len(failed)
		resp.Errors = append(resp.Errors, failed...)
		sort.Slice(resp.Errors, func(i, j int) bool { return resp.Errors[i].Index < resp.Errors[j].Index })
		w.Header().Set("Retry-After", "1")
		code = http.StatusServiceUnavailable
	}
	return writeJSON(w, code, resp)
}

var errUnconfirmed = errors.New("the broker did not confirm it in time; it may or may not be stored")

// send produces recs and waits for every acknowledgement, at most
// ProduceTimeout plus a grace period. Records still buffered at the
// deadline are failed by the client; a record already sent keeps waiting
// for its outcome inside the client (to keep idempotence), and is reported
// as unconfirmed if that takes longer than the grace period. complete is
// false in that case.
func (h *Handler) send(rctx context.Context, recs []kgo.Record) (errs []error, complete bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(rctx), h.cfg.ProduceTimeout)
	defer cancel()
	var mu sync.Mutex
	errs = make([]error, len(recs))
	acked := make([]bool, len(recs))
	pending := len(recs)
	done := make(chan struct{})
	if pending == 0 {
		return errs, true
	}
	for i := range recs {
		h.cfg.Client.Produce(ctx, &recs[i], func(_ *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[i] = fmt.Errorf("not stored, the broker did not acknowledge it: %w", err)
			}
			acked[i] = true
			if pending--; pending == 0 {
				close(done)
			}
		})
	}
	grace := time.NewTimer(h.cfg.ProduceTimeout + 2*time.Second)
	defer grace.Stop()
	select {
	case <-done:
		return errs, true
	case <-grace.C:
	}
	mu.Lock()
	defer mu.Unlock()
	out := make([]error, len(recs))
	for i := range recs {
		out[i] = errs[i]
		if !acked[i] {
			out[i] = errUnconfirmed
		}
	}
	return out, pending == 0
}

func (h *Handler) count(stream, outcome string, n int) {
	if h.cfg.Metrics != nil && n > 0 {
		h.cfg.Metrics.IngestEvents.WithLabelValues(stream, outcome).Add(float64(n))
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
	return code
}

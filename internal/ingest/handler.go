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
	// MaxInflight bounds the bytes held by requests in flight, from before
	// their body is read until every record is acknowledged or failed:
	// body bytes plus about 250 bytes per event. A request that does not
	// fit is answered 503 with Retry-After at once, its body discarded; a request
	// alone always goes through. 0 means no bound.
	MaxInflight int64
	// Gates are checked in order before a request's body is read; the
	// first refusal answers the request.
	Gates []Gate
	// Breaker, when set, answers 503 at once while the broker cannot take
	// writes, and learns of each write's outcome. Its Gate runs after
	// Gates.
	Breaker *Breaker
	Metrics *telemetry.Metrics
	Logger  *slog.Logger
}

// Handler serves POST /v1/streams/{stream}/events.
type Handler struct {
	cfg      Config
	streams  map[string]Stream
	gates    []Gate
	limit    inflight
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
	flight  flight
	reading event.Reading
	// checkCity validates a city event during the split (see checkFunc).
	checkCity checkFunc
}

// checkCityEvent validates a parsed city event; its key is the sensor id.
// The whole event must be UTF-8, not only the fields Validate reads: the
// pipeline stages decode every field of it.
func (st *state) checkCityEvent(v *fastjson.Value, it *item) {
	it.checked = true
	if it.err = event.CheckUTF8(it.raw); it.err != nil {
		return
	}
	if it.err = st.parser.Validate(v, &st.reading); it.err == nil {
		it.key = []byte(st.reading.SensorID)
	}
}

// poolable reports whether st is small enough to keep for another
// request: the scratch space of an exceptionally large body is left to
// the garbage collector rather than held for good.
func (st *state) poolable() bool {
	return st.body.Cap() <= 4<<20 && cap(st.recs) <= 1<<15 && cap(st.items) <= 1<<15
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
	h := &Handler{cfg: cfg, streams: make(map[string]Stream), limit: inflight{max: cfg.MaxInflight}}
	h.gates = append(h.gates, cfg.Gates...)
	if cfg.Breaker != nil {
		h.gates = append(h.gates, cfg.Breaker.Gate)
	}
	if cfg.Metrics != nil {
		h.limit.gauge = cfg.Metrics.IngestInflight.Add
	}
	for _, s := range cfg.Streams {
		h.streams[s.Name] = s
	}
	h.pool.New = func() any {
		st := &state{}
		st.parser.Limits = event.Limits{MaxFuture: cfg.MaxFuture}
		st.generic.maxFuture = cfg.MaxFuture
		st.checkCity = st.checkCityEvent
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
	if ref := h.admit(); ref != nil {
		return h.refuse(w, r, name, ref)
	}
	gz := strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip")
	if !gz && r.ContentLength > h.cfg.MaxBody {
		h.count(name, "malformed", 1)
		return h.tooLarge(w)
	}
	st := h.pool.Get().(*state)
	res := &st.flight.res
	*res = reservation{lim: &h.limit}
	if !gz && r.ContentLength > 0 && !res.add(r.ContentLength) {
		h.put(st)
		return h.refuse(w, r, name, h.limit.refusal())
	}
	if err := h.readBody(r, &st.body, gz, res); err != nil {
		res.done()
		h.put(st)
		var tooBig *http.MaxBytesError
		switch {
		case errors.Is(err, errOverloaded):
			return h.refuse(w, r, name, h.limit.refusal())
		case errors.As(err, &tooBig) || errors.Is(err, errTooLarge):
			h.count(name, "malformed", 1)
			return h.tooLarge(w)
		}
		h.count(name, "malformed", 1)
		return writeJSON(w, http.StatusBadRequest, errorBody{Error: "read body: " + err.Error()})
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	ndjson := ct == "application/x-ndjson" || ct == "application/jsonl"
	var err error
	var check checkFunc
	if s.Source.Schema == "city" {
		check = st.checkCity
	}
	st.items, err = splitBody(st.body.Bytes(), ndjson, &st.split, st.items[:0], check)
	if err != nil {
		res.done()
		h.put(st)
		h.count(name, "malformed", 1)
		var be *BodyError
		if errors.As(err, &be) {
			return writeJSON(w, http.StatusBadRequest, errorBody{Error: be.Error(), Line: be.Line})
		}
		return writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
	}
	if !res.add(int64(len(st.items)) * eventOverhead) {
		res.done()
		h.put(st)
		return h.refuse(w, r, name, h.limit.refusal())
	}
	return h.produce(w, r.Context(), s, st)
}

func (h *Handler) tooLarge(w http.ResponseWriter) int {
	return writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("request body is larger than %d bytes: split it into smaller batches", h.cfg.MaxBody)})
}

// put returns st to the pool unless it grew too large to keep.
func (h *Handler) put(st *state) {
	if st.poolable() {
		h.pool.Put(st)
	}
}

var (
	errTooLarge   = errors.New("decompressed body too large")
	errOverloaded = errors.New("in-flight limit reached")
)

// readBody reads the (decompressed) body into buf, reserving in res the
// bytes it holds beyond what res already holds as they are read.
func (h *Handler) readBody(r *http.Request, buf *bytes.Buffer, gz bool, res *reservation) error {
	buf.Reset()
	var body io.Reader = http.MaxBytesReader(nil, r.Body, h.cfg.MaxBody)
	if gz {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		body = zr
	} else if r.ContentLength > 0 {
		// One allocation of the right size instead of doubling.
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	n, err := buf.ReadFrom(&reservingReader{r: io.LimitReader(body, h.cfg.MaxBody+1), res: res})
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
		key, err := it.key, it.err
		switch {
		case it.checked:
		case s.Source.Schema == "city":
			if err = st.parser.Parse(it.raw, &r); err == nil {
				key = []byte(r.SensorID)
			}
		default:
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
	errs, complete := h.send(rctx, &st.flight, recs)
	if complete {
		// Otherwise the client still holds records that point into this
		// request's buffers: leave them to the garbage collector.
		defer h.put(st)
	}
	var failed []EventError
	var fault error
	stored := false
	for i, err := range errs {
		switch {
		case err == nil:
			stored = true
			if recs[i].Topic == s.Name {
				resp.Accepted++
			}
		case recs[i].Topic == s.Name:
			fault = err
			failed = append(failed, EventError{Index: i, Line: st.items[i].line, Error: err.Error()})
		default:
			// A rejected event whose dead-letter copy failed: say so in
			// its existing error.
			fault = err
			resp.Failed++
			for j := range resp.Errors {
				if resp.Errors[j].Index == i {
					resp.Errors[j].Error += "; writing it to the dead-letter topic failed too: " + err.Error()
				}
			}
		}
	}
	if h.cfg.Breaker != nil {
		if stored {
			fault = nil
		}
		h.cfg.Breaker.observe(fault)
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

package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// httpSender POSTs NDJSON batches to a Pulse ingest endpoint.
type httpSender struct {
	url    string
	client *http.Client
	st     *stats
	runCtx context.Context // ends the quiet retries of refused connections
	reqCtx context.Context // bounds requests in flight
	// quiet retries of refused connections end at the first of these
	graceEnd, deadline time.Time
}

func newHTTPSender(cfg Config, st *stats, runCtx, reqCtx context.Context, start time.Time) *httpSender {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * cfg.Concurrency,
		MaxIdleConnsPerHost: 2 * cfg.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	s := &httpSender{
		url:    strings.TrimSuffix(cfg.Target, "/") + "/v1/streams/" + cfg.Stream + "/events",
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		st:     st, runCtx: runCtx, reqCtx: reqCtx, graceEnd: start.Add(connectGrace),
	}
	if cfg.Duration > 0 {
		s.deadline = start.Add(cfg.Duration)
	}
	return s
}

func (s *httpSender) close() { s.client.CloseIdleConnections() }

func (s *httpSender) newWorker() worker { return &httpWorker{s: s} }

type httpWorker struct {
	s    *httpSender
	buf  []byte
	n    int
	resp ingestResponse
	// retryAfter is the answer's Retry-After delay; 0 without one.
	retryAfter time.Duration
}

// ingestResponse is the part of Pulse's ingest answer the sender reads.
type ingestResponse struct {
	Accepted int    `json:"accepted"`
	Rejected int    `json:"rejected"`
	Error    string `json:"error"`
	Errors   []struct {
		Index int    `json:"index"`
		Error string `json:"error"`
	} `json:"errors"`
}

func (w *httpWorker) fill(c *City, n int, now time.Time) {
	w.buf = w.buf[:0]
	for range n {
		w.buf = c.Append(w.buf, now)
	}
	w.n = n
}

func (w *httpWorker) send() {
	s := w.s
	for {
		begin := time.Now()
		code, err := w.post()
		if err != nil {
			if refused(err) && s.mayRetry() {
				s.st.waiting.Store(true)
				select { // the target is probably still starting
				case <-time.After(200 * time.Millisecond):
					continue
				case <-s.runCtx.Done():
				}
			}
			s.st.waiting.Store(false)
			s.st.done(w.n, 0, 0)
			s.st.warn("loadgen: send batch failed", "url", s.url, "events", w.n, "err", err)
			return
		}
		s.st.waiting.Store(false)
		s.st.lat.record(time.Since(begin))
		acc, rej := w.resp.Accepted, w.resp.Rejected
		if code != http.StatusOK && code != http.StatusServiceUnavailable {
			acc, rej = 0, 0 // a whole-request failure: nothing was taken
		}
		acc, rej = min(acc, w.n), min(rej, w.n-min(acc, w.n))
		s.st.done(w.n, acc, rej)
		if refusal := code != http.StatusOK && acc == 0 && rej == 0 && w.retryAfter > 0; refusal {
			// The target turned the request away unread (overloaded, lag,
			// broker down): wait as it asks before this worker's next one.
			s.st.refused.Add(uint64(w.n))
			s.st.warn("loadgen: target refused the batch, waiting as it asks", "url", s.url, "status", code,
				"retry_after", w.retryAfter, "error", w.resp.Error)
			select {
			case <-time.After(w.retryAfter):
			case <-s.runCtx.Done():
			}
			return
		}
		switch {
		case code != http.StatusOK:
			msg := w.resp.Error
			if msg == "" && len(w.resp.Errors) > 0 {
				msg = w.resp.Errors[0].Error
			}
			s.st.warn("loadgen: target answered an error", "url", s.url, "status", code, "events", w.n,
				"accepted", acc, "error", msg)
		case rej > 0 && len(w.resp.Errors) > 0:
			s.st.warn("loadgen: target rejected readings", "url", s.url, "rejected", rej,
				"first_error", w.resp.Errors[0].Error)
		}
		return
	}
}

// post sends the batch and decodes the answer into w.resp.
func (w *httpWorker) post() (int, error) {
	req, err := http.NewRequestWithContext(w.s.reqCtx, http.MethodPost, w.s.url, bytes.NewReader(w.buf))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := w.s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	w.resp = ingestResponse{Errors: w.resp.Errors[:0]}
	w.retryAfter = 0
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		w.retryAfter = time.Duration(min(secs, 60)) * time.Second
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body) // keep the connection reusable
	if err := json.Unmarshal(body, &w.resp); err != nil && resp.StatusCode == http.StatusOK {
		return 0, errors.New("answer is not Pulse's ingest JSON: " + err.Error())
	} else if err != nil {
		w.resp.Error = strings.TrimSpace(string(body[:min(len(body), 200)]))
	}
	return resp.StatusCode, nil
}

// mayRetry reports whether a refused connection is retried quietly.
func (s *httpSender) mayRetry() bool {
	now := time.Now()
	return s.runCtx.Err() == nil && now.Before(s.graceEnd) && (s.deadline.IsZero() || now.Before(s.deadline))
}

// refused reports whether err means nothing listens at the target yet.
func refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/checkfor"
)

// TestSlowClients opens many connections that send an ingest body a byte
// every 200 ms, more than --http-max-conns. Meanwhile /healthz answers and
// a normal ingest request gets through (after a 503 with Retry-After at
// worst); the slow bodies are cut off with 408; afterwards the
// connections are gone and nothing accepted is lost.
func TestSlowClients(t *testing.T) {
	in := newInstance(t, "--http-max-conns", "64", "--http-body-timeout", "2s", "--http-min-body-rate", "1024")
	p := in.start(t)

	const slow = 200
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[string]int{}
	)
	for range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outcome := slowBody(p.http)
			mu.Lock()
			statuses[outcome]++
			mu.Unlock()
		}()
	}

	// While they are open, health checks and ingest are served.
	plain := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	checkfor.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		resp, err := plain.Get(p.url("/healthz"))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/healthz: %d", resp.StatusCode)
		}
		return nil
	})
	base := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	rs := generate(5, "sc", 6, 2, base, 2*time.Minute, 5*time.Second, 500*time.Millisecond)
	end := base.Add(2 * time.Minute)
	rs = append(rs, sentinel("sc", end.Add(time.Minute)))
	var refused503 int
	checkfor.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		resp, err := plain.Post(p.url("/v1/streams/city/events"), "application/x-ndjson", bytes.NewReader(ndjson(rs)))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 503 {
			refused503++
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After: %s", b)
			}
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("ingest: %d %s", resp.StatusCode, b)
		}
		return nil
	})

	wg.Wait()
	t.Logf("slow bodies: %v; the normal ingest request was refused with 503 %d times first", statuses, refused503)
	if statuses["408"] == 0 {
		t.Errorf("no slow body was cut off with 408: %v", statuses)
	}
	for outcome, n := range statuses {
		if outcome == "200" || outcome == "held" {
			t.Errorf("%d slow bodies ended %q: %v", n, outcome, statuses)
		}
	}

	// The connections are gone, and the accepted event is counted.
	open := regexp.MustCompile(`(?m)^pulse_http_connections (\d+)$`)
	checkfor.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		resp, err := plain.Get(p.url("/metrics"))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := open.FindSubmatch(b)
		if m == nil {
			return fmt.Errorf("no pulse_http_connections in /metrics")
		}
		if n, _ := strconv.Atoi(string(m[1])); n > 4 {
			return fmt.Errorf("%d connections still open", n)
		}
		if !bytes.Contains(b, []byte(`pulse_http_refused_total{reason="slow_body"}`)) {
			return fmt.Errorf("no slow_body refusals counted")
		}
		return nil
	})
	want := oracle(rs[:len(rs)-1])
	compare(t, p.waitResults("to="+end.Format(time.RFC3339), len(want)), want)
}

// slowBody posts a 100 KB body a byte every 200 ms, for at most 60 s, and
// returns how it ended: the response status, "closed" when the server
// closed the connection without an answer, or "held" when it was still
// open at the end.
func slowBody(addr string) string {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "closed"
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/streams/city/events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n", addr)
	answer := make(chan string, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			answer <- "closed"
			return
		}
		resp.Body.Close()
		answer <- strconv.Itoa(resp.StatusCode)
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for range 300 {
		select {
		case a := <-answer:
			return a
		case <-tick.C:
			if _, err := c.Write([]byte(" ")); err != nil {
				return <-answer
			}
		}
	}
	return "held"
}

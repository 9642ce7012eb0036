package serve_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/serve"
)

// echoIngest stands in for ingest: it reads the body and answers 400 with
// the read error, as ingest does, or 200 after waiting wait (as ingest
// waits for the broker), reporting whether its context ended meanwhile.
func echoIngest(wait time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case <-time.After(wait):
		case <-r.Context().Done():
			http.Error(w, "context ended while waiting", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "got %d bytes", len(b))
	})
}

// request sends a raw HTTP/1.1 request on a new connection and returns
// the response.
func request(t *testing.T, base, method, path string, header map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if h, ok := header["Host"]; ok {
		req.Host = h
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestSlowBodyCutOff(t *testing.T) {
	base, _ := startServer(t, func(c *serve.Config) {
		c.Ingest = echoIngest(0)
		c.BodyTimeout = 300 * time.Millisecond
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/streams/city/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
	// A byte at a time until the server answers: bounded by the count.
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			answered <- resp
		}
		close(answered)
	}()
	var resp *http.Response
	for i := 0; i < 100_000 && resp == nil; i++ {
		if _, err := conn.Write([]byte("[")); err != nil {
			break // the server closed the connection
		}
		select {
		case resp = <-answered:
		case <-time.After(20 * time.Millisecond):
		}
	}
	if resp == nil {
		resp = <-answered
	}
	if resp == nil {
		t.Fatal("no answer to a body sent a byte at a time")
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "arrived too slowly") {
		t.Fatalf("slow body: %d %s; want 408 saying it arrived too slowly", resp.StatusCode, b)
	}

	// A body sent at once is served.
	if resp, body := request(t, base, "POST", "/v1/streams/city/events", map[string]string{"Content-Type": "application/json"}, `[{"a":1}]`); resp.StatusCode != 200 {
		t.Fatalf("normal body: %d %s", resp.StatusCode, body)
	}
}

// TestUnreadBodyCutOff: a handler that answers without reading the body
// (ingest for an unknown stream) leaves net/http discarding it to keep
// the connection; a body that trickles in must not hold the connection.
func TestUnreadBodyCutOff(t *testing.T) {
	base, _ := startServer(t, func(c *serve.Config) {
		c.Ingest = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "unknown stream", http.StatusNotFound)
		})
		c.BodyTimeout = 200 * time.Millisecond
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Without the cut-off net/http holds even the answer until the body is
	// discarded: bound the test.
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "POST /v1/streams/nope/events HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 404 {
		t.Fatalf("status %d, want 404", resp.StatusCode)
	}
	closed := make(chan struct{})
	go func() {
		br.ReadByte() // returns when the server closes the connection
		close(closed)
	}()
	for range 1000 { // a byte every 10 ms, 10 s at most
		if _, err := conn.Write([]byte(" ")); err != nil {
			return
		}
		select {
		case <-closed:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("a trickling body that the handler did not read still holds its connection")
}

// TestBodyDeadlineLiftedForHandler: a handler that waits after reading
// its body (ingest waiting for the broker) longer than the body deadline
// keeps its context and answers.
func TestBodyDeadlineLiftedForHandler(t *testing.T) {
	base, _ := startServer(t, func(c *serve.Config) {
		c.Ingest = echoIngest(600 * time.Millisecond)
		c.BodyTimeout = 100 * time.Millisecond
	})
	resp, body := request(t, base, "POST", "/v1/streams/city/events", map[string]string{"Content-Type": "application/json"}, `[{"a":1}]`)
	if resp.StatusCode != 200 || body != "got 9 bytes" {
		t.Fatalf("%d %s; want 200 got 9 bytes", resp.StatusCode, body)
	}
}

func TestHostCheck(t *testing.T) {
	base, _ := startServer(t, func(c *serve.Config) { c.AllowHosts = []string{"pulse.lan"} })
	port := base[strings.LastIndex(base, ":"):]
	for host, want := range map[string]int{
		"evil.example" + port: 403, "evil.example": 403, "localhost" + port: 200, "127.0.0.1" + port: 200,
		"[::1]" + port: 200, "pulse.lan" + port: 200, "PULSE.LAN.": 200, "app.localhost" + port: 200,
	} {
		resp, body := request(t, base, "GET", "/healthz", map[string]string{"Host": host}, "")
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d %s, want %d", host, resp.StatusCode, body, want)
		}
		if want == 403 && !strings.Contains(body, "--http-allow-host") {
			t.Errorf("Host %q: %s does not say how to allow it", host, body)
		}
	}
}

func TestHostCheckOnlyOnLoopback(t *testing.T) {
	base, _ := startServer(t, func(c *serve.Config) { c.Addr = "0.0.0.0:0" })
	port := base[strings.LastIndex(base, ":"):]
	resp, body := request(t, "http://127.0.0.1"+port, "GET", "/healthz", map[string]string{"Host": "pulse.example.com"}, "")
	if resp.StatusCode != 200 {
		t.Fatalf("Host pulse.example.com on 0.0.0.0: %d %s; want 200", resp.StatusCode, body)
	}
}

func TestCrossOriginWritesRefused(t *testing.T) {
	base, _ := startServer(t, func(c *serve.Config) { c.Ingest = echoIngest(0) })
	host := strings.TrimPrefix(base, "http://")
	for _, c := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"page of another site", map[string]string{"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, 403},
		{"page on another port", map[string]string{"Content-Type": "text/plain", "Sec-Fetch-Site": "same-site", "Origin": "http://localhost:3000"}, 403},
		{"old browser, Origin only", map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example"}, 403},
		{"same origin", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin", "Origin": "http://" + host}, 200},
		{"command-line client", map[string]string{"Content-Type": "application/json"}, 200},
	} {
		resp, body := request(t, base, "POST", "/v1/streams/city/events", c.header, `[{"a":1}]`)
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, resp.StatusCode, body, c.want)
		}
	}
	// Reads stay open to other origins.
	if resp, body := request(t, base, "GET", "/healthz", map[string]string{"Sec-Fetch-Site": "cross-site"}, ""); resp.StatusCode != 200 {
		t.Errorf("cross-site GET /healthz: %d %s", resp.StatusCode, body)
	}
}

func TestProfilerOnlyOnDebugListener(t *testing.T) {
	srv, _ := runServer(t, nil)
	if resp, _ := request(t, "http://"+srv.Addr(), "GET", "/debug/pprof/", nil, ""); resp.StatusCode != 404 {
		t.Errorf("public /debug/pprof/ without --debug-listen: %d, want 404", resp.StatusCode)
	}
	if srv.DebugAddr() != "" {
		t.Errorf("a profiler listens on %s without --debug-listen", srv.DebugAddr())
	}
	srv, _ = runServer(t, func(c *serve.Config) { c.DebugAddr = "127.0.0.1:0" })
	if resp, _ := request(t, "http://"+srv.Addr(), "GET", "/debug/pprof/", nil, ""); resp.StatusCode != 404 {
		t.Errorf("public /debug/pprof/ with --debug-listen: %d, want 404", resp.StatusCode)
	}
	if resp, body := request(t, "http://"+srv.DebugAddr(), "GET", "/debug/pprof/", nil, ""); resp.StatusCode != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("profiler listener /debug/pprof/: %d", resp.StatusCode)
	}
	if resp, _ := request(t, "http://"+srv.DebugAddr(), "GET", "/debug/pprof/", map[string]string{"Host": "rebound.example"}, ""); resp.StatusCode != 403 {
		t.Errorf("profiler listener with Host rebound.example: %d, want 403", resp.StatusCode)
	}
}

// TestConnectionCap fills the server's connections with idle clients:
// health checks still answer on the reserve, other requests get 503, and
// past the reserve a new connection is closed at once.
func TestConnectionCap(t *testing.T) {
	const max = 4
	base, _ := startServer(t, func(c *serve.Config) { c.MaxConns = max })
	addr := strings.TrimPrefix(base, "http://")
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	open := func(n int) {
		for range n {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			idle = append(idle, c)
		}
	}
	// The server has accepted them once /metrics, served on the reserve,
	// counts them and itself.
	connections := func(want int) func() error {
		return func() error {
			resp, body := request(t, base, "GET", "/metrics", nil, "")
			if resp.StatusCode != 200 || !strings.Contains(body, fmt.Sprintf("\npulse_http_connections %d\n", want)) {
				return fmt.Errorf("/metrics %d does not count %d connections", resp.StatusCode, want)
			}
			return nil
		}
	}
	open(max)
	checkfor.CheckFor(t, 10*time.Second, 10*time.Millisecond, connections(max+1))
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, body := request(t, base, "GET", path, nil, ""); resp.StatusCode != 200 {
			t.Errorf("%s while full: %d %s", path, resp.StatusCode, body)
		}
	}
	resp, body := request(t, base, "GET", "/v1/pipelines", nil, "")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "--http-max-conns") {
		t.Errorf("/v1/pipelines while full: %d %q %s; want 503 with Retry-After naming --http-max-conns", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}

	// Past the reserve a connection is closed before it sends anything.
	// A connection that is held open instead took a slot the server had
	// not yet given back (an earlier reserve connection closing after its
	// one request): keep it, so the slots fill, and dial again.
	open(serve.ReserveConns)
	checkfor.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil // refused: fine too
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			idle = append(idle, c)
			return fmt.Errorf("a connection past the reserve was held open (read: %v)", err)
		}
		c.Close()
		return nil
	})

	// Once the idle clients go, the server serves as before.
	for _, c := range idle {
		c.Close()
	}
	idle = nil
	checkfor.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(base + "/v1/pipelines")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/v1/pipelines: %d after the idle clients left", resp.StatusCode)
		}
		return nil
	})
}

func TestHeaderLimit(t *testing.T) {
	base, _ := startServer(t, nil)
	resp, _ := request(t, base, "GET", "/healthz", map[string]string{"Cookie": strings.Repeat("a", 40<<10)}, "")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("40 KiB header: %d, want 431", resp.StatusCode)
	}
	if resp, body := request(t, base, "GET", "/healthz", map[string]string{"Cookie": strings.Repeat("a", 8<<10)}, ""); resp.StatusCode != 200 {
		t.Fatalf("8 KiB header: %d %s", resp.StatusCode, body)
	}
}

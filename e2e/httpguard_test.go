package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestHTTPGuards checks with the binary that the profiler is only on
// --debug-listen, that a rebinding Host name is refused on loopback and
// that a web page of another origin cannot post events, while a plain
// client can.
func TestHTTPGuards(t *testing.T) {
	debug := freeAddr(t)
	in := newInstance(t, "--debug-listen", debug)
	p := in.start(t)
	do := func(method, url string, header map[string]string, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		if h, ok := header["Host"]; ok {
			req.Host = h
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := do("GET", p.url("/debug/pprof/"), nil, ""); code != 404 {
		t.Errorf("/debug/pprof/ on --http: %d, want 404", code)
	}
	if code, body := do("GET", "http://"+debug+"/debug/pprof/", nil, ""); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ on --debug-listen: %d", code)
	}
	if code, body := do("GET", p.url("/v1/pipelines"), map[string]string{"Host": "attacker.example:8080"}, ""); code != 403 || !strings.Contains(body, "--http-allow-host") {
		t.Errorf("Host attacker.example: %d %s, want 403 naming --http-allow-host", code, body)
	}
	event := `{"sensor_id":"S-1","zone":"z","time":"2026-03-01T06:00:00Z","type":"air","pm25":3}`
	page := map[string]string{"Content-Type": "text/plain", "Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"}
	if code, body := do("POST", p.url("/v1/streams/city/events"), page, event); code != 403 {
		t.Errorf("cross-site text/plain POST: %d %s, want 403", code, body)
	}
	if code, body := do("POST", p.url("/v1/streams/city/events"), map[string]string{"Content-Type": "application/x-ndjson"}, event); code != 200 {
		t.Errorf("plain client POST: %d %s, want 200", code, body)
	}
	p.stop()
}

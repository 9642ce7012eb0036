package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pulseBin is built with the race detector; pulseFastBin without it, for
// the tests that push a million events through.
var pulseBin, pulseFastBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pulse-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pulseBin = filepath.Join(dir, "pulse")
	pulseFastBin = filepath.Join(dir, "pulse-fast")
	for bin, flags := range map[string][]string{pulseBin: {"-race"}, pulseFastBin: nil} {
		build := exec.Command("go", append(append([]string{"build"}, flags...), "-o", bin, "../cmd/pulse")...)
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build pulse:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a running pulse process.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	http  string
	kafka string
	log   *syncBuffer
	done  chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// instance describes how to start pulse: the same data dir and ports on
// every restart.
type instance struct {
	dataDir, http, kafka string
	extra                []string
	bin                  string // default pulseBin
}

func newInstance(t *testing.T, extra ...string) *instance {
	return &instance{dataDir: t.TempDir(), http: freeAddr(t), kafka: freeAddr(t), extra: extra}
}

func (in *instance) start(t *testing.T) *proc {
	t.Helper()
	p := in.launch(t)
	p.waitReady()
	return p
}

// launch starts the binary without waiting for it to be ready, for tests
// where Pulse may rightly stop during startup.
func (in *instance) launch(t *testing.T) *proc {
	t.Helper()
	args := append([]string{"run",
		"--data-dir", in.dataDir, "--http", in.http, "--kafka-listen", in.kafka,
		"--partitions", "4", "--max-out-of-orderness", "1s", "--idle-timeout", "2s",
		"--checkpoint-interval", "200ms", "--max-future", "0",
	}, in.extra...)
	bin := in.bin
	if bin == "" {
		bin = pulseBin
	}
	cmd := exec.Command(bin, args...)
	p := &proc{t: t, cmd: cmd, http: in.http, kafka: in.kafka, log: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("pulse log:\n%s", p.log.String())
		}
	})
	return p
}

func (p *proc) url(path string) string { return "http://" + p.http + path }

func (p *proc) waitReady() {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.t.Fatalf("pulse exited before it was ready: %v\n%s", err, p.log.String())
		default:
		}
		resp, err := http.Get(p.url("/readyz"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("pulse not ready after 60s\n%s", p.log.String())
}

// stop sends SIGTERM and requires a clean exit within 10 s.
func (p *proc) stop() {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Fatalf("pulse exited with %v after SIGTERM\n%s", err, p.log.String())
		}
		p.t.Logf("pulse stopped in %s", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		// SIGQUIT makes the Go runtime write every goroutine's stack to
		// stderr (the log): where it hangs.
		p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
		p.t.Fatalf("pulse did not stop within 10s of SIGTERM\n%s", p.log.String())
	}
}

// kill sends SIGKILL, like a crash.
func (p *proc) kill() {
	p.t.Helper()
	p.cmd.Process.Kill()
	<-p.done
}

type ingestResponse struct {
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
	Errors   []struct {
		Index int    `json:"index"`
		Error string `json:"error"`
	} `json:"errors"`
}

func (p *proc) post(body []byte, contentType string) (int, ingestResponse, string) {
	p.t.Helper()
	return p.postTo("city", body, contentType)
}

func (p *proc) postTo(stream string, body []byte, contentType string) (int, ingestResponse, string) {
	p.t.Helper()
	resp, err := http.Post(p.url("/v1/streams/"+stream+"/events"), contentType, bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ir ingestResponse
	_ = json.Unmarshal(raw, &ir)
	return resp.StatusCode, ir, string(raw)
}

// resultRow is one row of the results API.
type resultRow map[string]any

func (r resultRow) key() string {
	k := r["key"].(map[string]any)
	for f, v := range k {
		return r["output"].(string) + "|" + f + "=" + v.(string) + "|" + r["window_start"].(string)
	}
	return ""
}

func (p *proc) results(query string) []resultRow {
	p.t.Helper()
	return p.pipelineResults("city", query)
}

// pipelineResults returns every row the query matches, following the
// API's next cursors past its 10,000-row pages.
func (p *proc) pipelineResults(pipeline, query string) []resultRow {
	p.t.Helper()
	var rows []resultRow
	after := ""
	for {
		q := query
		if after != "" {
			q += "&after=" + url.QueryEscape(after)
		}
		resp, err := http.Get(p.url("/v1/pipelines/" + pipeline + "/results?" + q))
		if err != nil {
			p.t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			p.t.Fatalf("results: %d %s", resp.StatusCode, b)
		}
		var out struct {
			Results []resultRow `json:"results"`
			Next    string      `json:"next"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil {
			p.t.Fatal(err)
		}
		rows = append(rows, out.Results...)
		if out.Next == "" {
			return rows
		}
		after = out.Next
	}
}

// waitResults polls the results API until it holds want rows.
func (p *proc) waitResults(query string, want int) []resultRow {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var rows []resultRow
	for ctx.Err() == nil {
		rows = p.results(query)
		if len(rows) >= want {
			return rows
		}
		time.Sleep(200 * time.Millisecond)
	}
	var lines []string
	for _, m := range []string{"pulse_pipeline_events_total", "pulse_pipeline_consumer_lag", "pulse_late_events_total", "pulse_pipeline_rejected_events_total", "pulse_pipeline_watermark_seconds", "pulse_pipeline_open_windows"} {
		lines = append(lines, m+"="+metricValue(p.t, p, m+`{pipeline="city"}`))
	}
	p.t.Fatalf("results %q: %d rows after 60s, want %d; %s", query, len(rows), want, strings.Join(lines, " "))
	return nil
}

// waitMetric polls /metrics until the named sample reaches at least min.
func waitMetric(t *testing.T, p *proc, name string, min float64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if v, err := strconv.ParseFloat(metricValue(t, p, name), 64); err == nil && v >= min {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not reach %v within 60s", name, min)
}

func metricValue(t *testing.T, p *proc, name string) string {
	t.Helper()
	resp, err := http.Get(p.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	return ""
}

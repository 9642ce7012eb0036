package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pulsehq/pulse/internal/checkfor"
)

// readyz is /readyz's status code and body.
type readyz struct {
	code   int
	Status string `json:"status"`
	Reason string `json:"reason"`
	Comps  []struct {
		Name   string `json:"name"`
		Ready  bool   `json:"ready"`
		Reason string `json:"reason"`
	} `json:"components"`
	raw string
}

func (p *proc) readyz() (readyz, error) {
	resp, err := http.Get(p.url("/readyz"))
	if err != nil {
		return readyz{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := readyz{code: resp.StatusCode, raw: string(b)}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("readyz body %q: %w", b, err)
	}
	return r, nil
}

// component returns the named component's reason, and whether it is ready.
func (r readyz) component(name string) (bool, string, bool) {
	for _, c := range r.Comps {
		if c.Name == name {
			return c.Ready, c.Reason, true
		}
	}
	return false, "", false
}

// TestBrokerUnreachableAtStart starts Pulse with --brokers at a port where
// nothing listens: it keeps running, serves /healthz and a /readyz that
// names the broker and the cause, and once a broker starts on that port it
// becomes ready and computes exact results.
func TestBrokerUnreachableAtStart(t *testing.T) {
	kafka := freeAddr(t)
	in := newInstance(t, "--brokers", kafka)
	in.kafka = ""
	p := in.launch(t)

	checkfor.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		select {
		case err := <-p.done:
			t.Fatalf("pulse exited while the broker was unreachable: %v\n%s", err, p.log.String())
		default:
		}
		resp, err := http.Get(p.url("/healthz"))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/healthz %d", resp.StatusCode)
		}
		r, err := p.readyz()
		if err != nil {
			return err
		}
		ready, reason, ok := r.component("kafka")
		if r.code != 503 || r.Status != "not ready" || !ok || ready ||
			!strings.Contains(reason, kafka) || !strings.Contains(reason, "connection refused") {
			return fmt.Errorf("/readyz %d %s: want 503 with component kafka naming %s and the cause", r.code, r.raw, kafka)
		}
		return nil
	})
	// Still up and still saying why after a few more tries.
	checkfor.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if n := strings.Count(p.log.String(), "Kafka does not answer"); n != 1 {
			return fmt.Errorf("%d lines about the unreachable broker, want 1 (one per cause)", n)
		}
		if len(p.done) > 0 {
			t.Fatalf("pulse exited while the broker was unreachable\n%s", p.log.String())
		}
		return nil
	})

	_, port, err := net.SplitHostPort(kafka)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(n))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	p.waitReady()
	if !strings.Contains(p.log.String(), "Kafka answers") {
		t.Errorf("no line saying Kafka answers\n%s", p.log.String())
	}

	base := time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)
	rs := generate(7, "ub", 6, 2, base, 2*time.Minute, 5*time.Second, 500*time.Millisecond)
	end := base.Add(2 * time.Minute)
	rs = append(rs, sentinel("ub", end.Add(time.Minute)))
	if code, ir, raw := p.post(ndjson(rs), "application/x-ndjson"); code != 200 || ir.Accepted != len(rs) {
		t.Fatalf("ingest: %d %s", code, raw)
	}
	want := oracle(rs[:len(rs)-1])
	compare(t, p.waitResults("to="+end.Format(time.RFC3339), len(want)), want)
	p.stop()
}

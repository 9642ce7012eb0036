package e2e

import (
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/checkfor"
)

// pgCluster is a PostgreSQL cluster of one test's own (Debian's
// pg_createcluster, as root), so that the test can stop and start it
// without disturbing the tests that share the PG* server.
type pgCluster struct {
	t             *testing.T
	version, name string
	url           string
}

func newPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	if _, err := exec.LookPath("pg_createcluster"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test stops a PostgreSQL cluster of its own: it needs root and pg_createcluster (apt-get install postgresql)")
		}
		t.Skip("needs root and pg_createcluster (postgresql-common) to start a PostgreSQL cluster of its own")
	}
	version := os.Getenv("PGVERSION")
	if version == "" {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		if len(dirs) == 0 {
			t.Fatal("no PostgreSQL server installed (/usr/lib/postgresql/*/bin/initdb)")
		}
		slices.Sort(dirs)
		version = filepath.Base(filepath.Dir(filepath.Dir(dirs[len(dirs)-1])))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	b := make([]byte, 4)
	crand.Read(b)
	c := &pgCluster{t: t, version: version, name: "pulse-" + hex.EncodeToString(b),
		url: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)}
	c.run("pg_createcluster", version, c.name, "-p", fmt.Sprint(port), "--start", "--", "-A", "trust")
	t.Cleanup(func() { c.run("pg_dropcluster", "--stop", version, c.name) })
	return c
}

func (c *pgCluster) run(name string, args ...string) {
	c.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func (c *pgCluster) stop()  { c.run("pg_ctlcluster", c.version, c.name, "stop", "-m", "fast") }
func (c *pgCluster) start() { c.run("pg_ctlcluster", c.version, c.name, "start") }

// TestPostgresOutage stops the PostgreSQL server Pulse stores its results
// in for 20 s while readings arrive, and starts it again: ingest and the
// pipelines go on meanwhile, the sink says once that it failed and once
// that it works again, pulse_sink_up is 0 and then 1, and the stored
// results equal the batch computation, without a gap or a duplicate.
func TestPostgresOutage(t *testing.T) {
	pg := newPGCluster(t)
	p := newInstance(t, "--db", pg.url).start(t)
	const total = 40_000
	feed := &airFeed{prefix: "po", sensors: 300, zones: 10, base: time.Date(2026, 5, 3, 7, 0, 0, 0, time.UTC),
		step: 5 * time.Millisecond, rng: rand.New(rand.NewPCG(4, 4)), want: map[string]*aggregate{}}
	feed.post(p, 0, total/2)
	upserted := `pulse_sink_rows_total{outcome="upserted",sink="postgres"}`
	waitMetric(t, p, upserted, 1)

	pg.stop()
	down := time.Now()
	feed.post(p, total/2, total)
	end := feed.maxTS.Truncate(time.Minute).Add(time.Minute)
	p.mustPost([]byte(sentinel("po", end.Add(time.Minute)).json()))
	checkfor.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if v := metricValue(t, p, `pulse_sink_up{sink="postgres"}`); v != "0" {
			return fmt.Errorf("pulse_sink_up = %q while the database is stopped, want 0", v)
		}
		return nil
	})
	// The pipelines go on: their results wait in Kafka.
	waitMetric(t, p, `pulse_pipeline_events_total{pipeline="city"}`, total)
	<-time.After(time.Until(down.Add(20 * time.Second))) // the outage lasts 20 s
	pg.start()

	query := "to=" + end.Format(time.RFC3339) + "&limit=1000000"
	compare(t, p.waitResults(query, len(feed.want)), feed.want)
	log := p.log.String()
	if n := strings.Count(log, "postgres sink failed"); n != 1 {
		t.Errorf("%d lines say the sink failed during one outage, want 1", n)
	}
	if n := strings.Count(log, "postgres sink works again"); n != 1 {
		t.Errorf("%d lines say the sink works again after one outage, want 1", n)
	}
	if v := metricValue(t, p, `pulse_sink_up{sink="postgres"}`); v != "1" {
		t.Errorf("pulse_sink_up = %q after the outage, want 1", v)
	}
	// The sink retried with its backoff (0.5 s doubling to 10 s).
	failures, _ := strconv.Atoi(metricValue(t, p, `pulse_sink_failures_total{sink="postgres"}`))
	if failures < 2 {
		t.Errorf("pulse_sink_failures_total = %d after a 20 s outage, want retries (at least 2)", failures)
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "postgres sink") {
			t.Logf("%s", line)
		}
	}
	t.Logf("pulse_sink_failures_total = %d", failures)
	p.stop()
}

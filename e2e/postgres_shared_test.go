package e2e

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/checkfor"
)

// TestSharedPostgresPaused runs two Pulse processes that store their
// results in one PostgreSQL database, so that they split its result
// partitions between them, and pauses one (SIGSTOP) past its session
// timeout while readings arrive: the other claims its partitions and
// stores their results. The paused one is resumed, more readings arrive,
// and the stored results equal the batch computation, row for row.
func TestSharedPostgresPaused(t *testing.T) {
	db, _ := pgSchema(t)
	total := 120_000
	if testing.Short() {
		total = 30_000
	}
	groups := []string{"--session-timeout", "6s", "--transaction-timeout", "6s", "--db", db}
	first := newInstance(t, groups...)
	first.bin = pulseFastBin
	a := first.start(t)
	second := newInstance(t, append([]string{"--brokers", a.kafka}, groups...)...)
	second.kafka = ""
	second.bin = pulseFastBin
	b := second.start(t)

	feed := &airFeed{prefix: "pg", sensors: 500, zones: 20, base: time.Date(2026, 5, 2, 7, 0, 0, 0, time.UTC),
		step: 4 * time.Millisecond, rng: rand.New(rand.NewPCG(3, 3)), want: map[string]*aggregate{}}
	feed.post(a, 0, total/3)
	// Both store results: each was given some of the result partitions.
	for _, p := range []*proc{a, b} {
		waitMetric(t, p, `pulse_sink_rows_total{outcome="upserted",sink="postgres"}`, 1)
	}
	claimsBefore := strings.Count(a.log.String(), "result partitions claimed")

	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	feed.post(a, total/3, 2*total/3)
	// B's session times out: A claims its partitions too.
	checkfor.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		if n := strings.Count(a.log.String(), "result partitions claimed"); n <= claimsBefore {
			return fmt.Errorf("A claimed partitions %d times, as before B was paused", n)
		}
		return nil
	})
	// B stays paused until A has stored results since.
	upserted := `pulse_sink_rows_total{outcome="upserted",sink="postgres"}`
	before, _ := strconv.ParseFloat(metricValue(t, a, upserted), 64)
	waitMetric(t, a, upserted, before+1)
	if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	feed.post(b, 2*total/3, total)
	end := feed.maxTS.Truncate(time.Minute).Add(time.Minute)
	a.mustPost([]byte(sentinel("pg", end.Add(time.Minute)).json()))
	query := "to=" + end.Format(time.RFC3339) + "&limit=1000000"
	compare(t, a.waitResults(query, len(feed.want)), feed.want)
	compare(t, b.waitResults(query, len(feed.want)), feed.want)
	for _, line := range strings.Split(b.log.String(), "\n") {
		if strings.Contains(line, "claimed") || strings.Contains(line, "sink failed") || strings.Contains(line, "works again") {
			t.Logf("B: %s", line)
		}
	}
	b.stop()
	a.stop()
}

// TestCrashExactPostgres is TestCrashExact with the results in
// PostgreSQL: 5 times, once the sink is storing the results of a chunk of
// readings, pulse is killed (kill -9) at a random moment and started
// again; the stored rows equal the batch computation, row for row.
func TestCrashExactPostgres(t *testing.T) {
	db, conn := pgSchema(t)
	total, kills := 300_000, 5
	if testing.Short() {
		total = 60_000
	}
	rng := rand.New(rand.NewPCG(5, 5))
	feed := &airFeed{prefix: "cp", sensors: 1000, zones: 40, base: time.Date(2026, 5, 4, 7, 0, 0, 0, time.UTC),
		step: 2 * time.Millisecond, rng: rng, want: map[string]*aggregate{}}
	in := newInstance(t, "--db", db)
	in.bin = pulseFastBin
	p := in.start(t)
	upserted := `pulse_sink_rows_total{outcome="upserted",sink="postgres"}`
	chunk := total / kills
	for k := range kills {
		feed.post(p, k*chunk, (k+1)*chunk)
		// Kill while the sink stores: after its first rows of this life.
		waitMetric(t, p, upserted, 1)
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		p.kill()
		p = in.start(t)
	}
	end := feed.maxTS.Truncate(time.Minute).Add(time.Minute)
	p.mustPost([]byte(sentinel("cp", end.Add(time.Minute)).json()))
	compare(t, p.waitResults("to="+end.Format(time.RFC3339)+"&limit=1000000", len(feed.want)), feed.want)
	p.stop()
	// The typed rows, read with SQL, are the same.
	compare(t, append(storedRows(t, conn, "sensor_1m", "sensor_id", end), storedRows(t, conn, "zone_1m", "zone", end)...), feed.want)
}

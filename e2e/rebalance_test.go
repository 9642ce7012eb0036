package e2e

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRebalanceExact runs two Pulse processes in one set of consumer
// groups: A serves the embedded broker and starts alone; B joins it with
// --brokers while A works through the first third of the readings, so the
// groups move half of A's partitions, with their window state, to B. Once
// B processes its share, it is killed with kill -9 in the middle of its
// work; A takes over B's partitions after the session timeout, restores
// their window state from the changelogs, and the results stored by A
// equal a batch computation over every reading, row for row.
func TestRebalanceExact(t *testing.T) {
	total := 300_000
	if testing.Short() {
		total = 60_000
	}
	const sensors, zones = 1000, 40
	a, second := twoProcesses(t)

	rng := rand.New(rand.NewPCG(9, 9))
	base := time.Date(2026, 5, 1, 7, 0, 0, 0, time.UTC)
	feed := &airFeed{prefix: "rb", sensors: sensors, zones: zones, base: base, step: 4 * time.Millisecond, rng: rng, want: map[string]*aggregate{}}
	post := func(from, to int) { feed.post(a, from, to) }

	// A works alone, then B joins while A is busy.
	post(0, total/3)
	waitMetric(t, a, `pulse_pipeline_events_total{pipeline="city"}`, float64(total/30))
	b := second.start(t)
	// Both processes work: B's shuffle stage reads source partitions and
	// its window stage holds tasks.
	post(total/3, 2*total/3)
	waitMetric(t, b, `pulse_pipeline_events_total{pipeline="city"}`, float64(total/20))
	waitLog(t, b, "window tasks restored")
	if n := metricValue(t, a, `pulse_pipeline_events_total{pipeline="city"}`); n == "" || n == "0" {
		t.Fatalf("A processed no events while B did: the work is not shared")
	}
	restoredBefore := strings.Count(a.log.String(), "window tasks restored")
	b.kill()

	post(2*total/3, total)
	want := feed.want
	end := feed.maxTS.Truncate(time.Minute).Add(time.Minute)
	a.mustPost([]byte(sentinel("rb", end.Add(time.Minute)).json()))
	rows := a.waitResults("to="+end.Format(time.RFC3339)+"&limit=1000000", len(want))
	compare(t, rows, want)

	// A restored B's tasks from their changelogs.
	restored := regexp.MustCompile(`msg="window tasks restored" pipeline=city tasks=\d+ records=([1-9]\d*)`)
	var took bool
	for _, line := range strings.Split(a.log.String(), "\n") {
		if strings.Contains(line, "window tasks restored") {
			if restoredBefore--; restoredBefore < 0 && restored.MatchString(line) {
				took = true
			}
		}
	}
	if !took {
		t.Errorf("A did not restore any window task from a changelog after B died:\n%s", a.log.String())
	}
	a.stop()
}

// waitLog waits until p's log contains s.
func waitLog(t *testing.T, p *proc, s string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(p.log.String(), s) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%q not logged within 60s:\n%s", s, p.log.String())
}

// TestRebalanceChurn kills B with kill -9 at random moments while both
// processes work, and restarts it each time with the same data dir (so it
// takes its old place in the groups at once, and fences the transactions
// its previous life left open). In the end both processes' stores, each
// fed from every result partition, equal the batch computation.
func TestRebalanceChurn(t *testing.T) {
	total, rounds := 200_000, 4
	if testing.Short() {
		total = 40_000
	}
	a, second := twoProcesses(t)
	b := second.start(t)

	rng := rand.New(rand.NewPCG(11, 11))
	feed := &airFeed{prefix: "ch", sensors: 800, zones: 30, base: time.Date(2026, 5, 2, 7, 0, 0, 0, time.UTC),
		step: 4 * time.Millisecond, rng: rng, want: map[string]*aggregate{}}
	chunk := total / rounds
	for k := range rounds {
		// Alternate the ingest side: both processes take events.
		target := a
		if k%2 == 1 {
			target = b
		}
		feed.post(target, k*chunk, (k+1)*chunk)
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		b.kill()
		b = second.start(t)
	}
	end := feed.maxTS.Truncate(time.Minute).Add(time.Minute)
	a.mustPost([]byte(sentinel("ch", end.Add(time.Minute)).json()))
	query := "to=" + end.Format(time.RFC3339) + "&limit=1000000"
	compare(t, a.waitResults(query, len(feed.want)), feed.want)
	compare(t, b.waitResults(query, len(feed.want)), feed.want)
	b.stop()
	a.stop()
}

// twoProcesses starts A, which serves the embedded broker, and returns it
// with the instance of B, which joins A's broker with --brokers; both with
// short session and transaction timeouts so that a dead B's partitions
// move within seconds.
func twoProcesses(t *testing.T) (*proc, *instance) {
	groups := []string{"--session-timeout", "6s", "--transaction-timeout", "6s"}
	first := newInstance(t, groups...)
	first.bin = pulseFastBin
	a := first.start(t)
	second := newInstance(t, append([]string{"--brokers", a.kafka}, groups...)...)
	second.kafka = ""
	second.bin = pulseFastBin
	return a, second
}

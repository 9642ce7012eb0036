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
	groups := []string{"--session-timeout", "6s", "--transaction-timeout", "6s"}
	first := newInstance(t, groups...)
	first.bin = pulseFastBin
	a := first.start(t)
	second := newInstance(t, append([]string{"--brokers", a.kafka}, groups...)...)
	second.kafka = ""
	second.bin = pulseFastBin

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

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/checkfor"
)

// TestReadyzComponents checks that a running Pulse lists every component
// in /readyz, each ready.
func TestReadyzComponents(t *testing.T) {
	p := newInstance(t).start(t)
	r, err := p.readyz()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kafka", "topics", "sqlite sink", "pipeline city windows", "pipeline city shuffle"} {
		if ready, reason, ok := r.component(name); !ok || !ready {
			t.Errorf("component %q: listed %v, ready %v (%s); want listed and ready\n%s", name, ok, ready, reason, r.raw)
		}
	}
	p.stop()
}

// TestDeletedResultTopic deletes a result topic with a Kafka client while
// Pulse runs, after the SQLite sink stored what it held: Pulse creates it
// again with its partitions, becomes ready, and the results of what was
// ingested before and after are exact.
func TestDeletedResultTopic(t *testing.T) { deletedTopic(t, "city.sensor_1m", false) }

// TestDeletedRepartitionTopic is TestDeletedResultTopic for a repartition
// topic, deleted once the window stage has read it.
func TestDeletedRepartitionTopic(t *testing.T) { deletedTopic(t, "city.sensor_1m.repartition", false) }

// TestDeletedChangelogTopic is TestDeletedResultTopic for a changelog
// topic: the state it held of the window still open (the sentinel's) is
// gone with it; every other result is exact.
func TestDeletedChangelogTopic(t *testing.T) { deletedTopic(t, "city.sensor_1m.changelog", true) }

func deletedTopic(t *testing.T, topic string, openLost bool) {
	in := newInstance(t, "--stall-timeout", "3s")
	p := in.start(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	base := time.Date(2026, 3, 3, 6, 0, 0, 0, time.UTC)
	before := generate(9, "dt", 6, 2, base, 2*time.Minute, 5*time.Second, 500*time.Millisecond)
	end := base.Add(2 * time.Minute)
	before = append(before, sentinel("dt", end.Add(time.Minute)))
	if code, ir, raw := p.post(ndjson(before), "application/x-ndjson"); code != 200 || ir.Accepted != len(before) {
		t.Fatalf("ingest: %d %s", code, raw)
	}
	want := oracle(before[:len(before)-1])
	compare(t, p.waitResults("to="+end.Format(time.RFC3339), len(want)), want)

	resp, err := adm.DeleteTopics(ctx, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete %s: %v", topic, err)
	}
	// Pulse creates it again, with the partitions it had.
	checkfor.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return err
		}
		if d := td[topic]; d.Err != nil || len(d.Partitions) != 4 {
			return fmt.Errorf("topic %s: %v, %d partitions; want 4", topic, d.Err, len(d.Partitions))
		}
		if !strings.Contains(p.log.String(), "created them again") {
			return fmt.Errorf("no log line about the topic created again")
		}
		return nil
	})
	p.waitReady()

	// What comes after is exact too, and nothing before was lost.
	later := base.Add(5 * time.Minute)
	after := generate(10, "dt", 6, 2, later, 2*time.Minute, 5*time.Second, 500*time.Millisecond)
	end2 := later.Add(2 * time.Minute)
	after = append(after, sentinel("dt", end2.Add(time.Minute)))
	if code, ir, raw := p.post(ndjson(after), "application/x-ndjson"); code != 200 || ir.Accepted != len(after) {
		t.Fatalf("ingest: %d %s", code, raw)
	}
	want = oracle(append(before, after[:len(after)-1]...))
	query := "to=" + end2.Format(time.RFC3339)
	if !openLost {
		compare(t, p.waitResults(query, len(want)), want)
	} else {
		// The open window's result is missing, or exact if its task
		// kept its state (nothing made it restore meanwhile).
		sent := before[len(before)-1]
		open := "sensor_1m|sensor_id=" + sent.sensor + "|" + sent.ts.Truncate(time.Minute).Format(time.RFC3339)
		kept := want[open]
		delete(want, open)
		rows := p.waitResults(query, len(want))
		for _, r := range rows {
			if r.key() == open {
				want[open] = kept
				rows = p.waitResults(query, len(want))
				break
			}
		}
		compare(t, rows, want)
	}
	if r, err := p.readyz(); err != nil || r.code != 200 {
		t.Errorf("/readyz after the topic came back: %v %s", err, r.raw)
	}
	p.stop()
}

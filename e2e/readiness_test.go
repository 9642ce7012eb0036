package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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

// TestDeletedSourceTopic is TestDeletedResultTopic for the source topic
// ingest writes to, deleted once the shuffle stage has read it.
func TestDeletedSourceTopic(t *testing.T) { deletedTopic(t, "city", false) }

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

// TestStalledRestore makes the window stage's restore hang, as it did
// when a changelog could not be read: the broker (in the test, reached
// with --brokers) answers every fetch of a changelog with nothing. /readyz
// names the stage and where its restore stands, the restore logs its
// progress and gives up after --restore-timeout; once fetches are answered
// again the stage restores, commits and is ready, with exact results.
func TestStalledRestore(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	in := newInstance(t, "--brokers", cluster.ListenAddrs()[0], "--stall-timeout", "2s", "--restore-timeout", "7s")
	in.kafka = ""
	p := in.start(t)
	base := time.Date(2026, 3, 4, 6, 0, 0, 0, time.UTC)
	before := generate(12, "sr", 6, 2, base, 2*time.Minute, 5*time.Second, 500*time.Millisecond)
	end := base.Add(2 * time.Minute)
	before = append(before, sentinel("sr", end.Add(time.Minute)))
	if code, ir, raw := p.post(ndjson(before), "application/x-ndjson"); code != 200 || ir.Accepted != len(before) {
		t.Fatalf("ingest: %d %s", code, raw)
	}
	want := oracle(before[:len(before)-1])
	compare(t, p.waitResults("to="+end.Format(time.RFC3339), len(want)), want)
	p.stop()

	// From now on, fetches of the changelogs get nothing.
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	changelogs := []string{"city.sensor_1m.changelog", "city.zone_1m.changelog"}
	td, err := kadm.NewClient(cl).ListTopics(ctx, changelogs...)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[[16]byte]bool{}
	for _, c := range changelogs {
		ids[td[c].ID] = true
	}
	var hang atomic.Bool
	hang.Store(true)
	cluster.ControlKey(int16(kmsg.Fetch), func(r kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		req := r.(*kmsg.FetchRequest)
		if !hang.Load() || !slices.ContainsFunc(req.Topics, func(ft kmsg.FetchRequestTopic) bool {
			return ids[ft.TopicID] || slices.Contains(changelogs, ft.Topic)
		}) {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.SetVersion(req.GetVersion())
		time.Sleep(50 * time.Millisecond) // nothing, not too often
		return resp, nil, true
	})

	p = in.start(t) // ready: idle, nothing to restore yet
	later := base.Add(5 * time.Minute)
	after := generate(13, "sr", 6, 2, later, 2*time.Minute, 5*time.Second, 500*time.Millisecond)
	end2 := later.Add(2 * time.Minute)
	after = append(after, sentinel("sr", end2.Add(time.Minute)))
	if code, ir, raw := p.post(ndjson(after), "application/x-ndjson"); code != 200 || ir.Accepted != len(after) {
		t.Fatalf("ingest: %d %s", code, raw)
	}
	checkfor.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		r, err := p.readyz()
		if err != nil {
			return err
		}
		ready, reason, _ := r.component("pipeline city windows")
		if r.code != 503 || ready || !strings.Contains(reason, "no commit for") || !strings.Contains(reason, "restoring: ") {
			return fmt.Errorf("/readyz %d %s: want 503 naming the window stage's stalled restore", r.code, r.raw)
		}
		return nil
	})
	checkfor.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		log := p.log.String()
		if !strings.Contains(log, "restoring window tasks") || !strings.Contains(log, "did not finish within 7s") {
			return fmt.Errorf("no restore progress line or no restore timeout in the log")
		}
		return nil
	})

	hang.Store(false)
	p.waitReady()
	want = oracle(append(before, after[:len(after)-1]...))
	compare(t, p.waitResults("to="+end2.Format(time.RFC3339), len(want)), want)
	p.stop()
}

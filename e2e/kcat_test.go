package e2e

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: apt-get install %s", name, name)
		}
		t.Skipf("%s not installed", name)
	}
	return path
}

// TestKcatInterop produces city readings with kcat, a Kafka client Pulse
// did not write, into the embedded broker; Pulse processes them, and kcat
// reads the dead-letter topic with the reasons in headers.
func TestKcatInterop(t *testing.T) {
	kcat := requireTool(t, "kcat")
	in := newInstance(t)
	p := in.start(t)

	base := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
	rs := generate(11, "kc", 12, 2, base, 3*time.Minute, 5*time.Second, 500*time.Millisecond)
	var input bytes.Buffer
	for _, r := range rs {
		input.WriteString(r.sensor + "|" + r.json() + "\n")
	}
	end := base.Add(3 * time.Minute)
	s := sentinel("kc", end.Add(time.Minute))
	input.WriteString(s.sensor + "|" + s.json() + "\n")
	// One record that is not a valid reading goes to the dead-letter topic.
	input.WriteString(`kc-bad|{"sensor_id":"kc-bad","zone":"kc-zone-00","kind":"submarine","ts":"2026-02-01T12:00:00Z"}` + "\n")
	produce := exec.Command(kcat, "-P", "-b", p.kafka, "-t", "city", "-K", "|", "-z", "snappy")
	produce.Stdin = &input
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
	want := oracle(rs)
	rows := p.waitResults("to="+end.Format(time.RFC3339), len(want))
	compare(t, rows, want)
	// One event in 64 is timed at each point of the pipeline.
	for _, point := range []string{"shuffle_polled", "shuffle_committed", "window_folded"} {
		waitMetric(t, p, `pulse_pipeline_stage_latency_seconds_count{pipeline="city",point="`+point+`"}`, float64(len(rs)/64))
	}

	// The same results as CSV: a header, then one line per window.
	resp, err := http.Get(p.url("/v1/pipelines/city/results?format=csv&output=zone_1m&to=" + end.Format(time.RFC3339)))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+6 || strings.Join(recs[0][:5], ",") != "output,zone,window_start,window_end,count" {
		t.Errorf("csv: %d lines, header %v; want 7 lines, header output,zone,window_start,window_end,count,...", len(recs), recs[0])
	}

	kcatRead(t, kcat, p.kafka, "city.dlq", "the bad record with its reason", `pulse-error=kind "submarine" is unknown`, `"kc-bad"`)

	// A reading for a window that is already final goes to city.late, as
	// the pipeline read it, naming the original record in pulse-source.
	late := reading{sensor: "kc-late", zone: "kc-zone-00", kind: "air", ts: base.Add(30 * time.Second), metrics: map[string]float64{"pm25": 7}}
	p.mustPost([]byte(late.json()))
	waitMetric(t, p, `pulse_late_events_total{pipeline="city"}`, 1)
	kcatRead(t, kcat, p.kafka, "city.late", "the late reading with its reason",
		"pulse-late-reason=event time 2026-02-01T12:00:30Z is behind the watermark", `"sensor_id":"kc-late"`, `"pm25":7`,
		"pulse-output=", "pulse-source=city/")

	// A record in a repartition topic that is not a batch of this pipeline
	// (another writer's, here kcat's) goes from the running window stage
	// to the dead-letter topic, named by its own coordinates, and the
	// stage goes on folding.
	before, _ := strconv.ParseFloat(metricValue(t, p, `pulse_window_events_total{output="zone_1m",pipeline="city"}`), 64)
	bad := exec.Command(kcat, "-P", "-b", p.kafka, "-t", "city.zone_1m.repartition", "-p", "0")
	bad.Stdin = strings.NewReader("not a repartition batch\n")
	if out, err := bad.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce to the repartition topic: %v\n%s", err, out)
	}
	waitMetric(t, p, `pulse_pipeline_rejected_events_total{pipeline="city"}`, 2) // the submarine, and this
	kcatRead(t, kcat, p.kafka, "city.dlq", "the foreign repartition record with its reason",
		"pulse-error=window stage of city:", "pulse-source=city.zone_1m.repartition/0/", "not a repartition batch")
	next := reading{sensor: "kc-after", zone: "kc-zone-01", kind: "air", ts: end.Add(90 * time.Second), metrics: map[string]float64{"pm25": 3}}
	p.mustPost([]byte(next.json()))
	waitMetric(t, p, `pulse_window_events_total{output="zone_1m",pipeline="city"}`, before+1)

	// The clients count what they did (kprom, labelled by client id): the
	// ingest producer wrote the HTTP readings, the shuffle stage read them
	// and kcat's, the sink read results.
	waitMetric(t, p, `pulse_kafka_produce_records_total{client_id="pulse-ingest",topic="city"}`, 2)
	waitMetric(t, p, `pulse_kafka_fetch_records_total{client_id="pulse-city-shuffle",topic="city"}`, 3)
	waitMetric(t, p, `pulse_kafka_fetch_records_total{client_id="pulse-sink-sqlite",topic="city.zone_1m"}`, 1)
	p.stop()
}

// kcatRead reads topic from the beginning with kcat, headers and values,
// until the output holds every one of want. The window stage's late and
// dead-letter records commit with its next checkpoint, and kcat reads
// committed records only, so it retries for up to 30 s.
func kcatRead(t *testing.T, kcat, broker, topic, what string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command(kcat, "-C", "-b", broker, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%h\t%s\n").CombinedOutput()
		if err != nil {
			t.Fatalf("kcat consume %s: %v\n%s", topic, err, out)
		}
		missing := false
		for _, w := range want {
			missing = missing || !strings.Contains(string(out), w)
		}
		if !missing {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not hold %s:\n%s", topic, what, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

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

	consume := exec.Command(kcat, "-C", "-b", p.kafka, "-t", "city.dlq", "-o", "beginning", "-e", "-q", "-f", "%h\t%s\n")
	out, err := consume.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat consume: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `pulse-error=kind "submarine" is unknown`) || !strings.Contains(string(out), `"kc-bad"`) {
		t.Fatalf("dead-letter topic does not hold the bad record with its reason:\n%s", out)
	}

	// A reading for a window that is already final goes to city.late, as
	// the pipeline read it, naming the original record in pulse-source.
	late := reading{sensor: "kc-late", zone: "kc-zone-00", kind: "air", ts: base.Add(30 * time.Second), metrics: map[string]float64{"pm25": 7}}
	p.mustPost([]byte(late.json()))
	waitMetric(t, p, `pulse_late_events_total{pipeline="city"}`, 1)
	out, err = exec.Command(kcat, "-C", "-b", p.kafka, "-t", "city.late", "-o", "beginning", "-e", "-q", "-f", "%h\t%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat consume city.late: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "pulse-late-reason=event time 2026-02-01T12:00:30Z is behind the watermark") ||
		!strings.Contains(string(out), `"sensor_id":"kc-late"`) || !strings.Contains(string(out), `"pm25":7`) ||
		!strings.Contains(string(out), "pulse-output=") || !strings.Contains(string(out), "pulse-source=city/") {
		t.Fatalf("late topic does not hold the late reading with its reason:\n%s", out)
	}

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
	out, err = exec.Command(kcat, "-C", "-b", p.kafka, "-t", "city.dlq", "-o", "beginning", "-e", "-q", "-f", "%h\t%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat consume: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "pulse-error=window stage of city:") || !strings.Contains(string(out), "pulse-source=city.zone_1m.repartition/0/") ||
		!strings.Contains(string(out), "not a repartition batch") {
		t.Fatalf("dead-letter topic does not hold the foreign repartition record with its reason:\n%s", out)
	}
	next := reading{sensor: "kc-after", zone: "kc-zone-01", kind: "air", ts: end.Add(90 * time.Second), metrics: map[string]float64{"pm25": 3}}
	p.mustPost([]byte(next.json()))
	waitMetric(t, p, `pulse_window_events_total{output="zone_1m",pipeline="city"}`, before+1)
	p.stop()
}

package e2e

import (
	"bytes"
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// TestBadInput checks every rejection of the ingest API against the real
// binary, and that each rejected event is in the dead-letter topic.
func TestBadInput(t *testing.T) {
	in := newInstance(t, "--max-body", "4096")
	p := in.start(t)

	good := `{"sensor_id":"b-1","zone":"b-zone","kind":"air","ts":1767225600000,"pm25":12.5}`
	mixed := strings.Join([]string{
		good,
		`{"sensor_id":"b-2","zone":"b-zone","kind":"air","ts":"2026-01-01T00:00:00Z"}`,
		`{"sensor_id":"b-3","zone":"b-zone","kind":"air","ts":"yesterday","pm25":1}`,
		`{"sensor_id":"b-4","zone":"b-zone","kind":"traffic","ts":1767225600000,"pm25":1}`,
	}, "\n")
	code, ir, raw := p.post([]byte(mixed), "application/x-ndjson")
	if code != 200 || ir.Accepted != 1 || ir.Rejected != 3 || len(ir.Errors) != 3 {
		t.Fatalf("mixed batch: %d %s", code, raw)
	}
	for i, e := range ir.Errors {
		if e.Index != i+1 || e.Error == "" {
			t.Errorf("error %d: %+v", i, e)
		}
	}

	// Latin-1 bytes, not UTF-8: rejected with the reason, dead-lettered.
	code, ir, raw = p.post([]byte("{\"sensor_id\":\"b-5\",\"zone\":\"Z\xfcrich\",\"kind\":\"air\",\"ts\":1767225600000,\"pm25\":1}"), "application/json")
	if code != 200 || ir.Rejected != 1 || len(ir.Errors) != 1 || !strings.Contains(ir.Errors[0].Error, "not valid UTF-8") {
		t.Errorf("event not UTF-8: %d %s, want it rejected as not UTF-8", code, raw)
	}

	code, _, raw = p.post([]byte(good+"\n{\"sensor_id\": oops}\n"), "application/x-ndjson")
	if code != 400 || !strings.Contains(raw, "line 2") {
		t.Errorf("malformed JSON: %d %s, want 400 naming line 2", code, raw)
	}

	resp, err := http.Post(p.url("/v1/streams/nope/events"), "application/json", strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown stream: %d, want 404", resp.StatusCode)
	}

	big := bytes.Repeat([]byte(good+"\n"), 100)
	if code, _, raw = p.post(big, "application/x-ndjson"); code != 413 {
		t.Errorf("oversized body: %d %s, want 413", code, raw)
	}

	kcat := requireTool(t, "kcat")
	out, err := exec.Command(kcat, "-C", "-b", p.kafka, "-t", "city.dlq", "-o", "beginning", "-e", "-q", "-f", "%h\t%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat consume: %v\n%s", err, out)
	}
	for _, want := range []string{`"b-2"`, `"b-3"`, `"b-4"`, "no metric of kind air", `ts = \"yesterday\"`, "pm25 belongs to kind air, not to kind traffic", `"b-5"`, "not valid UTF-8 (byte 0xfc"} {
		if !strings.Contains(string(out), want) && !strings.Contains(string(out), strings.ReplaceAll(want, `\"`, `"`)) {
			t.Errorf("dead-letter topic lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), `"b-1"`) {
		t.Errorf("a valid event is in the dead-letter topic:\n%s", out)
	}
	p.stop()
}

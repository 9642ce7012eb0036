package stream

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
)

const keyPlanYAML = `name: keys
source: {topic: t, key: id, time: {field: ts}}
event_time: {max_out_of_orderness: 1s, idle_timeout: 30s}
outputs:
  - name: pair
    group_by: [a, b]
    window: {tumbling: 1m}
    aggregates:
      count: count()
  - name: one
    group_by: [a]
    window: {tumbling: 1m}
    aggregates:
      count: count()
`

// keyEngine folds the events into a new engine of keyPlanYAML.
func keyEngine(t *testing.T, events ...string) *Engine {
	t.Helper()
	plan := testPlan(t, keyPlanYAML)
	dec := NewDecoder(plan)
	e := NewEngine(plan, dec)
	e.EnableChangelog()
	e.Assign(0, 0)
	for _, ev := range events {
		var r Record
		if err := dec.Decode([]byte(ev), &r); err != nil {
			t.Fatalf("Decode(%s): %v", ev, err)
		}
		e.Add(0, &r, 0)
	}
	return e
}

// finals returns the finals of an engine's output, by key joined with "|".
func finals(t *testing.T, e *Engine, output string) map[string]string {
	t.Helper()
	var r Record
	dec := NewDecoder(testPlan(t, keyPlanYAML))
	if err := dec.Decode([]byte(`{"id":"w","ts":"2026-03-01T12:05:00Z","a":"later","b":"x"}`), &r); err != nil {
		t.Fatal(err)
	}
	e.Add(0, &r, 0) // moves the watermark past 12:00's windows
	out := map[string]string{}
	for _, res := range e.Advance(0, nil, 0) {
		if res.Output == output && res.Start < r.TS-60_000 {
			var b []byte
			for i, v := range res.Values {
				b = append(b, res.Names[i]...)
				b = append(b, '=')
				b = v.AppendJSON(b)
			}
			out[strings.Join(res.Key, "|")] = string(b)
		}
	}
	return out
}

// TestGroupKeysDistinct: keys whose fields hold the old separator byte
// were one group (and one stored row) when the fields were joined
// unescaped.
func TestGroupKeysDistinct(t *testing.T) {
	e := keyEngine(t,
		`{"id":"1","ts":"2026-03-01T12:00:01Z","a":"p\u001fq","b":"r"}`,
		`{"id":"2","ts":"2026-03-01T12:00:02Z","a":"p","b":"q\u001fr"}`,
		`{"id":"3","ts":"2026-03-01T12:00:03Z","a":"p","b":"q\u001fr"}`,
		`{"id":"4","ts":"2026-03-01T12:00:04Z","a":2000000,"b":"n"}`,
	)
	got := finals(t, e, "pair")
	want := map[string]string{"p\x1fq|r": "count=1", "p|q\x1fr": "count=2", "2000000|n": "count=1"}
	if len(got) != len(want) {
		t.Fatalf("finals %q, want %q", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("group %q: %q, want %q (all: %q)", k, got[k], v, got)
		}
	}
}

// TestGroupKeysRestore: groups keep their keys through the changelog, and
// a record written before keys were escaped (its id unescaped) is kept
// under the current id, so the events that follow join it.
func TestGroupKeysRestore(t *testing.T) {
	ev := `{"id":"1","ts":"2026-03-01T12:00:01Z","a":"p\u001fq","b":"r"}`
	e := keyEngine(t, ev, `{"id":"2","ts":"2026-03-01T12:00:02Z","a":"p","b":"q\u001fr"}`)
	table := changelogTable{}
	table.apply(appendChanges(e, nil))
	// Rewrite the one-field group's record as older Pulse wrote it.
	legacy := changelogTable{}
	for k, v := range table {
		if k[0] == groupKey && strings.HasSuffix(k, "p\x1e\x1fq") && strings.Contains(k, "one") {
			k = strings.TrimSuffix(k, "p\x1e\x1fq") + "p\x1fq"
		}
		legacy[k] = v
	}
	if len(legacy) != len(table) || slices.Equal(slices.Sorted(maps.Keys(legacy)), slices.Sorted(maps.Keys(table))) {
		t.Fatalf("the test found no record to rewrite in %q", slices.Sorted(maps.Keys(table)))
	}
	for name, tb := range map[string]changelogTable{"current": table, "legacy": legacy} {
		r := tb.restore(t, testPlan(t, keyPlanYAML), 0)
		if r.Groups() != e.Groups() {
			t.Errorf("%s: %d groups restored, want %d", name, r.Groups(), e.Groups())
		}
		var rec Record
		if err := NewDecoder(testPlan(t, keyPlanYAML)).Decode([]byte(ev), &rec); err != nil {
			t.Fatal(err)
		}
		r.Add(0, &rec, 0)
		if got := finals(t, r, "one"); got["p\x1fq"] != "count=2" || len(got) != 2 {
			t.Errorf("%s: output one after restore and one more event: %q", name, got)
		}
		// A tombstone under the legacy id removes the group.
		for k := range legacy {
			if strings.HasSuffix(k, "p\x1fq") && strings.Contains(k, "one") {
				if err := r.RestoreChange([]byte(k), nil, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		if r.outs[1].keys.Get(event.JoinKey([]string{"p\x1fq"})) != nil {
			t.Errorf("%s: a tombstone under the unescaped id left the group", name)
		}
	}
}

// TestResultNumbers: counts of a million and more are integers in result
// JSON, not 1e+06.
func TestResultNumbers(t *testing.T) {
	r := Result{Output: "o", GroupBy: []string{"g"}, Key: []string{"k"}, Final: true,
		Names: []string{"count", "avg"}, Values: []event.Value{event.NumberValue(1404214), event.NumberValue(2.5)}}
	got := string(AppendValuesJSON(nil, &r))
	if !strings.Contains(got, `"count":1404214,"avg":2.5}`) {
		t.Errorf("result %s", got)
	}
}

// TestDecodeRejectsBadUTF8: events read from the raw topic (written with
// any Kafka client) must be UTF-8 too.
func TestDecodeRejectsBadUTF8(t *testing.T) {
	dec := NewDecoder(testPlan(t, keyPlanYAML))
	var r Record
	err := dec.Decode([]byte("{\"id\":\"1\",\"ts\":\"2026-03-01T12:00:01Z\",\"a\":\"\xff\",\"b\":\"r\"}"), &r)
	if err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Fatalf("Decode = %v, want it rejected as not UTF-8", err)
	}
}

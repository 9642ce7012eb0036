package stream

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// An operator case is a hand-written scenario for an events or detect
// output, run as a window task runs it: partition watermarks come from
// markers, built by a tracker that observes every event as the shuffle
// stage does and sent after each event and before each advance. The
// expectations are worked out by hand from the rules (docs/pipelines.md:
// events outputs emit at once and nothing is late for them; a detect
// output feeds a key's events to its detector in event-time order once
// the watermark is past them, and an event behind the watermark it
// processed up to is late), never recorded from a run.
type opCase struct {
	Description string `json:"description"`
	// Pipeline is a pipeline file (YAML) with one events or detect
	// output.
	Pipeline string   `json:"pipeline"`
	Steps    []opStep `json:"steps"`
	// ExpectResults is every result over the run, in any order.
	ExpectResults  []opResult `json:"expect_results"`
	ExpectLate     int        `json:"expect_late"`
	ExpectRejected int        `json:"expect_rejected"`
	// ExpectOpenWindows, when set, is OpenWindows() at the end.
	ExpectOpenWindows *int `json:"expect_open_windows"`
}

// An operator step is a caseStep with what to expect of it.
type opStep struct {
	caseStep
	// Rejected says the operator must refuse the event (a dead letter).
	Rejected bool `json:"rejected"`
	// ExpectEmitted, for an advance, lists exactly the results it
	// returns, as "key@time#event_id" (events) or "key@time/field"
	// (detect). An event step's source offset is its index in Steps
	// (from 0), so the event_id of a case on topic logs, partition 0,
	// step 3 is logs/0/2.
	ExpectEmitted []string `json:"expect_emitted"`
}

type opResult struct {
	Key   string `json:"key"`
	Time  string `json:"time"`
	Field string `json:"field"` // detect: the field the row is about
	// EventID is an events row's event_id: topic/partition/offset.
	EventID string `json:"event_id"`
	// Fields are numeric columns, compared within 1e-9 relative;
	// Strings string columns; Absent columns without a value.
	Fields  map[string]float64 `json:"fields"`
	Strings map[string]string  `json:"strings"`
	Absent  []string           `json:"absent"`
}

// rowID names a row result as cases do.
func rowID(r *Result) string {
	key := r.Key
	field := ""
	if n := len(r.GroupBy); n > 0 && r.GroupBy[n-1] == pipeline.ColField {
		key, field = r.Key[:n-1], "/"+r.Key[n-1] // a detect row: the field is in its key
	}
	if n := len(r.GroupBy); n > 0 && r.GroupBy[n-1] == pipeline.ColEventID {
		key, field = r.Key[:n-1], "#"+r.Key[n-1] // an events row: so is its event_id
	}
	return strings.Join(key, ",") + "@" + rfc3339(r.Start) + field
}

func TestOperatorSemantics(t *testing.T) {
	runCaseFiles(t, "operators", runOpCase)
}

func runOpCase(t *testing.T, c *opCase) {
	t.Logf("%s", c.Description)
	plan := testPlan(t, c.Pipeline)
	if len(plan.Outputs) != 1 {
		t.Fatalf("a case has one output, this one %d", len(plan.Outputs))
	}
	dec := NewDecoder(plan)
	op := newRowOperator(plan, dec)
	run := &stepRun{op: op, dec: dec, marks: &Watermarks{IdleTimeout: plan.Time.IdleTimeout.Milliseconds()}}
	rejected := 0
	run.added = func(i int, where string, r *Record, late bool) {
		rerr := rejectedBy(op)
		if rerr != nil {
			rejected++
			t.Logf("%s: rejected: %v", where, rerr)
		}
		if s := &c.Steps[i]; late != s.Late || (rerr != nil) != s.Rejected {
			t.Errorf("%s: late %v rejected %v, want late %v rejected %v", where, late, rerr, s.Late, s.Rejected)
		}
	}
	var all []Result
	run.advanced = func(i int, where string, out []Result) {
		var ids []string
		for j := range out {
			if !out[j].Final || out[j].Start != out[j].End {
				t.Errorf("%s: result %s: final %v, start %d end %d; want final and start = end", where, rowID(&out[j]), out[j].Final, out[j].Start, out[j].End)
			}
			ids = append(ids, rowID(&out[j]))
		}
		all = append(all, out...)
		if want := c.Steps[i].ExpectEmitted; want != nil {
			checkSameIDs(t, where+": emitted", ids, want)
		}
	}
	run.run(t, len(c.Steps), func(i int) *caseStep { return &c.Steps[i].caseStep })
	if run.late != c.ExpectLate || rejected != c.ExpectRejected {
		t.Errorf("%d late, %d rejected; want %d late, %d rejected", run.late, rejected, c.ExpectLate, c.ExpectRejected)
	}
	if c.ExpectOpenWindows != nil && op.OpenWindows() != *c.ExpectOpenWindows {
		t.Errorf("%d open at the end, want %d", op.OpenWindows(), *c.ExpectOpenWindows)
	}
	compareRows(t, all, c.ExpectResults)
}

func compareRows(t *testing.T, got []Result, want []opResult) {
	t.Helper()
	byID := map[string]*Result{}
	for i := range got {
		id := rowID(&got[i])
		if byID[id] != nil {
			t.Errorf("result %s emitted twice", id)
		}
		byID[id] = &got[i]
	}
	for _, w := range want {
		ts, err := event.ParseTime(w.Time)
		if err != nil {
			t.Fatalf("expect_results %s: bad time: %v", w.Key, err)
		}
		id := w.Key + "@" + rfc3339(ts)
		if w.Field != "" {
			id += "/" + w.Field
		}
		if w.EventID != "" {
			id += "#" + w.EventID
		}
		r := byID[id]
		if r == nil {
			t.Errorf("result %s was not emitted", id)
			continue
		}
		delete(byID, id)
		var fields map[string]any
		if err := json.Unmarshal(AppendValuesJSON(nil, r), &fields); err != nil {
			t.Fatal(err)
		}
		for name, v := range w.Fields {
			if g, ok := fields[name].(float64); !ok || !closeTo(g, v) {
				t.Errorf("result %s: %s = %v, want %v", id, name, fields[name], v)
			}
		}
		for name, v := range w.Strings {
			if g := fields[name]; g != v {
				t.Errorf("result %s: %s = %v, want %q", id, name, g, v)
			}
		}
		for _, name := range w.Absent {
			if g, ok := fields[name]; ok {
				t.Errorf("result %s: %s = %v, want no value", id, name, g)
			}
		}
	}
	for id := range byID {
		t.Errorf("unexpected result %s", id)
	}
}

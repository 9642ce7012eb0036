package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pulsehq/pulse/internal/pipeline"

	"github.com/pulsehq/pulse/internal/event"
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

type opStep struct {
	Comment   string          `json:"comment"`
	Partition int32           `json:"partition"`
	Now       int64           `json:"now"`
	Event     json.RawMessage `json:"event"`
	// Late says Add must return late; Rejected that the operator must
	// refuse the event (a dead letter); Filtered that the pipeline's
	// where must drop it before the operator sees it.
	Late     bool `json:"late"`
	Rejected bool `json:"rejected"`
	Filtered bool `json:"filtered"`
	// Advance calls Advance at this processing time (ms).
	Advance *int64 `json:"advance"`
	// Assign registers input partitions, as a task does at creation.
	Assign []int32 `json:"assign"`
	// ExpectEmitted, for an advance, lists exactly the results it
	// returns, as "key@time#event_id" (events) or "key@time/field"
	// (detect). An event step's source offset is its index in Steps
	// (from 0), so the event_id of a case on topic logs, partition 0,
	// step 3 is logs/0/2.
	ExpectEmitted   []string `json:"expect_emitted"`
	ExpectWatermark string   `json:"expect_watermark"`
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
	files, err := filepath.Glob(filepath.Join("testdata", "operators", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no operator cases: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			var c opCase
			if err := dec.Decode(&c); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			runOpCase(t, &c)
		})
	}
}

func runOpCase(t *testing.T, c *opCase) {
	t.Logf("%s", c.Description)
	plan := testPlan(t, c.Pipeline)
	if len(plan.Outputs) != 1 {
		t.Fatalf("a case has one output, this one %d", len(plan.Outputs))
	}
	dec := NewDecoder(plan)
	op := newRowOperator(plan, dec)
	up := Watermarks{IdleTimeout: plan.Time.IdleTimeout.Milliseconds()}
	mark := func(now int64) {
		for _, p := range up.Partitions() {
			ts, seen, idle := up.Max(p, now)
			op.Mark(p, ts, seen, idle)
		}
	}
	var all []Result
	late, rejected := 0, 0
	for i, s := range c.Steps {
		where := fmt.Sprintf("step %d", i+1)
		if s.Comment != "" {
			where += " (" + s.Comment + ")"
		}
		switch {
		case s.Assign != nil:
			for _, p := range s.Assign {
				op.Assign(p, s.Now)
				up.Assign(p, s.Now)
			}
		case s.Event != nil && s.Advance == nil:
			r := Record{Offset: int64(i)}
			err := dec.Decode(s.Event, &r)
			if s.Filtered {
				if !errors.Is(err, ErrFiltered) {
					t.Errorf("%s: Decode(%s) = %v, want it filtered", where, s.Event, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: invalid event %s: %v", where, s.Event, err)
			}
			isLate := op.Add(s.Partition, &r, s.Now) != 0
			rerr := rejectedBy(op)
			if isLate {
				late++
			}
			if rerr != nil {
				rejected++
				t.Logf("%s: rejected: %v", where, rerr)
			}
			up.Observe(s.Partition, r.TS, s.Now)
			mark(s.Now)
			if isLate != s.Late || (rerr != nil) != s.Rejected {
				t.Errorf("%s: late %v rejected %v, want late %v rejected %v", where, isLate, rerr, s.Late, s.Rejected)
			}
		case s.Advance != nil && s.Event == nil:
			mark(*s.Advance)
			out := op.Advance(*s.Advance, nil)
			var ids []string
			for j := range out {
				if !out[j].Final || out[j].Start != out[j].End {
					t.Errorf("%s: result %s: final %v, start %d end %d; want final and start = end", where, rowID(&out[j]), out[j].Final, out[j].Start, out[j].End)
				}
				ids = append(ids, rowID(&out[j]))
			}
			all = append(all, out...)
			if s.ExpectEmitted != nil {
				want := slices.Clone(s.ExpectEmitted)
				slices.Sort(want)
				slices.Sort(ids)
				if !slices.Equal(ids, want) {
					t.Errorf("%s: emitted %q, want %q", where, ids, want)
				}
			}
			if s.ExpectWatermark != "" {
				want, err := event.ParseTime(s.ExpectWatermark)
				if err != nil {
					t.Fatalf("%s: expect_watermark: %v", where, err)
				}
				if got := op.Watermark(); got != want {
					t.Errorf("%s: watermark %s, want %s", where, rfc3339(got), rfc3339(want))
				}
			}
		default:
			t.Fatalf("%s: a step has either an event or an advance", where)
		}
	}
	if late != c.ExpectLate || rejected != c.ExpectRejected {
		t.Errorf("%d late, %d rejected; want %d late, %d rejected", late, rejected, c.ExpectLate, c.ExpectRejected)
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

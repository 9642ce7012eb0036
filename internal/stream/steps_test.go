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

	"github.com/pulsehq/pulse/internal/event"
)

// This file holds what the semantics and operator cases share: reading
// the case files, and the loop that drives an engine or an operator
// through a case's steps.

// runCaseFiles decodes every case file testdata/dir/*.json into a C,
// strictly (an unknown field is an error), and runs each as a subtest
// named after its file.
func runCaseFiles[C any](t *testing.T, dir string, run func(t *testing.T, c *C)) {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s cases: %v", dir, err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			var c C
			if err := dec.Decode(&c); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			run(t, &c)
		})
	}
}

// caseStep is what a step of a case says that the shared loop
// (stepRun.run) acts on; each case format embeds it and adds its own
// expectations. A step is an event, an advance or an assignment.
type caseStep struct {
	Comment string `json:"comment"`
	// An event, as a sender would post it, added from Partition at
	// processing time Now (ms).
	Partition int32           `json:"partition"`
	Now       int64           `json:"now"`
	Event     json.RawMessage `json:"event"`
	// Late says Add must return late.
	Late bool `json:"late"`
	// Filtered says the pipeline's where must drop the event (Decode
	// returns ErrFiltered); it is not added.
	Filtered bool `json:"filtered"`
	// Advance calls Advance at this processing time (ms).
	Advance *int64 `json:"advance"`
	// Assign registers these input partitions at processing time Now, as
	// a window task does for every source partition when it is created.
	Assign []int32 `json:"assign"`
	// ExpectWatermark, for an advance, is Watermark() after it.
	ExpectWatermark string `json:"expect_watermark"`
}

// stepOperator is what a case drives: the window engine or a row
// operator.
type stepOperator interface {
	Assign(p int32, now int64)
	Mark(p int32, maxTS int64, seen, idle bool)
	Add(p int32, r *Record, now int64) (late uint64)
	Advance(now int64, dst []Result, max int) []Result
	Watermark() int64
}

// stepRun drives an operator through a case's steps; the callbacks check
// what is particular to a case format.
type stepRun struct {
	op  stepOperator
	dec *Decoder
	// marks, when set, tracks the source partitions as the shuffle stage
	// does: each added event is observed in it, and its markers are sent
	// to the operator after each event and before each advance, as a
	// window task gets them. Without it the operator tracks partitions
	// itself.
	marks *Watermarks
	// origin is added to every step's now and advance (a case's clock).
	origin int64
	// filtered, when set, is called with each event the where dropped
	// (its time is decoded) at its step's now.
	filtered func(p int32, r *Record, now int64)
	// added, when set, is called right after each Add, with whether the
	// event was late.
	added func(i int, where string, r *Record, late bool)
	// advanced, when set, is called with the results of each advance,
	// before the step's expect_watermark is checked.
	advanced func(i int, where string, out []Result)
	// stepped, when set, is called after every step.
	stepped func(i int, where string)
	// late counts the events Add returned late.
	late int
}

// observe tracks an event of partition p at event time ts in marks, if
// set, and sends the operator the markers at processing time now.
func (run *stepRun) observe(p int32, ts, now int64) {
	if run.marks == nil {
		return
	}
	run.marks.Observe(p, ts, now)
	run.mark(now)
}

// mark sends the operator a marker per tracked partition, if any.
func (run *stepRun) mark(now int64) {
	if run.marks == nil {
		return
	}
	for _, p := range run.marks.Partitions() {
		ts, seen, idle := run.marks.Max(p, now)
		run.op.Mark(p, ts, seen, idle)
	}
}

// run drives the operator through n steps, step(i) returning the i-th;
// the steps are not modified.
func (run *stepRun) run(t *testing.T, n int, step func(i int) *caseStep) {
	t.Helper()
	for i := range n {
		s := *step(i)
		s.Now += run.origin
		if s.Advance != nil {
			at := *s.Advance + run.origin
			s.Advance = &at
		}
		where := fmt.Sprintf("step %d", i+1)
		if s.Comment != "" {
			where += " (" + s.Comment + ")"
		}
		switch {
		case s.Assign != nil:
			for _, p := range s.Assign {
				run.op.Assign(p, s.Now)
				if run.marks != nil {
					run.marks.Assign(p, s.Now)
				}
			}
		case s.Event != nil && s.Advance == nil:
			r := Record{Offset: int64(i)} // a step's source offset is its index
			err := run.dec.Decode(s.Event, &r)
			if s.Filtered {
				if !errors.Is(err, ErrFiltered) {
					t.Errorf("%s: Decode(%s) = %v, want it filtered", where, s.Event, err)
				}
				if run.filtered != nil {
					run.filtered(s.Partition, &r, s.Now)
				}
				break
			}
			if err != nil {
				t.Fatalf("%s: invalid event %s: %v", where, s.Event, err)
			}
			late := run.op.Add(s.Partition, &r, s.Now) != 0
			if late {
				run.late++
			}
			if run.added != nil {
				run.added(i, where, &r, late)
			}
			run.observe(s.Partition, r.TS, s.Now)
		case s.Advance != nil && s.Event == nil:
			run.mark(*s.Advance)
			out := run.op.Advance(*s.Advance, nil, 0)
			if run.advanced != nil {
				run.advanced(i, where, out)
			}
			if s.ExpectWatermark != "" {
				want, err := event.ParseTime(s.ExpectWatermark)
				if err != nil {
					t.Fatalf("%s: expect_watermark: %v", where, err)
				}
				if got := run.op.Watermark(); got != want {
					t.Errorf("%s: watermark %s, want %s", where, rfc3339(got), rfc3339(want))
				}
			}
		default:
			t.Fatalf("%s: a step has either an event or an advance", where)
		}
		if run.stepped != nil {
			run.stepped(i, where)
		}
	}
}

// checkSameIDs reports, as what, when got and want do not hold the same
// result ids in any order.
func checkSameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("%s %q, want %q", what, got, want)
	}
}

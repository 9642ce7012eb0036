package stream

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// A semantics case is a hand-written scenario run through the city
// pipeline's engine. Its expectations are worked out by hand from the
// rules (windows are [start, end); a partition's watermark is its highest
// event time minus disorder_ms; the engine's watermark is the minimum over
// partitions active within idle_timeout_ms of processing time, or the
// maximum when all are idle; a window fires once the watermark reaches its
// end; an event whose window fired is late), never recorded from a run.
type semCase struct {
	Description string `json:"description"`
	// Pipeline is a pipeline file (YAML) to run; empty means the built-in
	// city pipeline. disorder_ms and idle_timeout_ms override its
	// event_time settings when set.
	Pipeline      string `json:"pipeline"`
	DisorderMs    *int64 `json:"disorder_ms"`
	IdleTimeoutMs *int64 `json:"idle_timeout_ms"`
	// Outputs limits expect_fired and expect_final to these outputs;
	// empty means every output of the city pipeline.
	Outputs []string  `json:"outputs"`
	Steps   []semStep `json:"steps"`
	// ExpectFinal is every final result of the checked outputs over the
	// whole run, in any order.
	ExpectFinal []semResult `json:"expect_final"`
	// ExpectLate is how many events Add rejected as late.
	ExpectLate int `json:"expect_late"`
	// ExpectOpenWindows, when set, is OpenWindows() at the end (every
	// output counts, checked or not).
	ExpectOpenWindows *int `json:"expect_open_windows"`
	// Clock, when set, is the processing time of now 0 (steps' now and
	// advance are milliseconds after it), and event times are capped at
	// the clock as the shuffle stage caps them (Watermarks.Clock).
	Clock string `json:"clock"`
	// MarkersDiffer, when set, says why the case does not hold for an
	// engine driven by markers (a window task), which then skips it.
	MarkersDiffer string `json:"markers_differ"`
}

// A step adds an event (a city reading unless the case has its own
// pipeline) or advances the engine (caseStep), with what to expect of
// it.
type semStep struct {
	caseStep
	// ExpectFired, for an advance, lists exactly the results of the
	// checked outputs it fires, as "output/key@start".
	ExpectFired []string `json:"expect_fired"`
	// ExpectOpenWindows is OpenWindows() after the step.
	ExpectOpenWindows *int `json:"expect_open_windows"`
}

type semResult struct {
	Output string `json:"output"`
	Key    string `json:"key"`
	Start  string `json:"start"`
	End    string `json:"end"`
	Count  int64  `json:"count"`
	// Fields are aggregates by the names the sinks store, e.g.
	// "speed_kmh_avg"; only the listed ones are compared.
	Fields map[string]float64 `json:"fields"`
	// Strings are expected aggregates with string values (first, last).
	Strings map[string]string `json:"strings"`
	// Tolerance sets, per field of Fields, a relative tolerance other
	// than 1e-9, e.g. 0.01 for the percentiles of the DDSketch.
	Tolerance map[string]float64 `json:"tolerance"`
	// Absent lists aggregates that must have no value (left out of the
	// result), e.g. the avg of a field the window never saw.
	Absent []string `json:"absent"`
}

func rfc3339(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func resultID(r *Result) string {
	return fmt.Sprintf("%s/%s@%s", r.Output, strings.Join(r.Key, ","), rfc3339(r.Start))
}

// testPlan parses a pipeline file, or returns the built-in city pipeline.
func testPlan(t testing.TB, yaml string) *pipeline.Plan {
	t.Helper()
	if yaml == "" {
		p, err := pipeline.BuiltinNamed("city")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	plan, err := pipeline.Parse("case.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	return plan
}

func TestSemantics(t *testing.T) {
	runCaseFiles(t, "semantics", func(t *testing.T, c *semCase) {
		t.Run("engine", func(t *testing.T) { runSemantics(t, c, false) })
		t.Run("markers", func(t *testing.T) { runSemantics(t, c, true) })
	})
}

// runSemantics runs a case. With markers, the engine runs as a window task
// does: partition watermarks come only from markers, built by a tracker
// that observes every event as the shuffle stage does and sent after each
// event and before each advance.
func runSemantics(t *testing.T, c *semCase, markers bool) {
	if markers && c.MarkersDiffer != "" {
		t.Skip(c.MarkersDiffer)
	}
	t.Logf("%s", c.Description)
	checked := func(output string) bool { return len(c.Outputs) == 0 || slices.Contains(c.Outputs, output) }
	plan := testPlan(t, c.Pipeline)
	if c.DisorderMs != nil {
		plan.Time.MaxOutOfOrderness = time.Duration(*c.DisorderMs) * time.Millisecond
	}
	if c.IdleTimeoutMs != nil {
		plan.Time.IdleTimeout = time.Duration(*c.IdleTimeoutMs) * time.Millisecond
	}
	dec := NewDecoder(plan)
	e := NewEngine(plan, dec)
	run := &stepRun{op: e, dec: dec}
	if markers {
		e.UseMarkers()
		run.marks = &Watermarks{IdleTimeout: plan.Time.IdleTimeout.Milliseconds(), Horizon: IdleHorizon(plan)}
	}
	if c.Clock != "" {
		var err error
		if run.origin, err = event.ParseTime(c.Clock); err != nil {
			t.Fatalf("clock: %v", err)
		}
		e.wm.Clock = true
		if run.marks != nil {
			run.marks.Clock = true
		}
	}
	// A filtered event still advances its partition's event time, as the
	// shuffle stage observes it.
	run.filtered = func(p int32, r *Record, now int64) {
		if markers {
			run.observe(p, r.TS, now)
		} else {
			e.wm.Observe(p, r.TS, now)
		}
	}
	run.added = func(i int, where string, r *Record, late bool) {
		if late != c.Steps[i].Late {
			t.Errorf("%s: Add(ts %s): late %v, want late %v", where, rfc3339(r.TS), late, c.Steps[i].Late)
		}
	}
	relaxed := plan.Time.AllowedLateness > 0 // finals may be emitted again, updated
	exprs := map[string]*resultExprs{}
	for i := range plan.Outputs {
		exprs[plan.Outputs[i].Name] = newResultExprs(&plan.Outputs[i])
	}
	var finals []Result
	fired := map[string]bool{}
	run.advanced = func(i int, where string, rs []Result) {
		out := applyExprs(exprs, rs)
		var ids []string
		for j := range out {
			r := &out[j]
			id := resultID(r)
			if r.Deleted() {
				if checked(r.Output) {
					ids = append(ids, "-"+id)
					finals = append(finals, *r)
				}
				delete(fired, id)
				continue
			}
			if !r.Final {
				t.Errorf("%s: result %s is not final", where, id)
			}
			if fired[id] && !relaxed {
				t.Errorf("%s: window %s fired a second time", where, id)
			}
			fired[id] = true
			if checked(r.Output) {
				ids = append(ids, id)
				finals = append(finals, *r)
			}
		}
		if want := c.Steps[i].ExpectFired; want != nil {
			checkSameIDs(t, where+": fired", ids, want)
		}
	}
	run.stepped = func(i int, where string) {
		if want := c.Steps[i].ExpectOpenWindows; want != nil && e.OpenWindows() != *want {
			t.Errorf("%s: %d open windows, want %d", where, e.OpenWindows(), *want)
		}
	}
	run.run(t, len(c.Steps), func(i int) *caseStep { return &c.Steps[i].caseStep })
	if run.late != c.ExpectLate {
		t.Errorf("%d late events, want %d", run.late, c.ExpectLate)
	}
	if c.ExpectOpenWindows != nil && e.OpenWindows() != *c.ExpectOpenWindows {
		t.Errorf("%d open windows at the end, want %d", e.OpenWindows(), *c.ExpectOpenWindows)
	}
	compareFinals(t, finals, c.ExpectFinal)
}

// applyExprs applies each output's computed fields and having to its
// results, as a window task does before it writes them.
func applyExprs(exprs map[string]*resultExprs, rs []Result) []Result {
	var out []Result
	for _, r := range rs {
		out = append(out, exprs[r.Output].Finals([]Result{r})...)
	}
	return out
}

// compareFinals checks the results a sink would hold after applying got
// in order: the latest version of each window, retracted ones removed.
func compareFinals(t *testing.T, got []Result, want []semResult) {
	t.Helper()
	byID := make(map[string]*Result, len(got))
	for i := range got {
		if got[i].Deleted() {
			delete(byID, resultID(&got[i]))
			continue
		}
		byID[resultID(&got[i])] = &got[i]
	}
	for _, w := range want {
		start, err1 := event.ParseTime(w.Start)
		end, err2 := event.ParseTime(w.End)
		if err1 != nil || err2 != nil {
			t.Fatalf("expect_final %s/%s: bad start or end: %v %v", w.Output, w.Key, err1, err2)
		}
		id := fmt.Sprintf("%s/%s@%s", w.Output, w.Key, rfc3339(start))
		r := byID[id]
		if r == nil {
			t.Errorf("final %s was not emitted", id)
			continue
		}
		delete(byID, id)
		var fields map[string]any
		if err := json.Unmarshal(AppendValuesJSON(nil, r), &fields); err != nil {
			t.Fatal(err)
		}
		if r.End != end || (w.Count != 0 && fields["count"] != float64(w.Count)) {
			t.Errorf("final %s: end %s count %v, want end %s count %d", id, rfc3339(r.End), fields["count"], rfc3339(end), w.Count)
		}
		for name, v := range w.Fields {
			g, ok := fields[name].(float64)
			if tol, approx := w.Tolerance[name]; ok && approx {
				ok = math.Abs(g-v) <= tol*math.Abs(v)
			} else if ok {
				ok = closeTo(g, v)
			}
			if !ok {
				t.Errorf("final %s: %s = %v, want %v", id, name, fields[name], v)
			}
		}
		for name := range w.Tolerance {
			if _, ok := w.Fields[name]; !ok {
				t.Errorf("final %s: a tolerance for %s, which fields does not list", id, name)
			}
		}
		for _, name := range w.Absent {
			if g, ok := fields[name]; ok {
				t.Errorf("final %s: %s = %v, want no value", id, name, g)
			}
		}
		for name, v := range w.Strings {
			if g := fields[name]; g != v {
				t.Errorf("final %s: %s = %v, want %q", id, name, g, v)
			}
		}
	}
	for id := range byID {
		t.Errorf("unexpected final %s", id)
	}
}

// closeTo reports whether a and b are equal within 1e-9 relative.
func closeTo(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

package stream

import (
	"sort"

	"github.com/pulsehq/pulse/internal/event"
)

// Output is one windowed aggregation of a pipeline: readings grouped by one
// field into tumbling windows.
type Output struct {
	// Name identifies the output in results, e.g. "zone_1m".
	Name string
	// GroupBy names the field the readings are grouped by.
	GroupBy string
	// Key extracts the GroupBy field's value from a reading.
	Key func(*event.Reading) string
	// Window assigns readings to windows.
	Window Tumbling
}

// Result is the aggregate of one window of one key of one output.
type Result struct {
	Output     string
	GroupBy    string
	Key        string
	Start, End int64 // ms, [Start, End)
	Final      bool
	State      WindowState
}

type window struct {
	start int64
	state WindowState
}

type outputState struct {
	def  Output
	keys map[string][]window // open windows per key, few per key
	open int
}

// Engine assigns readings to the windows of every output and fires each
// window once the watermark passes its end. It is not safe for concurrent
// use; a Processor owns one.
type Engine struct {
	outs []*outputState
	wm   Watermarks
	// fired is the watermark up to which windows have been fired. It only
	// moves forward, even if the combined watermark steps back when an idle
	// partition becomes active again.
	fired int64
}

// NewEngine returns an engine for the given outputs.
func NewEngine(outputs []Output, disorderMs, idleTimeoutMs int64) *Engine {
	e := &Engine{wm: Watermarks{Disorder: disorderMs, IdleTimeout: idleTimeoutMs}, fired: NoWatermark}
	for _, o := range outputs {
		e.outs = append(e.outs, &outputState{def: o, keys: make(map[string][]window)})
	}
	return e
}

// Add folds reading r from partition p, processed at time now, into its
// windows. It returns false, and changes nothing, when the reading is late:
// its window in some output has already been fired.
func (e *Engine) Add(p int32, r *event.Reading, now int64) bool {
	for _, o := range e.outs {
		if o.def.Window.Start(r.TS)+o.def.Window.Size <= e.fired {
			return false
		}
	}
	e.wm.Observe(p, r.TS, now)
	for _, o := range e.outs {
		start := o.def.Window.Start(r.TS)
		key := o.def.Key(r)
		ws := o.keys[key]
		i := 0
		for i < len(ws) && ws[i].start != start {
			i++
		}
		if i == len(ws) {
			ws = append(ws, window{start: start})
			o.keys[key] = ws
			o.open++
		}
		ws[i].state.Add(r)
	}
	return true
}

// Assign registers input partition p at processing time now; see
// Watermarks.Assign.
func (e *Engine) Assign(p int32, now int64) { e.wm.Assign(p, now) }

// Touch marks partition p active at now without adding a reading.
func (e *Engine) Touch(p int32, now int64) { e.wm.Touch(p, now) }

// Watermark returns the watermark up to which windows have fired.
func (e *Engine) Watermark() int64 { return e.fired }

// Advance fires every window whose end is at or before the current
// watermark, appending the final results to dst in (output, start, key)
// order, and drops their state.
func (e *Engine) Advance(now int64, dst []Result) []Result {
	wm := e.wm.Current(now)
	if wm <= e.fired {
		return dst
	}
	e.fired = wm
	first := len(dst)
	for _, o := range e.outs {
		size := o.def.Window.Size
		for key, ws := range o.keys {
			kept := ws[:0]
			for _, w := range ws {
				if w.start+size <= wm {
					dst = append(dst, o.result(key, w, true))
					o.open--
				} else {
					kept = append(kept, w)
				}
			}
			if len(kept) == 0 {
				delete(o.keys, key)
			} else {
				o.keys[key] = kept
			}
		}
	}
	sortResults(dst[first:])
	return dst
}

// Partials appends the current, not yet final, result of every open window
// of output name to dst.
func (e *Engine) Partials(name string, dst []Result) []Result {
	for _, o := range e.outs {
		if o.def.Name != name {
			continue
		}
		for key, ws := range o.keys {
			for _, w := range ws {
				dst = append(dst, o.result(key, w, false))
			}
		}
	}
	return dst
}

// OpenWindows returns how many windows hold state, over all outputs.
func (e *Engine) OpenWindows() int {
	n := 0
	for _, o := range e.outs {
		n += o.open
	}
	return n
}

func (o *outputState) result(key string, w window, final bool) Result {
	return Result{
		Output: o.def.Name, GroupBy: o.def.GroupBy, Key: key,
		Start: w.start, End: w.start + o.def.Window.Size, Final: final, State: w.state,
	}
}

func sortResults(rs []Result) {
	sort.Slice(rs, func(i, j int) bool {
		a, b := &rs[i], &rs[j]
		if a.Output != b.Output {
			return a.Output < b.Output
		}
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		return a.Key < b.Key
	})
}

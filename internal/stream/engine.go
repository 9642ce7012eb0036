package stream

import (
	"errors"

	"github.com/pulsehq/pulse/internal/aggregate"
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// Result is the aggregate of one window of one group of one output.
type Result struct {
	Output  string
	GroupBy []string // field names
	Key     []string // group values as text, one per GroupBy field
	// Start and End bound the window, [Start, End), in ms.
	Start, End int64
	// Final is set once the watermark passed End; a final result may be
	// emitted again, updated, when a late event within the allowed
	// lateness arrives.
	Final bool
	// Kind is what the result does to its row in a store: a window's
	// first final inserts it, a final emitted again updates it, and a
	// retraction (KindDelete, Deleted) withdraws a result emitted before
	// for this window: a session window that merged into another one, or
	// an update that no longer passes the output's having.
	Kind   RecordKind
	Names  []string // value column names (aggregates, computed fields, or an operator's columns), shared; do not modify
	Values []event.Value
}

// win is one window of one group.
type win struct {
	start, end int64
	// blocks holds the count, sum, avg, min and max states, rest the
	// others; outState.state returns any (Layout.NewCompact).
	blocks aggregate.Blocks
	rest   []aggregate.State
	fired  bool // the watermark passed its end: its final is due
	dirty  bool // changed since it fired: emit it again
	// emitted is set while a final emitted for the window under its
	// current start stands (a sink holds it): that is what a retraction
	// withdraws.
	emitted bool
}

type keyState struct {
	id  string // the key of the group in its output's store
	key []string
	// logged is set while the state changed since the last changelog
	// flush (it is in outState.touched).
	logged bool
	// dropped is set once the group left its store.
	dropped bool
	// gen is the changelog generation holding the group's latest record,
	// or the one the next flush writes it in (changelog_gens.go).
	gen uint64
	// sched is when the group's live timer fires (noTimer: none).
	sched int64
	wins  []*win
	// gone holds the bounds of session windows already dropped (final and
	// past the allowed lateness) for as long as a new event could still
	// fall inside one: such an event belongs to a session that can no
	// longer change, so it is late rather than the start of a second,
	// overlapping session.
	gone [][2]int64
}

type outState struct {
	def        *pipeline.Output
	names      []string
	groupSlots []int
	// byField groups the aggregates by their input slot, so that a record
	// looks at each field once and skips the aggregates of its null
	// fields together (a city reading carries 3 or 4 of 11 metrics).
	byField []fieldAggs
	layout  *aggregate.Layout
	keys    GroupStore // the groups and their timers
	open    int
	dirty   int
	// early holds results due before the next Advance's own: retractions
	// of merged sessions, and what a group touched during a round that
	// Advance left unfinished fired first (see Engine.round).
	early            []Result
	size, slide, gap int64
	empty            [][]byte // encodings of new aggregate states, for the changelog
	scratch          []byte   // appendGroup's buffer for one state
	// touched lists the groups changed since the last changelog flush; a
	// group that is gone by then is written as a tombstone.
	touched []*keyState
}

// Engine runs a pipeline's outputs over decoded records: it assigns each
// record to its windows, folds it into their aggregates, and fires a
// window's final result once the watermark passes its end. State of a
// window is dropped once it can no longer change (end + allowed lateness
// passed), so memory stays bounded under a steady stream. An Engine is not
// safe for concurrent use.
type Engine struct {
	plan  *pipeline.Plan
	outs  []*outState
	wm    Watermarks
	fired int64 // the watermark windows fired up to; never moves back
	// round is set while groups with timers up to fired may be left
	// unvisited: an Advance that stopped at its max (the window stage
	// writes a minute's finals over several transactions when they are
	// many), or a restore from a transaction that ended so. An event for
	// such a group first fires what is due in it, so results do not
	// depend on where a round was cut.
	round    bool
	lateness int64
	keyBuf   []byte
	starts   []int64
	// logging enables change tracking for the changelog (EnableChangelog).
	logging bool
	// external: partition watermarks come from markers (Mark), not from
	// the records' own times and the processing clock.
	external bool
	// spill, when set, makes the disk store an output moves to once it
	// holds more than spillAt groups (StateAuto).
	spill   storeMaker
	spillAt int
	// gens counts the groups of every output by the changelog generation
	// of their latest record (changelog_gens.go).
	gens logGens
}

// NewEngine returns an engine for plan that keeps its state in memory;
// dec provides the record slots.
func NewEngine(plan *pipeline.Plan, dec *Decoder) *Engine {
	e, err := newEngineWith(plan, dec, defaultStore)
	if err != nil {
		panic(err) // only a test's defaultStore fails
	}
	return e
}

// storeMaker returns the GroupStore of output o of a new engine.
type storeMaker func(o *outState) (GroupStore, error)

// defaultStore is the store of NewEngine's engines: memory. Tests set it
// to run over the disk store (store_test.go).
var defaultStore storeMaker = func(*outState) (GroupStore, error) { return newMemStore(), nil }

// newEngineWith is NewEngine with the stores mk makes.
func newEngineWith(plan *pipeline.Plan, dec *Decoder, mk storeMaker) (*Engine, error) {
	t := plan.Time
	e := &Engine{
		plan:     plan,
		wm:       Watermarks{Disorder: t.MaxOutOfOrderness.Milliseconds(), IdleTimeout: t.IdleTimeout.Milliseconds(), Horizon: IdleHorizon(plan)},
		fired:    NoWatermark,
		lateness: t.AllowedLateness.Milliseconds(),
		gens:     newLogGens(),
	}
	for i := range plan.Outputs {
		def := &plan.Outputs[i]
		o := &outState{def: def,
			size: def.Window.Size.Milliseconds(), slide: def.Window.Slide.Milliseconds(), gap: def.Window.Gap.Milliseconds()}
		o.groupSlots = dec.groupSlots(def)
		var funcs []aggregate.Func
		var slots []int // per aggregate, its input slot; -1: count()
		for _, a := range def.Aggregates {
			o.names = append(o.names, a.Name)
			funcs = append(funcs, a.Func)
			if a.Field == "" {
				slots = append(slots, -1)
			} else {
				slots = append(slots, dec.Slot(a.Field))
			}
		}
		o.byField = groupByField(slots)
		o.layout = aggregate.NewLayout(funcs)
		var err error
		if o.keys, err = mk(o); err != nil {
			e.Close()
			return nil, err
		}
		e.outs = append(e.outs, o)
	}
	return e, nil
}

// Close releases the engine's stores; the engine is unusable after.
func (e *Engine) Close() error {
	var errs []error
	for _, o := range e.outs {
		errs = append(errs, o.keys.Close())
	}
	return errors.Join(errs...)
}

// fieldAggs lists the aggregates (indexes into a window's states) that
// read one slot; slot -1 is count().
type fieldAggs struct {
	slot int
	aggs []int
}

// groupByField groups aggregate indexes by slot, slots in order of first
// use.
func groupByField(slots []int) []fieldAggs {
	var out []fieldAggs
	at := map[int]int{}
	for i, s := range slots {
		j, ok := at[s]
		if !ok {
			j = len(out)
			at[s] = j
			out = append(out, fieldAggs{slot: s})
		}
		out[j].aggs = append(out[j].aggs, i)
	}
	return out
}

// UseMarkers makes the engine take partition watermarks from Mark only:
// records no longer move them and no partition turns idle by the clock.
// A window task uses it, so that replaying its input decides the same way.
func (e *Engine) UseMarkers() {
	e.external = true
	e.wm.IdleTimeout = 0
}

// Mark applies a watermark marker: source partition p has delivered event
// times up to maxTS (when seen) and is idle or not.
func (e *Engine) Mark(p int32, maxTS int64, seen, idle bool) { e.wm.Mark(p, maxTS, seen, idle) }

// Assign registers input partition p at processing time now; see
// Watermarks.Assign.
func (e *Engine) Assign(p int32, now int64) { e.wm.Assign(p, now) }

// Watermark returns the watermark up to which windows have fired.
func (e *Engine) Watermark() int64 { return e.fired }

// OpenWindows returns how many windows hold state, over all outputs.
func (e *Engine) OpenWindows() int {
	n := 0
	for _, o := range e.outs {
		n += o.open
	}
	return n
}

// Add folds record r from partition p, processed at time now, into the
// windows of every output. It returns a bit set of the outputs (bit i for
// output i) for which r came too late: every window it belongs to there
// was already final and past the allowed lateness. Those outputs are left
// unchanged; a record late for every output does not move the watermark.
func (e *Engine) Add(p int32, r *Record, now int64) (late uint64) {
	for i, o := range e.outs {
		ks := e.group(o, r)
		if e.round && ks.sched <= e.fired {
			// Advance has not reached this group yet: what is due in it
			// fires now, before the event, as one whole Advance would
			// have fired it.
			o.early = e.visit(o, ks, o.early)
			ks = e.group(o, r)
		}
		var ok bool
		if o.gap > 0 {
			ok = e.addSession(o, ks, r)
		} else {
			ok = e.addFixed(o, ks, r)
		}
		if ok {
			e.touch(o, ks)
		} else {
			late |= 1 << i
			if len(ks.wins) == 0 && len(ks.gone) == 0 {
				e.drop(o, ks)
			}
		}
	}
	// An event late everywhere changes nothing, not even the watermark.
	if late != 1<<len(e.outs)-1 && !e.external {
		e.wm.Observe(p, r.TS, now)
	}
	return late
}

// group returns the state of r's group in o, creating it if needed.
func (e *Engine) group(o *outState, r *Record) *keyState {
	e.keyBuf = appendGroupText(e.keyBuf[:0], o.groupSlots, r)
	if ks := o.keys.Lookup(e.keyBuf); ks != nil {
		return ks
	}
	ks := &keyState{id: string(e.keyBuf), key: make([]string, len(o.groupSlots)), sched: noTimer}
	for i, s := range o.groupSlots {
		ks.key[i] = string(r.Vals[s].AppendKeyText(nil))
	}
	e.insert(o, ks, e.gens.cur())
	return ks
}

// insert adds ks, a group o does not hold, whose latest changelog record
// is in generation gen.
func (e *Engine) insert(o *outState, ks *keyState, gen uint64) {
	ks.gen = gen
	e.gens.add(gen)
	o.keys.Insert(ks)
}

// drop removes group ks from o.
func (e *Engine) drop(o *outState, ks *keyState) {
	e.gens.remove(ks.gen)
	ks.dropped = true
	o.keys.Delete(ks.id)
}

// touch records that group ks changed: the next changelog flush writes
// it.
func (e *Engine) touch(o *outState, ks *keyState) {
	if e.logging && !ks.logged {
		ks.logged = true
		o.touched = append(o.touched, ks)
		e.gens.move(ks)
	}
}

// state returns the state of aggregate i of window w.
func (o *outState) state(w *win, i int) aggregate.State { return o.layout.State(&w.blocks, w.rest, i) }

func (e *Engine) newWin(o *outState, start, end int64) *win {
	w := &win{start: start, end: end}
	w.rest = o.layout.NewCompact(&w.blocks)
	o.open++
	return w
}

func (e *Engine) fold(o *outState, ks *keyState, w *win, r *Record) {
	for _, f := range o.byField {
		var v event.Value
		if f.slot >= 0 {
			v = r.Vals[f.slot]
			if v.Kind == event.Null {
				continue // every function of a field ignores nulls
			}
		}
		for _, i := range f.aggs {
			o.layout.AddCompact(&w.blocks, w.rest, i, v, r.TS)
		}
	}
	if w.fired && !w.dirty {
		w.dirty = true
		o.dirty++
		o.schedule(ks, NoWatermark) // its updated final is due now
	}
}

// addFixed handles tumbling and hopping windows.
func (e *Engine) addFixed(o *outState, ks *keyState, r *Record) bool {
	e.starts = e.starts[:0]
	if o.slide > 0 {
		e.starts = hoppingStarts(e.starts, r.TS, o.size, o.slide)
	} else {
		e.starts = append(e.starts, tumblingStart(r.TS, o.size))
	}
	added := false
	for _, start := range e.starts {
		end := start + o.size
		var w *win
		for _, x := range ks.wins {
			if x.start == start {
				w = x
				break
			}
		}
		if w == nil {
			if end+e.lateness <= e.fired {
				continue // dropped already: too late for this window
			}
			w = e.newWin(o, start, end)
			if end <= e.fired {
				// A late event within the allowed lateness for a window
				// whose (empty) final already passed: emit it as final.
				w.fired = true
				o.schedule(ks, end+e.lateness)
			} else {
				o.schedule(ks, end)
			}
			ks.wins = append(ks.wins, w)
		}
		e.fold(o, ks, w, r)
		added = true
	}
	return added
}

// addSession merges r into the sessions of its group: a session is
// [first event, last event + gap); sessions that r's own [ts, ts+gap)
// overlaps merge into one.
func (e *Engine) addSession(o *outState, ks *keyState, r *Record) bool {
	start, end := r.TS, r.TS+o.gap
	var target *win
	for _, w := range ks.wins {
		if w.start < end && start < w.end {
			target = w
			break
		}
	}
	if target == nil {
		if end+e.lateness <= e.fired {
			return false
		}
		for _, g := range ks.gone {
			if g[0] < end && start < g[1] {
				return false
			}
		}
		target = e.newWin(o, start, end)
		target.fired = end <= e.fired
		ks.wins = append(ks.wins, target)
	} else if target.fired && start < target.start {
		o.retract(ks, target) // its start moves
	}
	target.start = min(target.start, start)
	target.end = max(target.end, end)
	e.fold(o, ks, target, r)
	// The grown session can overlap others now, e.g. a late event that
	// bridges two sessions.
	kept := ks.wins[:0]
	for _, x := range ks.wins {
		if x != target && x.start < target.end && target.start < x.end {
			o.mergeInto(ks, target, x)
			continue
		}
		kept = append(kept, x)
	}
	clear(ks.wins[len(kept):]) // merged windows must not stay reachable
	ks.wins = kept
	// A fired session that grew past the watermark (a late event extended
	// it or bridged it to an open session) is open again: its final is
	// withdrawn and it fires again once the watermark passes its new end.
	if target.fired && target.end > e.fired {
		o.retract(ks, target)
		target.fired = false
		if target.dirty {
			target.dirty = false
			o.dirty--
		}
	}
	// A timer set for the session's old end finds nothing due and sets
	// the next one; only an earlier due time needs a timer now.
	if target.fired {
		o.schedule(ks, target.end+e.lateness)
	} else {
		o.schedule(ks, target.end)
	}
	return true
}

// retract withdraws the final emitted for w under its current start, if
// one stands.
func (o *outState) retract(ks *keyState, w *win) {
	if !w.emitted {
		return
	}
	w.emitted = false
	o.early = append(o.early, Result{Output: o.def.Name, GroupBy: o.def.GroupBy, Key: ks.key,
		Start: w.start, End: w.end, Kind: KindDelete, Names: o.names})
}

// mergeInto folds session src into dst and forgets src, withdrawing the
// results emitted under bounds that no longer exist.
func (o *outState) mergeInto(ks *keyState, dst, src *win) {
	if src.fired {
		o.retract(ks, src)
	}
	if dst.fired && src.start < dst.start {
		o.retract(ks, dst)
	}
	for i := range o.layout.Len() {
		o.state(dst, i).Merge(o.state(src, i))
	}
	dst.start = min(dst.start, src.start)
	dst.end = max(dst.end, src.end)
	if src.dirty {
		o.dirty--
	}
	if dst.fired && !dst.dirty {
		dst.dirty = true
		o.dirty++
	}
	o.open--
}

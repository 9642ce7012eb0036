package stream

import (
	"github.com/pulsehq/pulse/internal/event"
)

// Advance moves the watermark to its current value at processing time now
// and appends to dst: retractions of merged session windows, the final
// result of every window whose end the watermark passed, and updated final
// results of windows that late events changed within the allowed
// lateness. Windows past end + allowed lateness are dropped. With max > 0
// it returns once it appended max results or more; the next call goes on
// where it stopped (see Operator.Advance).
func (e *Engine) Advance(now int64, dst []Result, max int) []Result {
	if wm := e.wm.Current(now); wm > e.fired {
		e.fired = wm
	}
	start := len(dst)
	for _, o := range e.outs {
		dst = append(dst, o.early...)
		clear(o.early)
		o.early = o.early[:0]
	}
	for _, o := range e.outs {
		for {
			if max > 0 && len(dst)-start >= max {
				e.round = true // unfinished: the next call goes on
				return dst
			}
			t, ok := o.keys.Due(e.fired)
			if !ok {
				break
			}
			ks := o.keys.Get(t.id)
			if ks == nil || ks.sched != t.at {
				continue // stale
			}
			dst = e.visit(o, ks, dst)
		}
	}
	e.round = false
	return dst
}

// visit fires, re-emits and drops what is due in group ks, and sets its
// next timer.
func (e *Engine) visit(o *outState, ks *keyState, dst []Result) []Result {
	kept := ks.wins[:0]
	changed := false
	for _, w := range ks.wins {
		switch {
		case !w.fired && w.end <= e.fired:
			w.fired, w.emitted = true, true
			dst = append(dst, o.result(ks, w, true))
			changed = true
		case w.dirty:
			r := o.result(ks, w, true)
			if w.emitted {
				r.Kind = KindUpdate // else a late window's first final
			}
			w.dirty, w.emitted = false, true
			o.dirty--
			dst = append(dst, r)
			changed = true
		}
		if w.fired && w.end+e.lateness <= e.fired {
			o.open--
			if o.gap > 0 {
				ks.gone = append(ks.gone, [2]int64{w.start, w.end})
			}
			changed = true
			continue
		}
		kept = append(kept, w)
	}
	n := len(ks.gone)
	ks.gone = o.pruneGone(ks.gone, e.fired, e.lateness)
	changed = changed || len(ks.gone) != n
	clear(ks.wins[len(kept):]) // dropped windows must not stay reachable
	ks.wins = kept
	if changed {
		e.touch(o, ks) // before a drop: a dropped group's tombstone is due
	}
	if len(kept) == 0 && len(ks.gone) == 0 {
		e.drop(o, ks)
		ks.sched = noTimer
	} else {
		o.reschedule(ks, e.lateness)
	}
	return dst
}

// pruneGone forgets dropped sessions no new event can fall into any more:
// an event before a session's end that is gap + lateness behind the
// watermark is late by the ordinary rule.
func (o *outState) pruneGone(gone [][2]int64, fired, lateness int64) [][2]int64 {
	kept := gone[:0]
	for _, g := range gone {
		if g[1]+o.gap+lateness > fired {
			kept = append(kept, g)
		}
	}
	return kept
}

// Partials appends the current result of every window of output i that is
// not final yet.
func (e *Engine) Partials(i int, dst []Result) []Result {
	o := e.outs[i]
	o.keys.Each(func(ks *keyState) {
		for _, w := range ks.wins {
			if !w.fired {
				dst = append(dst, o.result(ks, w, false))
			}
		}
	})
	return dst
}

func (o *outState) result(ks *keyState, w *win, final bool) Result {
	r := Result{Output: o.def.Name, GroupBy: o.def.GroupBy, Key: ks.key, Start: w.start, End: w.end,
		Final: final, Names: o.names, Values: make([]event.Value, o.layout.Len())}
	for i := range r.Values {
		if v, ok := o.state(w, i).Result(); ok {
			r.Values[i] = v
		}
	}
	return r
}

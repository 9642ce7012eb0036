package stream

import (
	"container/heap"
	"math"
)

// GroupStore holds the keyed state of one output: each group's windows,
// by group id. The engine reaches its keyed state only through it, by
// point lookups, and finds the windows due to fire or to be dropped with
// timers of its own, never by scanning the store. That keeps the door open
// for a disk-backed store (Pebble) when state outgrows memory: it would
// keep the groups in use in memory, persist each commit's encoded changes
// (the changelog records Engine.AppendChanges returns) and evict groups
// that are clean.
type GroupStore interface {
	// Lookup returns the group with id, or nil.
	Lookup(id []byte) *keyState
	// Get is Lookup by a string id.
	Get(id string) *keyState
	// Insert adds ks under ks.id.
	Insert(ks *keyState)
	// Delete removes the group with id.
	Delete(id string)
	// Len returns how many groups the store holds.
	Len() int
	// Each calls fn for every group, in no particular order.
	Each(fn func(ks *keyState))
}

// memStore is the in-memory GroupStore.
type memStore map[string]*keyState

func (m memStore) Lookup(id []byte) *keyState { return m[string(id)] }
func (m memStore) Get(id string) *keyState    { return m[id] }
func (m memStore) Insert(ks *keyState)        { m[ks.id] = ks }
func (m memStore) Delete(id string)           { delete(m, id) }
func (m memStore) Len() int                   { return len(m) }
func (m memStore) Each(fn func(ks *keyState)) {
	for _, ks := range m {
		fn(ks)
	}
}

// timer asks Advance to visit group id once the watermark reaches at.
type timer struct {
	at int64
	id string
}

// timers is a min-heap of timers by time. Each group has at most one live
// timer, at keyState.sched, the earliest moment something of it is due;
// others are stale (superseded, or the group was dropped) and skipped.
type timers []timer

func (t timers) Len() int           { return len(t) }
func (t timers) Less(i, j int) bool { return t[i].at < t[j].at }
func (t timers) Swap(i, j int)      { t[i], t[j] = t[j], t[i] }
func (t *timers) Push(x any)        { *t = append(*t, x.(timer)) }
func (t *timers) Pop() any {
	old := *t
	x := old[len(old)-1]
	*t = old[:len(old)-1]
	return x
}

// noTimer is keyState.sched of a group without a timer.
const noTimer = math.MaxInt64

// schedule makes sure group ks is visited once the watermark reaches at.
func (o *outState) schedule(ks *keyState, at int64) {
	if at < ks.sched {
		ks.sched = at
		heap.Push(&o.timers, timer{at: at, id: ks.id})
	}
}

// reschedule sets the timer of ks to the earliest moment one of its
// windows fires, is dropped, or one of its dropped sessions is forgotten.
func (o *outState) reschedule(ks *keyState, lateness int64) {
	ks.sched = noTimer
	for _, w := range ks.wins {
		switch {
		case w.dirty:
			o.schedule(ks, NoWatermark)
		case w.fired:
			o.schedule(ks, w.end+lateness)
		default:
			o.schedule(ks, w.end)
		}
	}
	for _, g := range ks.gone {
		o.schedule(ks, g[1]+o.gap+lateness)
	}
}

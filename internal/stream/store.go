package stream

import (
	"container/heap"
	"iter"
	"maps"
	"math"
)

// GroupStore holds the keyed state of one output: each group's windows,
// by group id, and the timers that say when a group is due to be visited.
// The engine reaches its keyed state only through it, by point lookups,
// and finds the windows due to fire or to be dropped by its timers, never
// by scanning the store. memStore keeps everything in Go memory;
// diskStore (store_disk.go) keeps the groups and timers in Pebble with a
// bounded cache of decoded groups.
//
// A group returned by Lookup, Get or Insert stays valid, and the engine
// may change it, until the next call of Lookup, Get, Insert or Delete: a
// store may evict it then. The changelog, not the store, is what a task
// restores from: a store on disk is a cache of the changelog.
type GroupStore interface {
	// Lookup returns the group with id, or nil.
	Lookup(id []byte) *keyState
	// Get is Lookup by a string id.
	Get(id string) *keyState
	// Current returns the group the store holds under ks.id, ks being
	// one it returned before: ks itself while it was neither dropped nor
	// evicted, or nil.
	Current(ks *keyState) *keyState
	// Insert adds ks, a group the store does not hold, under ks.id.
	Insert(ks *keyState)
	// Delete removes the group with id.
	Delete(id string)
	// Len returns how many groups the store holds.
	Len() int
	// Each calls fn for every group, in no particular order. fn may
	// read a group, clear its logged flag and change its gen, and call
	// Persisted, nothing else.
	Each(fn func(ks *keyState))
	// Sweep visits up to visits groups (at most each once), continuing
	// from where the last sweep stopped and round the store, and calls
	// fn for those whose gen is below stale. fn may read a group and
	// change its gen, and call Persisted, nothing else. A sweep that goes
	// round and round meets every group that stays in the store.
	Sweep(visits int, stale uint64, fn func(ks *keyState))

	// Schedule sets a timer: group id is due once the watermark reaches
	// at.
	Schedule(at int64, id string)
	// Due removes and returns a timer that is due at watermark upTo
	// (at <= upTo); ok is false when none is.
	Due(upTo int64) (t timer, ok bool)
	// Timers returns how many timers are set, live or stale.
	Timers() int

	// AppendPending appends the changelog encoding of group id, if the
	// store holds it encoded with changes the changelog flush has not
	// written (a disk store evicted it), and counts them as written.
	AppendPending(dst []byte, id string) ([]byte, bool)
	// Persisted tells the store that value, the changelog encoding of
	// ks (appendGroup), was written to the changelog.
	Persisted(ks *keyState, value []byte)
	// Flushed tells the store that the changelog flush is complete:
	// every group changed before it was written.
	Flushed()
	// Close releases what the store holds (files, memory).
	Close() error
}

// memStore is the in-memory GroupStore, the default.
type memStore struct {
	m map[string]*keyState
	t timers
	// hand is the iteration over m a sweep continues (nil: none yet),
	// and stop ends it. Go's map iteration meets every entry present
	// from its start to its end once, whatever is added or deleted in
	// between.
	hand func() (string, *keyState, bool)
	stop func()
}

func newMemStore() *memStore { return &memStore{m: map[string]*keyState{}} }

func (s *memStore) Lookup(id []byte) *keyState { return s.m[string(id)] }
func (s *memStore) Get(id string) *keyState    { return s.m[id] }

// Current needs no lookup unless ks was dropped: the memory store evicts
// nothing. A group dropped and created again is the new one, as the disk
// store answers.
func (s *memStore) Current(ks *keyState) *keyState {
	if ks.dropped {
		return s.m[ks.id]
	}
	return ks
}
func (s *memStore) Insert(ks *keyState) { s.m[ks.id] = ks }
func (s *memStore) Delete(id string)    { delete(s.m, id) }
func (s *memStore) Len() int            { return len(s.m) }
func (s *memStore) Each(fn func(ks *keyState)) {
	for _, ks := range s.m {
		fn(ks)
	}
}

func (s *memStore) Schedule(at int64, id string) { heap.Push(&s.t, timer{at: at, id: id}) }

func (s *memStore) Due(upTo int64) (timer, bool) {
	if len(s.t) == 0 || s.t[0].at > upTo {
		return timer{}, false
	}
	return heap.Pop(&s.t).(timer), true
}

func (s *memStore) Timers() int                                       { return len(s.t) }
func (s *memStore) Persisted(*keyState, []byte)                       {}
func (s *memStore) AppendPending(dst []byte, _ string) ([]byte, bool) { return dst, false }
func (s *memStore) Flushed()                                          {}

func (s *memStore) Close() error {
	if s.stop != nil {
		s.stop()
		s.hand, s.stop = nil, nil
	}
	return nil
}

func (s *memStore) Sweep(visits int, stale uint64, fn func(ks *keyState)) {
	for visits = min(visits, len(s.m)); visits > 0; visits-- {
		if s.hand == nil {
			s.hand, s.stop = iter.Pull2(maps.All(s.m))
		}
		_, ks, ok := s.hand()
		if !ok {
			s.hand, s.stop = nil, nil // round: the next visit starts again
			continue
		}
		if ks.gen < stale {
			fn(ks)
		}
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
		o.keys.Schedule(at, ks.id)
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

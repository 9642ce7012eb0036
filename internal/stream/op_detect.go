package stream

import (
	"container/heap"
	"fmt"
	"math"
	"slices"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// detectOp is the Operator of a detect output: a keyed, stateful detector
// over the events in event-time order. Each key (the output's group_by)
// buffers its events until the watermark passes them, then feeds them to
// the detector in event-time order, ties broken by source partition and
// then arrival (offset) order, so that a replay, a restore or another
// delivery order of the same events gives the same results. An event
// behind the watermark the operator has processed up to is late.
//
// Keyed state lives in a DetectStore, reached by point lookups; the keys
// with buffered events are found with a heap of event-time timers, never
// by scanning the store.
type detectOp struct {
	def    *pipeline.Output
	det    Detector
	stride int // float64s of detector state per field
	groups []int
	slots  []int // per watched field, its slot
	fields []event.Value
	names  []string // value, then the detector's columns
	// groupBy names a row's key: the group fields, then "field" (which of
	// the fields stood out: part of the row's identity).
	groupBy []string
	keys    DetectStore
	timers  keyTimers
	wm      Watermarks
	fired   int64  // processed every event before this time; never moves back
	seq     uint64 // arrival counter, for ties
	// waiting counts the keys with buffered events (a live timer each).
	waiting int
	touched []string // keys changed since the last changelog flush
	point   []float64
	slab    []event.Value
	keyBuf  []byte
	err     error
}

// DetectStore holds a detect output's keyed state, by key id, as
// GroupStore does for windows: point lookups only, so that a disk-backed
// store can hold it later.
type DetectStore interface {
	Lookup(id []byte) *detectKey
	Get(id string) *detectKey
	Insert(k *detectKey)
	Delete(id string)
	Len() int
	Each(fn func(k *detectKey))
}

// detectKey is the state of one key: the detector's state per field and
// the events waiting for the watermark, sorted.
type detectKey struct {
	id    string
	key   []string
	state []float64 // len(fields) × stride
	pts   []dpoint  // buffered, in processing order
	vals  []float64 // len(pts) × len(fields); NaN: the event has no value
	sched int64     // the live timer (noTimer: none)
	// logged is set while the key is listed in detectOp.touched.
	logged bool
}

// dpoint is one buffered event of a key.
type dpoint struct {
	ts  int64
	pid int32
	seq uint64
}

func (a dpoint) before(b dpoint) bool {
	if a.ts != b.ts {
		return a.ts < b.ts
	}
	if a.pid != b.pid {
		return a.pid < b.pid
	}
	return a.seq < b.seq
}

type memDetectStore map[string]*detectKey

func (m memDetectStore) Lookup(id []byte) *detectKey { return m[string(id)] }
func (m memDetectStore) Get(id string) *detectKey    { return m[id] }
func (m memDetectStore) Insert(k *detectKey)         { m[k.id] = k }
func (m memDetectStore) Delete(id string)            { delete(m, id) }
func (m memDetectStore) Len() int                    { return len(m) }
func (m memDetectStore) Each(fn func(k *detectKey)) {
	for _, k := range m {
		fn(k)
	}
}

// keyTimers is a min-heap of timers by time, then key id, so that keys
// due together are processed in one order whatever order they were
// scheduled in. Each key has at most one live timer (detectKey.sched);
// the others are stale and skipped.
type keyTimers []timer

func (t keyTimers) Len() int { return len(t) }
func (t keyTimers) Less(i, j int) bool {
	return t[i].at < t[j].at || t[i].at == t[j].at && t[i].id < t[j].id
}
func (t keyTimers) Swap(i, j int) { t[i], t[j] = t[j], t[i] }
func (t *keyTimers) Push(x any)   { *t = append(*t, x.(timer)) }
func (t *keyTimers) Pop() any {
	old := *t
	x := old[len(old)-1]
	*t = old[:len(old)-1]
	return x
}

var (
	_ Operator = (*detectOp)(nil)
	_ rejecter = (*detectOp)(nil)
)

// newDetectOp returns the operator of the detect output of plan (its only
// output); dec lays out the records.
func newDetectOp(plan *pipeline.Plan, dec *Decoder) (*detectOp, error) {
	def := &plan.Outputs[0]
	if def.Detect == nil {
		return nil, fmt.Errorf("output %s: no detector configured", def.Name)
	}
	det, err := newDetector(def.Detect)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", def.Name, err)
	}
	o := &detectOp{def: def, det: det, stride: det.StateLen(), groups: dec.groupSlots(def), keys: memDetectStore{}, fired: NoWatermark, wm: markerWM(plan)}
	for _, f := range def.Detect.Fields {
		o.slots = append(o.slots, dec.Slot(f))
		o.fields = append(o.fields, event.StringValue(f))
	}
	o.names = append([]string{"value"}, det.Columns()...)
	o.groupBy = def.Groups() // the group fields, then field
	o.point = make([]float64, len(o.slots))
	return o, nil
}

func (o *detectOp) Assign(p int32, now int64) { o.wm.Assign(p, now) }

func (o *detectOp) Mark(p int32, maxTS int64, seen, idle bool) { markWM(&o.wm, p, maxTS, seen, idle) }

func (o *detectOp) Rejected() error { return o.err }

// Add buffers r in its key until the watermark passes it. It is late when
// the operator has processed past its time already.
func (o *detectOp) Add(p int32, r *Record, now int64) uint64 {
	o.err = nil
	if r.TS < o.fired {
		return 1
	}
	has := false
	for i, s := range o.slots {
		v := r.Vals[s]
		switch {
		case v.Kind == event.Null:
			o.point[i] = math.NaN()
		case v.Kind != event.Number:
			o.err = fmt.Errorf("output %s: field %s is %s (%s); the detector needs a number", o.def.Name, o.fields[i].Str, kindName(v.Kind), v.AppendJSON(nil))
			return 0
		case math.IsInf(v.Num, 0) || math.IsNaN(v.Num):
			o.err = fmt.Errorf("output %s: field %s is not a finite number", o.def.Name, o.fields[i].Str)
			return 0
		default:
			o.point[i] = v.Num
			has = true
		}
	}
	if r.Kind != KindInsert && o.correct(r) {
		return 0
	}
	if !has {
		return 0 // nothing to score
	}
	k := o.key(r)
	o.seq++
	pt := dpoint{ts: r.TS, pid: p, seq: o.seq}
	// Events arrive mostly in order: find the place from the end.
	i := len(k.pts)
	for i > 0 && pt.before(k.pts[i-1]) {
		i--
	}
	if len(k.pts) == 0 {
		o.waiting++
	}
	nf := len(o.slots)
	k.pts = append(k.pts, dpoint{})
	copy(k.pts[i+1:], k.pts[i:])
	k.pts[i] = pt
	k.vals = append(k.vals, o.point...)
	copy(k.vals[(i+1)*nf:], k.vals[i*nf:])
	copy(k.vals[i*nf:], o.point)
	o.schedule(k, k.pts[0].ts)
	o.touch(k)
	return 0
}

// correct applies an update or a delete of a row of another pipeline's
// output (its identity: the key and the time) to the buffered point of
// that row, and reports whether it is done: a delete is, and an update
// that replaced the point's values; an update of a row not buffered is
// added as a new point. The row's time is not behind the watermark (Add
// checked): its point has not been scored yet.
func (o *detectOp) correct(r *Record) bool {
	o.keyBuf = appendGroupText(o.keyBuf[:0], o.groups, r)
	k := o.keys.Lookup(o.keyBuf)
	i := -1
	if k != nil {
		for j, pt := range k.pts {
			if pt.ts == r.TS {
				i = j
				break
			}
		}
	}
	if i < 0 {
		return r.Kind == KindDelete // nothing to delete; an update inserts
	}
	nf := len(o.slots)
	if r.Kind == KindUpdate {
		copy(k.vals[i*nf:(i+1)*nf], o.point)
	} else {
		k.pts = slices.Delete(k.pts, i, i+1)
		k.vals = slices.Delete(k.vals, i*nf, (i+1)*nf)
		if len(k.pts) == 0 {
			o.waiting--
			k.sched = noTimer // its timer is stale now
		}
	}
	o.touch(k)
	return true
}

// key returns the state of r's key, creating it.
func (o *detectOp) key(r *Record) *detectKey {
	o.keyBuf = appendGroupText(o.keyBuf[:0], o.groups, r)
	if k := o.keys.Lookup(o.keyBuf); k != nil {
		return k
	}
	k := &detectKey{id: string(o.keyBuf), key: make([]string, len(o.groups)), state: make([]float64, len(o.slots)*o.stride), sched: noTimer}
	for i, s := range o.groups {
		k.key[i] = string(r.Vals[s].AppendKeyText(nil))
	}
	o.keys.Insert(k)
	return k
}

func (o *detectOp) touch(k *detectKey) {
	if !k.logged {
		k.logged = true
		o.touched = append(o.touched, k.id)
	}
}

// schedule makes sure key k is visited once the watermark passes at.
func (o *detectOp) schedule(k *detectKey, at int64) {
	if at < k.sched {
		k.sched = at
		heap.Push(&o.timers, timer{at: at, id: k.id})
	}
}

// Advance feeds the detector every buffered event the watermark passed
// (event time < watermark) and returns the anomalies, per key in event
// time order.
func (o *detectOp) Advance(now int64, dst []Result, _ int) []Result {
	wm := o.wm.Current(now)
	if wm == NoWatermark || wm <= o.fired {
		return dst
	}
	o.fired = wm
	for len(o.timers) > 0 && o.timers[0].at < wm {
		t := heap.Pop(&o.timers).(timer)
		k := o.keys.Get(t.id)
		if k == nil || k.sched != t.at {
			continue // stale
		}
		k.sched = noTimer
		dst = o.process(k, wm, dst)
	}
	return dst
}

// process feeds key k's buffered events before wm to the detector.
func (o *detectOp) process(k *detectKey, wm int64, dst []Result) []Result {
	nf := len(o.slots)
	n := 0
	for n < len(k.pts) && k.pts[n].ts < wm {
		pt := k.pts[n]
		for f := range nf {
			x := k.vals[n*nf+f]
			if math.IsNaN(x) {
				continue
			}
			row := o.take(len(o.names))
			row = append(row, event.NumberValue(x))
			row, anomaly := o.det.Step(k.state[f*o.stride:(f+1)*o.stride], x, row)
			if anomaly {
				key := append(k.key[:len(k.key):len(k.key)], o.fields[f].Str)
				dst = append(dst, Result{Output: o.def.Name, GroupBy: o.groupBy, Key: key,
					Start: pt.ts, End: pt.ts, Final: true, Names: o.names, Values: row})
				o.slab = o.slab[:len(o.slab)+len(row)]
			}
		}
		n++
	}
	if n == 0 {
		o.schedule(k, k.pts[0].ts)
		return dst
	}
	k.pts = k.pts[:copy(k.pts, k.pts[n:])]
	k.vals = k.vals[:copy(k.vals, k.vals[n*nf:])]
	if len(k.pts) > 0 {
		o.schedule(k, k.pts[0].ts)
	} else {
		o.waiting--
	}
	o.touch(k)
	return dst
}

// take returns an empty row with room for n values at the free end of the
// slab; a row kept is taken out of it by the caller. Chunks are never
// reused: the results returned stay with the caller.
func (o *detectOp) take(n int) []event.Value {
	if cap(o.slab)-len(o.slab) < n {
		o.slab = make([]event.Value, 0, max(1024, n))
	}
	return o.slab[len(o.slab) : len(o.slab) : len(o.slab)+n]
}

// Watermark returns the event time before which every event was fed to
// the detector.
func (o *detectOp) Watermark() int64 { return o.fired }

// Groups returns how many keys hold state.
func (o *detectOp) Groups() int { return o.keys.Len() }

// OpenWindows returns how many keys wait for the watermark (a pending
// timer each).
func (o *detectOp) OpenWindows() int { return o.waiting }

func (o *detectOp) Partials(dst []Result) []Result { return dst }

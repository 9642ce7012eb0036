package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"unsafe"

	"github.com/pulsehq/pulse/internal/aggregate"
	"github.com/pulsehq/pulse/internal/event"
)

// A window task's state lives in memory and in a compacted changelog
// topic: one record per group of an output holding all of the group's
// windows, and one meta record holding the watermarks. Each commit writes
// the groups that changed since the previous one, and a tombstone for
// each group whose state was dropped, so the changelog after compaction is
// the task's state. Restoring reads it back record by record.
//
// Keys: metaKey, snapshotKey, or groupKey followed by the output name
// (length prefixed) and the group id. Values start with changelogVersion.
// A snapshot begins with a snapshotKey record: what follows it holds the
// whole state, so a restore that meets one starts over from it.
const (
	metaKey          = 0
	groupKey         = 1
	snapshotKey      = 2
	changelogVersion = 1
)

// Window flags in group records.
const (
	flagFired   = 1
	flagDirty   = 2
	flagPending = 4 // fired, but no final of it stands (see win.emitted)
)

// Change is one changelog record; a nil Value deletes the key.
type Change struct {
	Key, Value []byte
}

// EnableChangelog makes the engine track which groups change, for
// AppendChanges. Without it, it tracks nothing.
func (e *Engine) EnableChangelog() { e.logging = true }

// changeWriter emits the changelog records of one flush, as the keyed
// operators (the window engine, detect) write them: group records keyed
// by output and group id, tombstones, the snapshot start and the meta
// record. Keys and values are appended to arena blocks that the emitted
// records keep alive (the producer holds them until the broker
// acknowledged them), so a flush of any size holds only what the producer
// has not yet sent.
type changeWriter struct {
	emit func(Change)
	a    arena
}

// snapshotStart emits the record a snapshot begins with.
func (w *changeWriter) snapshotStart() {
	w.emit(Change{Key: []byte{snapshotKey}, Value: []byte{changelogVersion}})
}

// key returns the record key of group id of output.
func (w *changeWriter) key(output, id string) []byte {
	return w.a.keep(appendGroupKey(w.a.free(), output, id))
}

// tombstone emits the deletion of group id of output.
func (w *changeWriter) tombstone(output, id string) { w.emit(Change{Key: w.key(output, id)}) }

// put emits the record of key (from w.key) with the value enc appends to
// the slice it is given, and returns the value.
func (w *changeWriter) put(key []byte, enc func([]byte) []byte) []byte {
	value := w.a.keep(enc(w.a.free()))
	w.emit(Change{Key: key, Value: value})
	return value
}

// meta emits the meta record, last: a restore that read it has the whole
// flush.
func (w *changeWriter) meta(value []byte) { w.emit(Change{Key: []byte{metaKey}, Value: value}) }

// WriteChanges emits the changelog records of everything that changed
// since the last call: the state of every group that changed, a tombstone
// for every group dropped, and the meta record. Call it after Advance, so
// that no retraction is pending.
//
// It then rewrites, unchanged, groups whose latest record is so old that
// the changelog holds more than the bound (changelog_gens.go), a sweep of
// the store at a time, so that the records before LogStart may be
// deleted.
func (e *Engine) WriteChanges(emit func(Change)) {
	n := 0
	w := changeWriter{emit: func(c Change) { n++; emit(c) }}
	for _, o := range e.outs {
		name := o.def.Name
		for _, ks := range o.touched {
			key := w.key(name, ks.id) // before the value: both append to the arena
			if value, ok := o.keys.AppendPending(w.a.free(), ks.id); ok {
				// A disk store evicted it: it has the encoding.
				w.emit(Change{Key: key, Value: w.a.keep(value)})
				continue
			}
			if ks = o.keys.Current(ks); ks == nil {
				w.emit(Change{Key: key})
				continue
			}
			if !ks.logged {
				continue // listed twice (dropped and created again): written
			}
			ks.logged = false
			o.keys.Persisted(ks, w.put(key, func(b []byte) []byte { return o.appendGroup(b, ks) }))
		}
		o.touched = o.touched[:0]
		o.keys.Flushed()
	}
	e.clean(&w, n)
	e.spillIfLarge()
	w.meta(e.appendMeta(nil))
	e.gens.next(n)
}

// clean rewrites the groups whose latest record is beyond the changelog's
// bound, as far as a sweep of twice as many groups as the flush wrote
// (written) reaches: a store's sweep comes round to every group in about
// half the time the changelog takes to grow by its bound.
func (e *Engine) clean(w *changeWriter, written int) {
	stale := e.gens.staleBelow(max(snapshotRatio*e.Groups(), snapshotMin), written)
	if stale <= e.gens.start() {
		return
	}
	visits := 2*written + cleanMinVisits
	for _, o := range e.outs {
		name := o.def.Name
		o.keys.Sweep(visits, stale, func(ks *keyState) {
			e.gens.move(ks)
			o.keys.Persisted(ks, w.put(w.key(name, ks.id), func(b []byte) []byte { return o.appendGroup(b, ks) }))
		})
	}
}

// cleanMinVisits is the least a cleaning flush sweeps.
const cleanMinVisits = 1024

// LogGen returns the changelog generation the next WriteChanges writes.
func (e *Engine) LogGen() uint64 { return e.gens.cur() }

// LogStart returns the oldest changelog generation a restore needs: the
// records the flushes before it wrote may be deleted. Generation
// restoredGen stands for the whole changelog a restore read.
func (e *Engine) LogStart() uint64 { return e.gens.start() }

// WriteSnapshot emits the changelog records of the whole state: the
// snapshot start, a tombstone for every group dropped since the last
// call, the state of every group, and the meta record. Once a snapshot is
// committed, the records before it in the changelog partition are no
// longer needed (Windower deletes them), so the changelog stays about as
// large as the state without waiting for the broker's compaction. It
// clears what changed, as WriteChanges does. The window stage no longer
// asks the engine for snapshots (it cleans its changelog instead, see
// LogStart): this writes what earlier versions wrote, which restores must
// still read, and the restore tests write it.
func (e *Engine) WriteSnapshot(emit func(Change)) {
	n := 0
	w := changeWriter{emit: func(c Change) { n++; emit(c) }}
	w.snapshotStart()
	for _, o := range e.outs {
		name := o.def.Name
		for _, ks := range o.touched {
			if o.keys.Current(ks) == nil {
				w.tombstone(name, ks.id)
			}
		}
		o.touched = o.touched[:0]
		o.keys.Each(func(ks *keyState) {
			ks.logged = false
			e.gens.move(ks)
			o.keys.Persisted(ks, w.put(w.key(name, ks.id), func(b []byte) []byte { return o.appendGroup(b, ks) }))
		})
		o.keys.Flushed()
	}
	e.spillIfLarge()
	w.meta(e.appendMeta(nil))
	e.gens.next(n)
}

// isSnapshotStart reports whether a changelog record key marks the start
// of a snapshot: a restore reading in offset order drops what it restored
// so far and continues from there.
func isSnapshotStart(key []byte) bool { return len(key) == 1 && key[0] == snapshotKey }

// Groups returns how many groups the engine holds, over all outputs.
func (e *Engine) Groups() int {
	n := 0
	for _, o := range e.outs {
		n += o.keys.Len()
	}
	return n
}

func appendGroupKey(b []byte, output, id string) []byte {
	b = append(b, groupKey)
	b = appendString(b, output)
	return append(b, id...)
}

// appendMeta encodes the fired watermark and every partition's watermark.
func (e *Engine) appendMeta(b []byte) []byte {
	b = append(b, changelogVersion)
	b = binary.AppendVarint(b, e.fired)
	b = appendPartitions(b, &e.wm)
	if e.round {
		b = append(b, metaRoundCut) // absent in records of earlier versions
	}
	return b
}

// metaRoundCut, after the partitions of a meta record, says the flush
// ended in the middle of a round (see Engine.round).
const metaRoundCut = 1

// appendGroup encodes one group: its key, the bounds of its dropped
// sessions, then its windows with their flags and aggregate states.
func (o *outState) appendGroup(b []byte, ks *keyState) []byte {
	b = append(b, changelogVersion)
	b = appendKey(b, ks.key)
	b = binary.AppendUvarint(b, uint64(len(ks.gone)))
	for _, g := range ks.gone {
		b = binary.AppendVarint(b, g[0])
		b = binary.AppendVarint(b, g[1])
	}
	b = binary.AppendUvarint(b, uint64(len(ks.wins)))
	st := o.scratch[:0]
	for _, w := range ks.wins {
		b = binary.AppendVarint(b, w.start)
		b = binary.AppendVarint(b, w.end)
		var flags byte
		if w.fired {
			flags |= flagFired
			if !w.emitted {
				flags |= flagPending
			}
		}
		if w.dirty {
			flags |= flagDirty
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(o.layout.Len()))
		for i := range o.layout.Len() {
			s := o.state(w, i)
			if aggregate.IsNew(s) {
				b = append(b, 0) // as below, without encoding it
				continue
			}
			st = s.AppendBinary(st[:0])
			if bytes.Equal(st, o.emptyState(i)) {
				// Most aggregates of a window never saw a value (a
				// traffic sensor has no pm25): write nothing.
				b = append(b, 0)
				continue
			}
			b = binary.AppendUvarint(b, uint64(len(st)))
			b = append(b, st...)
		}
	}
	o.scratch = st
	return b
}

// RestoreChange applies one changelog record, read back in log order, to
// the engine's state; now is the processing time the restored partitions
// count as last seen at. Groups of outputs the pipeline no longer has are
// skipped.
func (e *Engine) RestoreChange(key, value []byte, now int64) error {
	if len(key) == 0 {
		return errors.New("changelog record without a key")
	}
	e.gens.restored()
	if key[0] == metaKey {
		return e.restoreMeta(value, now)
	}
	if key[0] == snapshotKey {
		// Marks where a snapshot begins; the reader of the changelog
		// in offset order starts over there (isSnapshotStart).
		return nil
	}
	if key[0] != groupKey {
		return fmt.Errorf("changelog key of unknown type %d", key[0])
	}
	r := &reader{b: key[1:]}
	name := string(r.bytes())
	if r.err != nil {
		return fmt.Errorf("decode changelog key: %w", r.err)
	}
	id := string(r.b)
	var o *outState
	for _, x := range e.outs {
		if x.def.Name == name {
			o = x
		}
	}
	if o == nil {
		return nil // an output the pipeline no longer has
	}
	var ks *keyState
	if value != nil {
		var err error
		if ks, err = e.decodeGroup(o, value); err != nil {
			return fmt.Errorf("restore output %s: %w", name, err)
		}
		id = ks.id
	} else {
		id = currentID(id, len(o.groupSlots))
	}
	if old := o.keys.Get(id); old != nil {
		for _, w := range old.wins {
			o.open--
			if w.dirty {
				o.dirty--
			}
		}
		old.sched = noTimer // its timers are stale now
		e.drop(o, old)
	}
	if ks == nil {
		return nil
	}
	// restoredGen on a fresh engine (an engine that already flushed has
	// no restored generation left: its oldest stands for it).
	e.insert(o, ks, e.gens.start())
	o.reschedule(ks, e.lateness)
	return nil
}

func (e *Engine) restoreMeta(value []byte, now int64) error {
	r := &reader{b: value}
	if v := r.byte(); r.err == nil && v != changelogVersion {
		return fmt.Errorf("changelog version %d is not supported (want %d)", v, changelogVersion)
	}
	fired := r.varint()
	parts := readPartitions(r)
	cut := false
	if r.err == nil && len(r.b) == 1 && r.b[0] == metaRoundCut {
		cut, r.b = true, nil
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = errors.New("trailing bytes")
	}
	if r.err != nil {
		return fmt.Errorf("decode changelog meta record: %w", r.err)
	}
	e.fired, e.round = fired, cut
	applyPartitions(&e.wm, parts, now)
	return nil
}

// partMark is one partition's watermark in a meta record.
type partMark struct {
	p     int32
	ts    int64
	flags byte
}

// appendPartitions encodes every partition's watermark, in partition
// order (equal states encode alike): the meta records of the window
// engine and of detect end with them.
func appendPartitions(b []byte, wm *Watermarks) []byte {
	b = binary.AppendUvarint(b, uint64(len(wm.parts)))
	for _, p := range slices.Sorted(maps.Keys(wm.parts)) {
		pw := wm.parts[p]
		b = binary.AppendVarint(b, int64(p))
		b = binary.AppendVarint(b, pw.maxTS)
		var flags byte
		if pw.seen {
			flags |= 1
		}
		if pw.idle {
			flags |= 2
		}
		b = append(b, flags)
	}
	return b
}

// readPartitions reads what appendPartitions wrote.
func readPartitions(r *reader) []partMark {
	var parts []partMark
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		parts = append(parts, partMark{int32(r.varint()), r.varint(), r.byte()})
	}
	return parts
}

// applyPartitions restores the partition watermarks read from a meta
// record, as of processing time now.
func applyPartitions(wm *Watermarks, parts []partMark, now int64) {
	for _, p := range parts {
		wm.Assign(p.p, now)
		pw := wm.parts[p.p]
		pw.maxTS, pw.seen, pw.idle, pw.lastSeen = p.ts, p.flags&1 != 0, p.flags&2 != 0, now
	}
}

// currentID returns the group id of a tombstone's record key. Pulse
// before event.JoinKey wrote ids unescaped: such an id of a key holding
// the separator or escape byte is mapped to the current encoding when it
// splits into n fields (a group record needs no mapping: its id is
// encoded again from the key in its value).
func currentID(id string, n int) string {
	if _, err := event.SplitKey(id, n); err == nil {
		return id
	}
	if key, ok := event.SplitLegacyKey(id, n); ok {
		return event.JoinKey(key)
	}
	return id
}

// decodeGroup decodes a group's state and counts its windows as open;
// its id is its key encoded by event.JoinKey, whatever id the record key
// held.
func (e *Engine) decodeGroup(o *outState, value []byte) (*keyState, error) {
	ks, err := o.decodeGroup(value)
	if err != nil {
		return nil, err
	}
	for _, w := range ks.wins {
		o.open++
		if w.dirty {
			o.dirty++
		}
	}
	return ks, nil
}

// decodeGroup decodes a group's state (appendGroup), without counting its
// windows: a disk store reloads groups with it.
func (o *outState) decodeGroup(value []byte) (*keyState, error) {
	r := &reader{b: value}
	if v := r.byte(); r.err == nil && v != changelogVersion {
		return nil, fmt.Errorf("changelog version %d is not supported (want %d)", v, changelogVersion)
	}
	ks := &keyState{key: r.key(), sched: noTimer}
	ks.id = event.JoinKey(ks.key)
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		ks.gone = append(ks.gone, [2]int64{r.varint(), r.varint()})
	}
	nwins := r.uvarint()
	if r.err == nil && nwins > uint64(len(r.b)) {
		r.err = errShort
	}
	for ; nwins > 0 && r.err == nil; nwins-- {
		start, end, flags := r.varint(), r.varint(), r.byte()
		if n := r.uvarint(); r.err == nil && n != uint64(len(o.def.Aggregates)) {
			return nil, fmt.Errorf("the changelog has %d aggregates, the pipeline file %d: changing an output's aggregates needs a new output name (or a fresh --data-dir)", n, len(o.def.Aggregates))
		}
		w := &win{start: start, end: end}
		w.rest = o.layout.NewCompact(&w.blocks)
		ks.wins = append(ks.wins, w)
		w.fired, w.dirty = flags&flagFired != 0, flags&flagDirty != 0
		w.emitted = w.fired && flags&flagPending == 0
		for i := range o.layout.Len() {
			s := o.state(w, i)
			enc := r.bytes()
			if len(enc) == 0 || r.err != nil {
				continue // an empty state: the new one is it
			}
			if err := s.Decode(enc); err != nil {
				r.err = err
			}
		}
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = errors.New("trailing bytes")
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode group state: %w", r.err)
	}
	return ks, nil
}

// emptyState returns the encoding of a new state of aggregate i.
func (o *outState) emptyState(i int) []byte {
	if o.empty == nil {
		o.empty = make([][]byte, len(o.def.Aggregates))
		for j, a := range o.def.Aggregates {
			o.empty[j] = a.Func.New().AppendBinary(nil)
		}
	}
	return o.empty[i]
}

func appendKey(b []byte, key []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(key)))
	for _, k := range key {
		b = appendString(b, k)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("record is truncated")

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errShort
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// key reads a group key: a count and as many strings.
func (r *reader) key() []string {
	n := r.uvarint()
	if n > 1<<10 && r.err == nil {
		r.err = fmt.Errorf("%d group fields", n)
	}
	if r.err != nil {
		return nil
	}
	key := make([]string, n)
	for i := range key {
		key[i] = string(r.bytes())
	}
	return key
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errShort
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// arena hands out the keys and values of one checkpoint's changelog
// records from blocks of arenaBlock bytes: they are thousands of small
// slices that all live until the broker acknowledges them, and one
// allocation per block replaces one or more per record.
type arena struct{ buf []byte }

const (
	arenaBlock = 64 << 10
	arenaMin   = 1 << 10 // a block with less room left is not appended to
)

// free returns an empty slice at the free end of the current block, to
// append one key or value to.
func (a *arena) free() []byte {
	if cap(a.buf)-len(a.buf) < arenaMin {
		a.buf = make([]byte, 0, arenaBlock)
	}
	return a.buf[len(a.buf):]
}

// keep takes v, appended to the slice free returned, out of the free
// space and returns it with its capacity capped, so that appending to it
// cannot overwrite the next one. A v that outgrew the block is its own
// allocation, and the block's free space stays.
func (a *arena) keep(v []byte) []byte {
	if len(v) > 0 && len(a.buf) < cap(a.buf) && unsafe.SliceData(v) == unsafe.SliceData(a.buf[len(a.buf):]) {
		a.buf = a.buf[:len(a.buf)+len(v)]
	}
	return v[:len(v):len(v)]
}

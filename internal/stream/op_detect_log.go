package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// A detect task's changelog has the window engine's record keys (metaKey,
// snapshotKey, groupKey + output + key id) with values of its own:
//   - meta: changelogVersion, the processed watermark (varint), the
//     arrival counter (uvarint), then the partition watermarks as the
//     window engine writes them;
//   - key: changelogVersion, the key's fields, the field count and the
//     detector's state length (uvarints), the states (float64 bits, big
//     endian), the buffered event count, then per event its time
//     (varint), source partition (varint), arrival number (uvarint) and
//     one float64 per field (NaN: no value).
//
// Each commit writes the keys that changed and the meta record; a
// snapshot writes every key.

// WriteChanges emits the records of the keys changed since the last call
// and the meta record.
func (o *detectOp) WriteChanges(emit func(Change)) {
	w := changeWriter{emit: emit}
	name := o.def.Name
	for _, id := range o.touched {
		k := o.keys.Get(id)
		if k == nil {
			w.tombstone(name, id)
			continue
		}
		k.logged = false
		w.put(w.key(name, id), func(b []byte) []byte { return o.appendKey(b, k) })
	}
	o.touched = o.touched[:0]
	w.meta(o.appendMeta(nil))
}

// WriteSnapshot emits the whole state: the snapshot start, every key, the
// meta record.
func (o *detectOp) WriteSnapshot(emit func(Change)) {
	w := changeWriter{emit: emit}
	w.snapshotStart()
	name := o.def.Name
	for _, id := range o.touched {
		if o.keys.Get(id) == nil {
			w.tombstone(name, id)
		}
	}
	o.touched = o.touched[:0]
	o.keys.Each(func(k *detectKey) {
		k.logged = false
		w.put(w.key(name, k.id), func(b []byte) []byte { return o.appendKey(b, k) })
	})
	w.meta(o.appendMeta(nil))
}

func (o *detectOp) appendMeta(b []byte) []byte {
	b = append(b, changelogVersion)
	b = binary.AppendVarint(b, o.fired)
	b = binary.AppendUvarint(b, o.seq)
	return appendPartitions(b, &o.wm)
}

func (o *detectOp) appendKey(b []byte, k *detectKey) []byte {
	b = append(b, changelogVersion)
	b = appendKey(b, k.key)
	b = binary.AppendUvarint(b, uint64(len(o.slots)))
	b = binary.AppendUvarint(b, uint64(o.stride))
	for _, x := range k.state {
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(x))
	}
	b = binary.AppendUvarint(b, uint64(len(k.pts)))
	nf := len(o.slots)
	for i, pt := range k.pts {
		b = binary.AppendVarint(b, pt.ts)
		b = binary.AppendVarint(b, int64(pt.pid))
		b = binary.AppendUvarint(b, pt.seq)
		for _, x := range k.vals[i*nf : (i+1)*nf] {
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(x))
		}
	}
	return b
}

// RestoreChange applies one changelog record, read in offset order.
func (o *detectOp) RestoreChange(key, value []byte, now int64) error {
	if len(key) == 0 {
		return errors.New("changelog record without a key")
	}
	switch key[0] {
	case metaKey:
		return o.restoreMeta(value, now)
	case snapshotKey:
		return nil
	case groupKey:
	default:
		return fmt.Errorf("changelog key of unknown type %d", key[0])
	}
	r := &reader{b: key[1:]}
	if name := string(r.bytes()); r.err != nil || name != o.def.Name {
		return nil // another output's (or an unreadable key): not this operator's state
	}
	id := string(r.b)
	if old := o.keys.Get(id); old != nil {
		if len(old.pts) > 0 {
			o.waiting--
		}
		old.sched = noTimer // its timers are stale now
		o.keys.Delete(id)
	}
	if value == nil {
		return nil
	}
	k, err := o.decodeKey(value)
	if err != nil {
		return fmt.Errorf("restore output %s: %w", o.def.Name, err)
	}
	k.id = id
	o.keys.Insert(k)
	if len(k.pts) > 0 {
		o.waiting++
		o.schedule(k, k.pts[0].ts)
	}
	return nil
}

func (o *detectOp) decodeKey(value []byte) (*detectKey, error) {
	r := &reader{b: value}
	if v := r.byte(); r.err == nil && v != changelogVersion {
		return nil, fmt.Errorf("changelog version %d is not supported (want %d)", v, changelogVersion)
	}
	k := &detectKey{key: r.key(), sched: noTimer}
	nf, stride := r.uvarint(), r.uvarint()
	if r.err == nil && (nf != uint64(len(o.slots)) || stride != uint64(o.stride)) {
		return nil, fmt.Errorf("the changelog has %d fields with %d state values each, the pipeline file %d with %d: changing a detect output's fields or detector needs a new output name (or a fresh --data-dir)",
			nf, stride, len(o.slots), o.stride)
	}
	k.state = make([]float64, len(o.slots)*o.stride)
	for i := range k.state {
		k.state[i] = r.readFloat()
	}
	npts := r.uvarint()
	if r.err == nil && npts > uint64(len(r.b)) {
		r.err = errShort
	}
	for ; npts > 0 && r.err == nil; npts-- {
		k.pts = append(k.pts, dpoint{ts: r.varint(), pid: int32(r.varint()), seq: r.uvarint()})
		for range len(o.slots) {
			k.vals = append(k.vals, r.readFloat())
		}
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = errors.New("trailing bytes")
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode key state: %w", r.err)
	}
	return k, nil
}

func (o *detectOp) restoreMeta(value []byte, now int64) error {
	r := &reader{b: value}
	if v := r.byte(); r.err == nil && v != changelogVersion {
		return fmt.Errorf("changelog version %d is not supported (want %d)", v, changelogVersion)
	}
	fired, seq := r.varint(), r.uvarint()
	parts := readPartitions(r)
	if r.err == nil && len(r.b) > 0 {
		r.err = errors.New("trailing bytes")
	}
	if r.err != nil {
		return fmt.Errorf("decode changelog meta record: %w", r.err)
	}
	o.fired, o.seq = fired, seq
	applyPartitions(&o.wm, parts, now)
	return nil
}

// readFloat reads a float64 written as its bits, big endian.
func (r *reader) readFloat() float64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errShort
		return 0
	}
	x := math.Float64frombits(binary.BigEndian.Uint64(r.b))
	r.b = r.b[8:]
	return x
}

package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Snapshot format: a version, the fired watermark, the per-partition
// maximum event times, then per output its name and open windows with
// their group key, bounds, flags and serialized aggregate states.
const snapshotVersion = 2

// Snapshot serializes the engine's open windows and watermarks.
func (e *Engine) Snapshot() []byte {
	b := []byte{snapshotVersion}
	b = binary.AppendVarint(b, e.fired)
	pm := e.wm.PartitionMax()
	b = binary.AppendUvarint(b, uint64(len(pm)))
	for p, ts := range pm {
		b = binary.AppendVarint(b, int64(p))
		b = binary.AppendVarint(b, ts)
	}
	b = binary.AppendUvarint(b, uint64(len(e.outs)))
	var st []byte
	for _, o := range e.outs {
		b = appendString(b, o.def.Name)
		b = binary.AppendUvarint(b, uint64(o.open))
		for _, ks := range o.keys {
			for _, w := range ks.wins {
				b = binary.AppendUvarint(b, uint64(len(ks.key)))
				for _, k := range ks.key {
					b = appendString(b, k)
				}
				b = binary.AppendVarint(b, w.start)
				b = binary.AppendVarint(b, w.end)
				var flags byte
				if w.fired {
					flags |= 1
				}
				if w.dirty {
					flags |= 2
				}
				b = append(b, flags)
				b = binary.AppendUvarint(b, uint64(len(w.states)))
				for _, s := range w.states {
					st = s.AppendBinary(st[:0])
					b = binary.AppendUvarint(b, uint64(len(st)))
					b = append(b, st...)
				}
			}
		}
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

var errShort = errors.New("snapshot is truncated")

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

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errShort
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// Restore replaces the engine's state with a snapshot taken by Snapshot.
// Windows of outputs the pipeline no longer has are dropped.
func (e *Engine) Restore(data []byte, now time.Time) error {
	r := &reader{b: data}
	if v := r.byte(); r.err == nil && v != snapshotVersion {
		return fmt.Errorf("engine snapshot version %d is not supported (want %d)", v, snapshotVersion)
	}
	fired := r.varint()
	pm := map[int32]int64{}
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		p := r.varint()
		pm[int32(p)] = r.varint()
	}
	byName := map[string]*outState{}
	for _, o := range e.outs {
		o.keys, o.open, o.dirty, o.retracts = map[string]*keyState{}, 0, 0, nil
		byName[o.def.Name] = o
	}
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		name := string(r.bytes())
		o := byName[name]
		for w := r.uvarint(); w > 0 && r.err == nil; w-- {
			nk := r.uvarint()
			if nk > 1<<10 {
				return fmt.Errorf("decode engine snapshot: %d group fields", nk)
			}
			key := make([]string, nk)
			for i := range key {
				key[i] = string(r.bytes())
			}
			start, end, flags := r.varint(), r.varint(), r.byte()
			nstates := r.uvarint()
			if o == nil {
				// An output the pipeline no longer has: skip its state.
				for ; nstates > 0 && r.err == nil; nstates-- {
					r.bytes()
				}
				continue
			}
			if nstates != uint64(len(o.def.Aggregates)) {
				return fmt.Errorf("restore output %s: the checkpoint has %d aggregates, the pipeline file %d: changing an output's aggregates needs a new output name (or a fresh --data-dir)", name, nstates, len(o.def.Aggregates))
			}
			win := e.newWin(o, start, end)
			win.fired, win.dirty = flags&1 != 0, flags&2 != 0
			if win.dirty {
				o.dirty++
			}
			for _, s := range win.states {
				if err := s.Decode(r.bytes()); err != nil && r.err == nil {
					r.err = err
				}
			}
			ks := o.keys[joinKey(key)]
			if ks == nil {
				ks = &keyState{key: key}
				o.keys[joinKey(key)] = ks
			}
			ks.wins = append(ks.wins, win)
		}
	}
	if r.err != nil {
		return fmt.Errorf("decode engine snapshot: %w", r.err)
	}
	e.fired = fired
	e.wm.Restore(pm, now.UnixMilli())
	return nil
}

func joinKey(key []string) string {
	var b []byte
	for i, k := range key {
		if i > 0 {
			b = append(b, 0x1f)
		}
		b = append(b, k...)
	}
	return string(b)
}

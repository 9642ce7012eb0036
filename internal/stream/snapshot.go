package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Snapshot format: a version, the fired watermark, the per-partition
// maximum event times, then per output its name and open windows with
// their group key, bounds, flags and serialized aggregate states; then the
// retractions not yet returned by Advance (absent: none), each with its
// output name, group key and bounds.
const snapshotVersion = 2

// Window flags in snapshots.
const (
	flagFired   = 1
	flagDirty   = 2
	flagPending = 4 // fired, but no final of it stands (see win.emitted)
	flagGone    = 8 // the bounds of a dropped session (keyState.gone); no states
)

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
		n := o.open
		for _, ks := range o.keys {
			n += len(ks.gone)
		}
		b = binary.AppendUvarint(b, uint64(n))
		for _, ks := range o.keys {
			for _, g := range ks.gone {
				b = appendKey(b, ks.key)
				b = binary.AppendVarint(b, g[0])
				b = binary.AppendVarint(b, g[1])
				b = append(b, flagGone, 0)
			}
			for _, w := range ks.wins {
				b = appendKey(b, ks.key)
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
				b = binary.AppendUvarint(b, uint64(len(w.states)))
				for i, s := range w.states {
					st = s.AppendBinary(st[:0])
					if bytes.Equal(st, o.emptyState(i)) {
						// Most aggregates of a window never saw a value
						// (a traffic sensor has no pm25): write nothing.
						b = append(b, 0)
						continue
					}
					b = binary.AppendUvarint(b, uint64(len(st)))
					b = append(b, st...)
				}
			}
		}
	}
	var n int
	for _, o := range e.outs {
		n += len(o.retracts)
	}
	if n > 0 {
		b = binary.AppendUvarint(b, uint64(n))
		for _, o := range e.outs {
			for _, r := range o.retracts {
				b = appendString(b, o.def.Name)
				b = appendKey(b, r.Key)
				b = binary.AppendVarint(b, r.Start)
				b = binary.AppendVarint(b, r.End)
			}
		}
	}
	return b
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
			key := r.key()
			start, end, flags := r.varint(), r.varint(), r.byte()
			nstates := r.uvarint()
			if o == nil {
				// An output the pipeline no longer has: skip its state.
				for ; nstates > 0 && r.err == nil; nstates-- {
					r.bytes()
				}
				continue
			}
			if flags&flagGone != 0 {
				ks := o.keys[joinKey(key)]
				if ks == nil {
					ks = &keyState{key: key}
					o.keys[joinKey(key)] = ks
				}
				ks.gone = append(ks.gone, [2]int64{start, end})
				continue
			}
			if nstates != uint64(len(o.def.Aggregates)) {
				return fmt.Errorf("restore output %s: the checkpoint has %d aggregates, the pipeline file %d: changing an output's aggregates needs a new output name (or a fresh --data-dir)", name, nstates, len(o.def.Aggregates))
			}
			win := e.newWin(o, start, end)
			win.fired, win.dirty = flags&flagFired != 0, flags&flagDirty != 0
			win.emitted = win.fired && flags&flagPending == 0
			if win.dirty {
				o.dirty++
			}
			for _, s := range win.states {
				enc := r.bytes()
				if len(enc) == 0 {
					continue // an empty state: the new one is it
				}
				if err := s.Decode(enc); err != nil && r.err == nil {
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
	// The retractions Advance has not returned yet; a snapshot without
	// any ends here.
	if len(r.b) > 0 && r.err == nil {
		for n := r.uvarint(); n > 0 && r.err == nil; n-- {
			name := r.bytes()
			key := r.key()
			start, end := r.varint(), r.varint()
			if o := byName[string(name)]; o != nil && r.err == nil {
				o.retracts = append(o.retracts, Result{Output: o.def.Name, GroupBy: o.def.GroupBy, Key: key,
					Start: start, End: end, Retract: true, Names: o.names})
			}
		}
		if len(r.b) > 0 && r.err == nil {
			r.err = errors.New("trailing bytes")
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

package serve

import (
	"bytes"
	"sync"
	"weak"

	"github.com/pulsehq/pulse/internal/stream"
)

// A frame is one board snapshot of an output, encoded once and shared by
// every live client of that output. Clients keep the frame they last
// sent and get the difference to the current one.
type frame struct {
	src       []stream.Result // the board's snapshot; keeps it identifiable
	watermark int64
	rows      []frameRow
	index     map[string]int // row id → index in rows

	mu   sync.Mutex
	full []byte // cached: every row, comma separated
	// diffFrom and diff cache the delta from diffFrom. The pointer is
	// weak: a strong one would keep every earlier frame reachable, one
	// from the next (a frame of 1,000 rows refreshed every 25 ms leaked
	// about 160 MB/s while a client watched).
	diffFrom weak.Pointer[frame]
	diff     delta
}

// frameRow is one open window: its id (key and window start, as JSON
// members), the whole row, and its other fields one by one, all written
// by the output's schema.
type frameRow struct {
	id     string
	full   []byte
	fields []stream.RowField
}

// delta is what changed from one frame to the next: the rows that are new
// or changed (a changed row carries its id and the changed fields only)
// and the ids of the rows that are gone, each comma separated.
type delta struct {
	results, removed []byte
}

func sameSnapshot(a, b []stream.Result) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0]
}

func newFrame(l stream.Live, s *stream.Schema) *frame {
	f := &frame{src: l.Results, watermark: l.Watermark, rows: make([]frameRow, 0, len(l.Results)),
		index: make(map[string]int, len(l.Results))}
	var buf []byte
	for i := range l.Results {
		r := &l.Results[i]
		buf = s.AppendRowID(buf[:0], r)
		id := string(buf)
		row := frameRow{id: id, full: s.AppendRow(nil, r), fields: s.RowFields(nil, r)}
		if j, dup := f.index[id]; dup {
			f.rows[j] = row // two parts with one window: the later wins
			continue
		}
		f.index[id] = len(f.rows)
		f.rows = append(f.rows, row)
	}
	return f
}

// snapshot returns every row, comma separated.
func (f *frame) snapshot() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full == nil {
		f.full = []byte{}
		for i, r := range f.rows {
			if i > 0 {
				f.full = append(f.full, ',')
			}
			f.full = append(f.full, r.full...)
		}
	}
	return f.full
}

// deltaFrom returns what changed since prev. The last delta is cached:
// clients that keep up all ask for the same one.
func (f *frame) deltaFrom(prev *frame) delta {
	if prev == f {
		return delta{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if prev != nil && f.diffFrom.Value() == prev {
		return f.diff
	}
	var d delta
	for i := range f.rows {
		r := &f.rows[i]
		j, ok := prev.index[r.id]
		if !ok {
			d.results = appendSep(d.results)
			d.results = append(d.results, r.full...)
			continue
		}
		d.results = appendChanged(d.results, &prev.rows[j], r)
	}
	for i := range prev.rows {
		if _, ok := f.index[prev.rows[i].id]; !ok {
			d.removed = appendSep(d.removed)
			d.removed = append(append(append(d.removed, '{'), prev.rows[i].id...), '}')
		}
	}
	f.diffFrom, f.diff = weak.Make(prev), d
	return d
}

func appendSep(dst []byte) []byte {
	if len(dst) > 0 {
		return append(dst, ',')
	}
	return dst
}

// appendChanged appends {id, changed fields} if any field of cur differs
// from old; a field that is gone is sent as null.
func appendChanged(dst []byte, old, cur *frameRow) []byte {
	changed := false
	add := func(member, tail []byte) {
		if !changed {
			dst = appendSep(dst)
			dst = append(append(append(dst, '{'), cur.id...), ',')
			changed = true
		} else {
			dst = append(dst, ',')
		}
		dst = append(append(dst, member...), tail...)
	}
	i, j := 0, 0
	for i < len(cur.fields) || j < len(old.fields) {
		switch {
		case j == len(old.fields) || (i < len(cur.fields) && cur.fields[i].Idx < old.fields[j].Idx):
			add(cur.fields[i].Member, nil)
			i++
		case i == len(cur.fields) || old.fields[j].Idx < cur.fields[i].Idx:
			gone := old.fields[j]
			add(gone.Member[:gone.NameLen], []byte("null"))
			j++
		default:
			if !bytes.Equal(cur.fields[i].Member, old.fields[j].Member) {
				add(cur.fields[i].Member, nil)
			}
			i++
			j++
		}
	}
	if changed {
		dst = append(dst, '}')
	}
	return dst
}

// frames keeps the current frame of each watched output.
type frames struct {
	board   *stream.Board
	schemas schemas
	mu      sync.Mutex
	cur     map[string]*frame
}

// current returns the frame of the board's snapshot of pipeline's output,
// encoding it if the snapshot changed since the last call.
func (fs *frames) current(pipeline, output string) *frame {
	l := fs.board.Get(pipeline, output)
	key := pipeline + "/" + output
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.cur[key]; f != nil && sameSnapshot(f.src, l.Results) && f.watermark == l.Watermark {
		return f
	}
	f := newFrame(l, fs.schemas[key])
	if fs.cur == nil {
		fs.cur = map[string]*frame{}
	}
	fs.cur[key] = f
	return f
}

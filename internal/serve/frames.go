package serve

import (
	"bytes"
	"strconv"
	"sync"
	"time"

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

	mu       sync.Mutex
	full     []byte // cached: every row, comma separated
	diffFrom *frame // cached: the delta from diffFrom
	diff     delta
}

// frameRow is one open window: its id (key and window start, as JSON
// members), the whole row, and its other fields one by one.
type frameRow struct {
	id     string
	full   []byte
	fields []field
}

// field is one member of a row besides its id; idx orders the members
// (-3 window_end, -2 retract, -1 final, then the aggregates' positions).
type field struct {
	idx  int
	name string
	val  []byte
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

func newFrame(l stream.Live) *frame {
	f := &frame{src: l.Results, watermark: l.Watermark, rows: make([]frameRow, 0, len(l.Results)),
		index: make(map[string]int, len(l.Results))}
	var buf []byte
	for i := range l.Results {
		r := &l.Results[i]
		buf = stream.AppendResultID(buf[:0], r)
		id := string(buf)
		row := frameRow{id: id, full: stream.AppendResultJSON(nil, r)}
		end := []byte{'"'}
		end = time.UnixMilli(r.End).UTC().AppendFormat(end, time.RFC3339Nano)
		row.fields = append(row.fields, field{idx: -3, name: "window_end", val: append(end, '"')})
		if r.Retract {
			row.fields = append(row.fields, field{idx: -2, name: "retract", val: []byte("true")})
		}
		row.fields = append(row.fields, field{idx: -1, name: "final", val: strconv.AppendBool(nil, r.Final)})
		for j, v := range r.Values {
			if v.IsNull() {
				continue
			}
			row.fields = append(row.fields, field{idx: j, name: r.Names[j], val: v.AppendJSON(nil)})
		}
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
	if f.diffFrom == prev {
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
	f.diffFrom, f.diff = prev, d
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
	add := func(name string, val []byte) {
		if !changed {
			dst = appendSep(dst)
			dst = append(append(append(dst, '{'), cur.id...), ',')
			changed = true
		} else {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, '"', ':')
		dst = append(dst, val...)
	}
	i, j := 0, 0
	for i < len(cur.fields) || j < len(old.fields) {
		switch {
		case j == len(old.fields) || (i < len(cur.fields) && cur.fields[i].idx < old.fields[j].idx):
			add(cur.fields[i].name, cur.fields[i].val)
			i++
		case i == len(cur.fields) || old.fields[j].idx < cur.fields[i].idx:
			add(old.fields[j].name, []byte("null"))
			j++
		default:
			if !bytes.Equal(cur.fields[i].val, old.fields[j].val) {
				add(cur.fields[i].name, cur.fields[i].val)
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
	board *stream.Board
	mu    sync.Mutex
	cur   map[string]*frame
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
	f := newFrame(l)
	if fs.cur == nil {
		fs.cur = map[string]*frame{}
	}
	fs.cur[key] = f
	return f
}

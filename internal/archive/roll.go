package archive

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// roll is what one partition of a stream archives between two
// publications: the offsets [from, next), one file per hour of event
// time. All files of a roll carry the roll's range.
type roll struct {
	w       *worker
	src     *stream
	part    int32
	from    int64 // first offset of the roll; -1 until the first record
	next    int64 // offset after the last record read
	end     int64 // the roll must end here (the last roll written again after a restart); -1: no bound
	rows    int
	bytes   int64
	started time.Time
	files   map[int64]*fileWriter
}

// add appends one record's row to the file of its hour, and reports
// whether the roll reached its end.
func (a *Archiver) add(r *roll, rec *kgo.Record) error {
	if r.from < 0 {
		r.from = rec.Offset
		r.started = a.now()
	}
	r.next = rec.Offset + 1
	r.bytes += int64(len(rec.Value))
	ms, err := r.src.codec.parse(rec)
	if err != nil {
		r.src.skipped(a, rec, err)
		return nil
	}
	h := HourOf(ms)
	fw := r.files[hourKey(h)]
	if fw == nil {
		if len(r.files) == 0 {
			r.started = a.now()
		}
		fw, err = newFileWriter(a.store.SpoolDir(), Part{Stream: r.src.Stream, Hour: h, Partition: r.part, From: r.from}, r.src.codec, a.wopts)
		if err != nil {
			return err
		}
		r.files[hourKey(h)] = fw
	}
	fw.w.add()
	r.rows++
	return nil
}

// due reports whether r should be published now.
func (a *Archiver) due(r *roll, now time.Time) bool {
	switch {
	case r.end >= 0:
		// The last roll written again ends where it ended before, never
		// sooner: its files keep their names and rows.
		return r.next >= r.end
	case len(r.files) == 0:
		return false
	case a.full(r):
		return true
	}
	return now.Sub(r.started) >= a.cfg.Roll.Age
}

// full reports whether r reached its bound of rows, bytes or files.
func (a *Archiver) full(r *roll) bool {
	return r.rows >= a.cfg.Roll.Rows || r.bytes >= a.cfg.Roll.Bytes || len(r.files) >= a.cfg.Roll.Files
}

// flush writes the rows buffered in r's files.
func (a *Archiver) flush(r *roll) error {
	for _, fw := range r.files {
		if err := fw.flush(); err != nil {
			return err
		}
	}
	return nil
}

// publish completes r's files, in hour order, and makes each visible;
// then r starts the next roll at its end. A roll that archived no row
// (every record skipped) publishes nothing and goes on.
func (a *Archiver) publish(ctx context.Context, r *roll) error {
	if len(r.files) == 0 {
		if r.end >= 0 && r.next >= r.end {
			r.end = -1
		}
		return nil
	}
	if r.end >= 0 {
		if r.next < r.end {
			return fmt.Errorf("archive: roll of partition %d published at offset %d before its end %d", r.part, r.next, r.end)
		}
		r.next = r.end
	}
	hours := make([]int64, 0, len(r.files))
	for h := range r.files {
		hours = append(hours, h)
	}
	slices.Sort(hours)
	var rows int
	for _, h := range hours {
		fw := r.files[h]
		fw.part.To = r.next
		size, err := fw.finish(r.src.Topic)
		if err != nil {
			return err
		}
		if err := a.store.Publish(ctx, fw.tmp, fw.part.Name()); err != nil {
			return fmt.Errorf("publish %s: %w", fw.part.Name(), err)
		}
		delete(r.files, h)
		rows += fw.rows
		r.src.m.files.Inc()
		r.src.m.bytes.Add(float64(size))
	}
	r.src.m.events.Add(float64(rows))
	r.w.published()
	r.from, r.end, r.rows, r.bytes = r.next, -1, 0, 0
	return nil
}

// discard drops r's unpublished files.
func (r *roll) discard() {
	for h, fw := range r.files {
		fw.discard()
		delete(r.files, h)
	}
}

package stream

import (
	"sync"
	"time"
)

// Board holds the latest live partial results of every output so that
// dashboards and the API can read them without touching the engine. Each
// window task publishes its part of an output; a read merges the parts
// this process holds. Only outputs that someone read recently are
// refreshed, so an output with thousands of keys costs nothing while no
// one watches it.
type Board struct {
	mu   sync.RWMutex
	outs map[string]*boardEntry
	// srcs holds, per pipeline and shuffle worker, the source partitions
	// it reads (SetSources).
	srcs map[string]map[int]sourceReport
}

type sourceReport struct {
	parts []SourceWatermark
	at    int64
}

type boardEntry struct {
	parts    map[int32]Live
	merged   *Live // cache of the merged parts, nil after a change
	lastRead time.Time
}

// Live is a snapshot of one output's open windows.
type Live struct {
	Watermark int64
	Results   []Result
}

// watchedFor is how long after its last read an output stays refreshed.
const watchedFor = 10 * time.Second

// Set replaces the live snapshot of one part (a window task's partition)
// of pipeline's output.
func (b *Board) Set(pipeline, output string, part int32, l Live) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entry(pipeline + "/" + output)
	e.parts[part] = l
	e.merged = nil
}

// Drop forgets one part of pipeline's output: its task moved elsewhere.
func (b *Board) Drop(pipeline, output string, part int32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.outs[pipeline+"/"+output]; e != nil {
		delete(e.parts, part)
		e.merged = nil
	}
}

// Watched reports whether pipeline's output was read recently.
func (b *Board) Watched(pipeline, output string, now time.Time) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	e := b.outs[pipeline+"/"+output]
	return e != nil && now.Sub(e.lastRead) < watchedFor
}

// Get returns the live snapshot of pipeline's output, the results of all
// its parts and the lowest of their watermarks, and marks it watched. The
// caller must not modify it.
func (b *Board) Get(pipeline, output string) Live {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entry(pipeline + "/" + output)
	e.lastRead = time.Now()
	if e.merged == nil {
		m := Live{Watermark: NoWatermark}
		first := true
		for _, l := range e.parts {
			m.Results = append(m.Results, l.Results...)
			if l.Watermark != NoWatermark && (first || l.Watermark < m.Watermark) {
				m.Watermark, first = l.Watermark, false
			}
		}
		e.merged = &m
	}
	return *e.merged
}

func (b *Board) entry(key string) *boardEntry {
	if b.outs == nil {
		b.outs = make(map[string]*boardEntry)
	}
	e := b.outs[key]
	if e == nil {
		e = &boardEntry{parts: map[int32]Live{}}
		b.outs[key] = e
	}
	return e
}

// SetSources replaces what shuffle worker worker of pipeline reports of
// the source partitions it reads, at processing time now (ms).
func (b *Board) SetSources(pipeline string, worker int, parts []SourceWatermark, now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srcs == nil {
		b.srcs = make(map[string]map[int]sourceReport)
	}
	if b.srcs[pipeline] == nil {
		b.srcs[pipeline] = make(map[int]sourceReport)
	}
	b.srcs[pipeline][worker] = sourceReport{parts: parts, at: now}
}

// Watermark returns pipeline's watermark and its source partitions as the
// shuffle workers of this process report them, combined with the allowed
// out-of-orderness disorder (ms).
func (b *Board) Watermark(pipeline string, disorder int64) WatermarkStatus {
	b.mu.RLock()
	var all []SourceWatermark
	var updated int64
	for _, r := range b.srcs[pipeline] {
		all = append(all, r.parts...)
		updated = max(updated, r.at)
	}
	b.mu.RUnlock()
	st := combineSources(all, disorder)
	st.Updated = updated
	return st
}

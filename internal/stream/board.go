package stream

import (
	"sync"
	"time"
)

// Board holds the latest live partial results of every output so that
// dashboards and the API can read them without touching the engine. Only
// outputs that someone read recently are refreshed, so an output with
// thousands of keys costs nothing while no one watches it.
type Board struct {
	mu   sync.RWMutex
	outs map[string]*boardEntry
}

type boardEntry struct {
	live     Live
	lastRead time.Time
}

// Live is a snapshot of one output's open windows.
type Live struct {
	Watermark int64
	Results   []Result
}

// watchedFor is how long after its last read an output stays refreshed.
const watchedFor = 10 * time.Second

// Set replaces the live snapshot of pipeline's output.
func (b *Board) Set(pipeline, output string, l Live) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entry(pipeline + "/" + output)
	e.live = l
}

// Watched reports whether pipeline's output was read recently.
func (b *Board) Watched(pipeline, output string, now time.Time) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	e := b.outs[pipeline+"/"+output]
	return e != nil && now.Sub(e.lastRead) < watchedFor
}

// Get returns the live snapshot of pipeline's output and marks it watched.
// The caller must not modify it.
func (b *Board) Get(pipeline, output string) Live {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entry(pipeline + "/" + output)
	e.lastRead = time.Now()
	return e.live
}

func (b *Board) entry(key string) *boardEntry {
	if b.outs == nil {
		b.outs = make(map[string]*boardEntry)
	}
	e := b.outs[key]
	if e == nil {
		e = &boardEntry{}
		b.outs[key] = e
	}
	return e
}

package stream

import "sync"

// Board holds the latest live partial results of every output so that
// dashboards and the API can read them without touching the engine.
type Board struct {
	mu   sync.RWMutex
	outs map[string]Live
}

// Live is a snapshot of one output's open windows.
type Live struct {
	Watermark int64
	Results   []Result
}

// Set replaces the live snapshot of pipeline's output.
func (b *Board) Set(pipeline, output string, l Live) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.outs == nil {
		b.outs = make(map[string]Live)
	}
	b.outs[pipeline+"/"+output] = l
}

// Get returns the live snapshot of pipeline's output. The caller must not
// modify it.
func (b *Board) Get(pipeline, output string) Live {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.outs[pipeline+"/"+output]
}

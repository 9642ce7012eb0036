package stream

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Where a window stage keeps its tasks' keyed state (StateConfig.Store).
const (
	// StateMemory keeps every group in Go memory: the fastest, for state
	// that fits in memory.
	StateMemory = "memory"
	// StateDisk keeps the groups in a Pebble database per task with a
	// bounded cache of decoded groups in memory.
	StateDisk = "disk"
	// StateAuto starts in memory and moves a task's state to disk once
	// it holds more than StateConfig.AutoGroups groups.
	StateAuto = "auto"
)

// Defaults of StateConfig.
const (
	DefaultStateCache      = 100_000
	DefaultStateAutoGroups = 200_000
	// stateBlockCache is the Pebble block cache of each task's store.
	stateBlockCache = 16 << 20
)

// StateConfig chooses where the window stage keeps its tasks' keyed state.
// A task's state on disk is a cache of its changelog, which stays the
// source of truth: a task restores from the changelog into a new, empty
// directory, which is removed when the task is dropped.
type StateConfig struct {
	// Store is StateMemory (the default, also for ""), StateDisk or
	// StateAuto.
	Store string
	// Dir holds the tasks' databases, under Dir/<pipeline>/. A stage
	// empties Dir/<pipeline> when it first uses it: what an earlier
	// process left there is stale.
	Dir string
	// Cache is how many groups a task's disk store keeps decoded in
	// memory (default DefaultStateCache); a group evicted with changes
	// not yet in the changelog keeps its encoding for the next flush.
	Cache int
	// AutoGroups is, with StateAuto, how many groups a task holds in
	// memory before it moves them to disk (default
	// DefaultStateAutoGroups).
	AutoGroups int
}

// CheckState returns an error for a store name other than the three.
func CheckState(store string) error {
	switch store {
	case "", StateMemory, StateDisk, StateAuto:
		return nil
	}
	return fmt.Errorf("state store %q: use memory, disk or auto", store)
}

// engineFor returns an empty engine for a task of output out, with the
// store the configuration asks for. A disk store that cannot be opened
// leaves the task in memory, with an error logged.
func (w *Windower) engineFor(out int) *Engine {
	st := w.cfg.State
	plan := w.subs[out]
	if st.Store != StateDisk {
		e := NewEngine(plan, w.dec)
		if st.Store == StateAuto {
			e.spill, e.spillAt = w.diskStores(), cmpPositive(st.AutoGroups, DefaultStateAutoGroups)
		}
		return e
	}
	e, err := newEngineWith(plan, w.dec, w.diskStores())
	if err != nil {
		return NewEngine(plan, w.dec)
	}
	return e
}

func cmpPositive(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// diskStores returns the maker of the window stage's disk stores: each in
// a new directory under Dir/<pipeline>/ named after its output. One that
// fails is logged.
func (w *Windower) diskStores() storeMaker {
	st := w.cfg.State
	return func(o *outState) (GroupStore, error) {
		parent := filepath.Join(st.Dir, w.cfg.Plan.Name)
		s, err := openTaskStore(parent, o, cmpPositive(st.Cache, DefaultStateCache), w.stateFailed)
		if err != nil {
			w.cfg.warn.Error("state store "+parent+": "+err.Error(), "cannot open a disk state store: the task keeps its state in memory",
				"pipeline", w.cfg.Plan.Name, "output", o.def.Name, "err", err)
			return nil, err
		}
		return s, nil
	}
}

// stateFailed aborts the transaction in progress when a disk store fails
// to read or write: the tasks restore from their changelogs, into new
// stores.
func (w *Windower) stateFailed(err error) {
	err = fmt.Errorf("window state of pipeline %s: %w (the tasks restore from their changelogs)", w.cfg.Plan.Name, err)
	w.fail.CompareAndSwap(nil, &err)
}

// openTaskStore opens a disk store in a new directory under parent,
// emptying parent first if this process has not used it yet.
func openTaskStore(parent string, o *outState, cache int, fail func(error)) (*diskStore, error) {
	if err := stateDirs.clean(parent); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, o.def.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	s, err := openDiskStore(dir, o, cache, stateBlockCache, fail)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// stateDirs remembers the state directories this process emptied.
var stateDirs = &cleanedDirs{done: map[string]bool{}}

type cleanedDirs struct {
	mu   sync.Mutex
	done map[string]bool
}

// clean empties dir (creating it) the first time it is asked to.
func (c *cleanedDirs) clean(dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done[dir] {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("empty the state directory %s of an earlier run: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	c.done[dir] = true
	return nil
}

// spillIfLarge moves the groups of every output that holds more than
// spillAt of them in memory to a disk store (StateAuto), after a
// changelog flush: no group waits for one then. A store that cannot be
// opened leaves the engine in memory for good.
func (e *Engine) spillIfLarge() {
	if e.spill == nil {
		return
	}
	for _, o := range e.outs {
		mem, ok := o.keys.(*memStore)
		if !ok || mem.Len() <= e.spillAt {
			continue
		}
		s, err := e.spill(o)
		if err != nil {
			e.spill = nil
			return
		}
		for _, ks := range mem.m {
			s.Insert(ks)
		}
		for _, t := range mem.t {
			s.Schedule(t.at, t.id)
		}
		s.Flushed()
		mem.Close()
		o.keys = s
	}
}

// closeOperator releases what a dropped task's operator holds: a disk
// store and its directory.
func (w *Windower) closeOperator(op Operator) {
	c, ok := op.(io.Closer)
	if !ok {
		return
	}
	if err := c.Close(); err != nil {
		w.cfg.warn.Warn("close state: "+err.Error(), "cannot close a dropped task's state store", "pipeline", w.cfg.Plan.Name, "err", err)
	}
}

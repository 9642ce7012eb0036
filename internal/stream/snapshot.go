package stream

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"time"
)

// snapshot is the serialized form of an Engine's state.
type snapshot struct {
	Version int
	Fired   int64
	PartMax map[int32]int64
	Windows []snapWindow
}

type snapWindow struct {
	Output string
	Key    string
	Start  int64
	State  WindowState
}

const snapshotVersion = 1

// Snapshot serializes the engine's open windows and watermarks.
func (e *Engine) Snapshot() ([]byte, error) {
	s := snapshot{Version: snapshotVersion, Fired: e.fired, PartMax: e.wm.PartitionMax()}
	for _, o := range e.outs {
		for key, ws := range o.keys {
			for _, w := range ws {
				s.Windows = append(s.Windows, snapWindow{Output: o.def.Name, Key: key, Start: w.start, State: w.state})
			}
		}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&s); err != nil {
		return nil, fmt.Errorf("encode engine snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// Restore replaces the engine's state with a snapshot taken by Snapshot.
// Windows of outputs the engine no longer has are dropped.
func (e *Engine) Restore(data []byte, now time.Time) error {
	var s snapshot
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&s); err != nil {
		return fmt.Errorf("decode engine snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("engine snapshot version %d is not supported (want %d)", s.Version, snapshotVersion)
	}
	byName := make(map[string]*outputState, len(e.outs))
	for _, o := range e.outs {
		o.keys = make(map[string][]window)
		o.open = 0
		byName[o.def.Name] = o
	}
	for _, w := range s.Windows {
		o := byName[w.Output]
		if o == nil {
			continue
		}
		o.keys[w.Key] = append(o.keys[w.Key], window{start: w.Start, state: w.State})
		o.open++
	}
	e.fired = s.Fired
	e.wm.Restore(s.PartMax, now.UnixMilli())
	return nil
}

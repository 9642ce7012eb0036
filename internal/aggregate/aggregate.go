package aggregate

import "github.com/pulsehq/pulse/internal/event"

// Func is an aggregate function, e.g. avg.
type Func interface {
	// Name is the function's name in pipeline files, e.g. "avg".
	Name() string
	// NeedsField reports whether the function takes an input field
	// (count does not).
	NeedsField() bool
	// New returns an empty state.
	New() State
}

// State is the running state of one aggregate in one window.
type State interface {
	// Add folds one input value in. Null values are ignored by every
	// function except count without a field, which counts events.
	Add(v event.Value, ts int64)
	// Merge folds another state of the same function into this one.
	Merge(o State)
	// Result returns the aggregate's value; ok is false when there is none
	// (e.g. avg of no values), and the field is then left out of results.
	Result() (v event.Value, ok bool)
	// AppendBinary appends the serialized state; Decode reads it back.
	AppendBinary(dst []byte) []byte
	Decode(src []byte) error
}

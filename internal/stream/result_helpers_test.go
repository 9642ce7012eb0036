package stream

import (
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// AppendValuesJSON appends a result's values as a JSON object of named
// fields, each as it is (TypeAny), leaving out those without a value: for
// tests that have no schema at hand. Records use a Schema.
func AppendValuesJSON(dst []byte, r *Result) []byte {
	s := &Schema{names: r.Names}
	for _, n := range r.Names {
		s.Columns = append(s.Columns, pipeline.Column{Name: n, Type: TypeAny})
		s.members = append(s.members, append(event.AppendJSONString(nil, n), ':'))
	}
	return s.AppendStored(dst, r)
}

// changeSource is an operator's (or engine's) changelog side.
type changeSource interface {
	WriteChanges(emit func(Change))
	WriteSnapshot(emit func(Change))
}

// appendChanges appends the records op.WriteChanges emits.
func appendChanges(op changeSource, dst []Change) []Change {
	op.WriteChanges(func(c Change) { dst = append(dst, c) })
	return dst
}

// appendSnapshot appends the records op.WriteSnapshot emits.
func appendSnapshot(op changeSource, dst []Change) []Change {
	op.WriteSnapshot(func(c Change) { dst = append(dst, c) })
	return dst
}

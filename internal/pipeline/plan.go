package pipeline

import (
	"time"

	"github.com/google/cel-go/cel"

	"github.com/pulsehq/pulse/internal/aggregate"
)

// Plan is a validated, compiled pipeline: what the stream engine runs.
type Plan struct {
	Name        string
	Description string
	// File is where the pipeline was read from ("builtin:city.yaml" for the
	// embedded ones).
	File   string
	Source Source
	// Where filters events; nil keeps every event. It evaluates to a bool
	// (or to a dyn that must be a bool at run time). It is evaluated after
	// Derive, so it can read derived fields.
	Where *Program
	// Derive adds fields, in order; a later expression can use an earlier
	// derived field.
	Derive []Derived
	Time   EventTime
	// Outputs are the windowed aggregations; each reads every event that
	// passed Where.
	Outputs []Output

	// positions holds where each key was in the file, by path, for the
	// errors of checks that run after parsing (Link).
	positions map[string][2]int
}

// LateTopic names a pipeline's late-events topic.
func LateTopic(pipeline string) string { return pipeline + ".late" }

// DLQTopic names the dead-letter topic of a source topic (a stream).
func DLQTopic(topic string) string { return topic + ".dlq" }

// Source is where a pipeline's events come from.
type Source struct {
	Topics []string
	Format string // "json"
	// Schema, when set, names a built-in event schema every event must
	// satisfy ("city": event.CityParser's validation); events that do not
	// go to the dead-letter topic with the reason.
	Schema string
	// KeyField is the field the input records are keyed by.
	KeyField string
	// TimeField holds the event time; TimeFormat is "auto" (RFC 3339
	// string or epoch milliseconds number), "rfc3339", "epoch_ms" or
	// "epoch_s".
	TimeField  string
	TimeFormat string
	// Pipeline and Output, when set, make the source another pipeline's
	// output (source: {pipeline: logs, output: errors_1m}); Link resolves
	// them into Topics, the time and key fields, and Columns.
	Pipeline, Output string
	// Columns are the typed columns of the upstream output a linked
	// source reads; nil for a topic source.
	Columns []Column
	// Changes is set when the upstream output may correct a result it
	// wrote (an update or a delete): see Output.Changes.
	Changes bool
	// Groups are the upstream output's group fields: with the time, what
	// a delete record carries.
	Groups []string
}

// Program is a compiled CEL expression with the event fields it reads.
type Program struct {
	Source string
	Prog   cel.Program
	// Fields are the identifiers the expression reads: event fields or
	// earlier derived fields.
	Fields []string
}

// Derived is a field computed by a CEL expression.
type Derived struct {
	Name string
	Expr *Program
}

// EventTime configures watermarks and lateness.
type EventTime struct {
	MaxOutOfOrderness time.Duration // default 5s
	IdleTimeout       time.Duration // default 30s
	AllowedLateness   time.Duration // default 0
}

// WindowKind is tumbling, hopping or session.
type WindowKind uint8

// The window kinds.
const (
	Tumbling WindowKind = iota + 1
	Hopping
	Session
)

// Window assigns events to windows.
type Window struct {
	Kind  WindowKind
	Size  time.Duration // tumbling, hopping
	Slide time.Duration // hopping
	Gap   time.Duration // session
}

// Aggregate is one named aggregate of an output.
type Aggregate struct {
	// Name is the result field, e.g. "speed_kmh_avg".
	Name  string
	Func  aggregate.Func
	Field string // input field; "" for count()
}

// OutputKind is the operator an output runs.
type OutputKind uint8

// The output kinds. The zero value is a window aggregation, so that plans
// built before kinds existed stay windows.
const (
	// KindWindow aggregates events in event-time windows.
	KindWindow OutputKind = iota
	// KindEvents writes one result per event (routing, enrichment,
	// alerts): where, derive and a field projection, no window.
	KindEvents
	// KindDetect runs a keyed, stateful detector (e.g. an EWMA z-score)
	// over the events in event-time order.
	KindDetect
	// KindJoin writes one result per event, enriched with the row of a
	// table (a compacted Kafka topic) that the event's key field names.
	KindJoin
)

// Output is one operator (by default a windowed aggregation) and where its
// results go.
type Output struct {
	Name       string
	Kind       OutputKind
	GroupBy    []string
	Window     Window
	Aggregates []Aggregate
	// Partials is how often live partial results are published; 0 means
	// only final results.
	Partials time.Duration
	// Topic receives the final results (default "<pipeline>.<output>").
	Topic string
	// Sinks names the stores that keep the results ("sqlite").
	Sinks []string
	// Retention is how long the stores keep a result, counted from its
	// window start (or time) to the clock; 0 keeps results forever.
	Retention time.Duration
	// Live makes the output available to live views (SSE, dashboard).
	Live bool
	// Archive keeps the output's results, every record of its topic (a
	// log of inserts, updates and deletes), in the Parquet archive next
	// to the raw events (docs/archive.md).
	Archive bool

	// Having, when set, keeps only the results for which it is true; it
	// reads the result's columns (group fields, window bounds,
	// aggregates, earlier computed fields).
	Having *Program
	// Computed are result columns computed from the others, in order,
	// e.g. error_ratio: errors / total.
	Computed []Computed
	// Columns are the value columns of an events or detect output (after
	// its group fields and its time), as its operator writes them; a
	// window output's are its aggregates and computed fields.
	Columns []Column
	// Detect configures a detect output.
	Detect *Detect
	// Events configures an events output (operators.go).
	Events *Events
	// Join configures a join output.
	Join *Join
}

// ColumnType is the type of a result column.
type ColumnType uint8

// The column types of results.
const (
	TypeString ColumnType = iota + 1
	TypeInt64
	TypeFloat64
	TypeBool
	TypeTimestamp // ms since the Unix epoch, written as RFC 3339
	TypeDecimal
)

// Column is one named, typed column of an output's results.
type Column struct {
	Name string
	Type ColumnType
}

// Computed is a result column computed by a CEL expression over the
// result's other columns.
type Computed struct {
	Name string
	Expr *Program
	Type ColumnType
}

// Detect configures a detect output: which detector runs over which
// fields, per key. Its parser and operator define the fields.
type Detect struct {
	// Detector names the algorithm ("zscore": an EWMA mean and variance
	// per key and field).
	Detector string
	// Fields are the numeric event fields the detector watches.
	Fields []string
	// Alpha is the EWMA smoothing factor, in (0, 1].
	Alpha float64
	// Threshold is the |z| at or above which a point is an anomaly.
	Threshold float64
	// WarmUp is how many points of a key and field are seen before the
	// detector reports anything.
	WarmUp int
}

// Join configures a join output: each event is enriched with the current
// row of a table, a compacted Kafka topic holding the latest JSON value
// per record key. Its parser (join.go) and operator (stream/op_join.go)
// define the rest.
type Join struct {
	// Table is the table's topic.
	Table string
	// Key is the event field whose value, as text, is the table key.
	Key string
	// Fields are the event fields the result keeps, in order, with their
	// types (event fields or derived fields).
	Fields []Column
	// TableFields are the table fields the result adds after them.
	TableFields []Column
	// Missing says what an event whose key has no table row does: dropped
	// (MissingDrop, counted) or written with null table fields
	// (MissingNull).
	Missing JoinMissing
}

// JoinMissing is what a join does with an event that has no table row.
type JoinMissing uint8

// What a join does with an event without a table row.
const (
	MissingDrop JoinMissing = iota
	MissingNull
)

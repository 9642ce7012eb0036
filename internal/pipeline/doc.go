// Package pipeline reads pipeline files (docs/pipelines.md) into Plans, the
// validated and compiled form the stream engine runs: the source topics and
// key, event time and watermark settings, the where filter and derived
// fields as CEL programs, and each output's window, grouping and
// aggregates. Parse reports every problem of a file at once, each with its
// line, column and a hint (Errors); Builtin returns the pipelines embedded
// in the binary, LoadDir those of a directory, and Merge joins the two,
// refusing duplicate names. It also names the topics a pipeline writes
// besides its outputs (LateTopic, DLQTopic).
package pipeline

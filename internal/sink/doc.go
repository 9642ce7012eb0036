// Package sink stores the final results of outputs behind a store
// contract (store.go): Appender batches of upserts and deletes committed
// with the offsets they consumed, the offsets to resume from, and the
// Querier the results API reads. SQLite implements it. The Feed reads the
// result topics (read_committed), decodes each record with its output's
// schema (stream.RecordDecoder) and applies it by its kind, writing each
// batch and its offsets in one transaction and seeking to those offsets
// on start, so each final result is stored exactly once whatever crashes.
package sink

// Package stream is Pulse's processing engine. The Engine assigns events
// to event-time windows, keeps per-window aggregates in a GroupStore,
// tracks per-partition watermarks, fires final results when the watermark
// passes a window's end, and writes its changes as changelog records. A
// pipeline runs as two stages, each a member of a Kafka consumer group
// committing through Kafka transactions: the Shuffler decodes source
// records and repartitions them by each output's group key, with
// watermark markers; the Windower runs one engine per repartition
// partition, restored from its changelog before its first record, and
// commits results, changelog records and offsets together.
//
// Both stages run on one transactional task loop (taskLoop, loop.go): it
// owns the group session, polls, begins a transaction with the first
// record, and commits or aborts only after every write answered; a stage
// gives it hooks (open, prepare, process, finish, committed, aborted).
// A window-stage task's logic is an Operator (operator.go): the window
// engine, or the events and detect operators.
package stream

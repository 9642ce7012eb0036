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
package stream

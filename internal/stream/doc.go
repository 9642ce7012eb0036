// Package stream is Pulse's processing engine: it assigns events to
// event-time windows, keeps per-window aggregates, tracks per-partition
// watermarks, fires final results when the watermark passes a window's end,
// and checkpoints state together with consumed offsets so that a restart
// continues exactly where the last checkpoint left off.
package stream

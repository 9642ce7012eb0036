// Package aggregate implements the aggregate functions of pipeline windows:
// count, sum, avg, min, max, first, last, stddev, percentiles from a
// mergeable DDSketch, and count_distinct from a HyperLogLog. Every state can
// be merged with another (for session windows) and serialized (for
// checkpoints and changelogs).
//
// # Looking functions up
//
// A pipeline writes either name() or name(field). [Lookup] returns the
// function for name() and [LookupWithField] the one for name(field). Only
// count is valid without a field: Lookup("count") counts events (NeedsField
// is false and the engine calls Add once per event with a null value),
// while LookupWithField("count") returns [CountField], which counts the
// non-null values of its field. For every other name Lookup returns the same
// function as LookupWithField, whose NeedsField is true, so that the caller
// can reject name() with a clear message.
//
// # Nulls and kinds (SQL-like semantics)
//
// Null values are ignored by every function except count(), which counts
// events. The numeric functions sum, avg, min, max, stddev and the
// percentiles p50, p90, p95, p99 only look at Number values: strings and
// booleans are skipped as if they were null, and so is NaN. Percentiles also
// skip ±Inf and numbers beyond the sketch's range (|x| > about 1.26e308),
// which a DDSketch cannot hold.
//
// # Results
//
// Result reports ok=false when there is nothing to report: sum, avg, min,
// max, stddev and the percentiles when no number was seen, first and last
// when no non-null value was seen. count, count(x) and count_distinct always
// have a result: 0 when nothing was counted, as in SQL. Results are Numbers,
// except first and last, which return the value they hold (of any kind).
//
//   - sum uses Neumaier-compensated summation.
//   - stddev is the population standard deviation, computed with Welford's
//     method over the differences from the first number seen (which keeps
//     large offsets such as timestamps precise) and merged with the
//     parallel formula of Chan et al.
//   - first and last return the value with the smallest (largest) event time;
//     on equal times first keeps the earliest added and last the latest
//     added, and Merge treats the receiver as added before its argument, so
//     the result does not depend on arrival order across distinct times.
//   - p50..p99 come from a DDSketch with relative accuracy 0.01: the result
//     is within 1% of an element of rank q·(n−1) (rounded down or up).
//   - count_distinct hashes the kind and the text form of each value (so the
//     number 1 and the string "1" differ) into a HyperLogLog of precision 14.
//
// # Serialization
//
// AppendBinary writes a version byte, a byte naming the state's type and
// the state's fields (little-endian fixed-size numbers, the DDSketch's own
// encoding, or the HyperLogLog's MarshalBinary form). Decode replaces the
// receiver's content with a decoded state and reproduces exactly its Result
// and its behaviour under further Add and Merge. Decode never panics: bad
// input returns an error wrapping [ErrCorrupt].
//
// States are not safe for concurrent use, not even Result alone: the
// sketches compact themselves when read. Merge panics when given a state
// of another function, which is a programming error.
package aggregate

// Package archive keeps the raw events of every stream, and the results
// of the outputs that say archive: true, as Parquet files, in a local
// folder or an S3-compatible bucket, for years of history that any
// Parquet reader (DuckDB, Spark, pandas) can query.
//
// # Layout
//
// The archiver reads each stream's topic read_committed and writes
//
//	stream=S/date=YYYY-MM-DD/hour=HH/pPPP-FROM-TO.parquet
//
// partitioned by event time (UTC). One file holds the events of one
// topic partition PPP, one hour, and one roll: the offsets [FROM, TO) of
// that partition. Its key-value metadata repeats them (pulse.stream,
// pulse.topic, pulse.partition, pulse.offsets = "FROM-TO", pulse.rows).
// Columns: event_time TIMESTAMP(MILLIS, UTC), key (the record key),
// kafka_partition, kafka_offset, and the stream's fields: typed for the
// city schema (sensor_id, zone, kind, one nullable column per metric), the
// event's JSON text (event_json) for a stream without a schema. An
// output's results are archived as the stream "@PIPELINE.OUTPUT" (no
// topic name has an @): a log of its result records with their kind
// (insert, update, delete) and typed result columns, the event time
// being window_start, or time for outputs without windows
// (result_codec.go). Files are
// zstd (or snappy) compressed, with row groups of at most 122,880 rows and
// min/max statistics per column chunk and page, so readers skip what a
// filter on time or sensor excludes.
//
// # Exactly once
//
// A roll is what one partition archived since its last roll was
// published: every record read in [FROM, TO) goes to the file of its
// event-time hour (a reading not valid for its schema is counted in
// pulse_archive_skipped_records_total instead, as the pipelines send it
// to the dead-letter topic). A roll ends after Roll.Rows events, Bytes of
// record values, Files hours, or Age. Then its files are completed one by
// one: written in full to a temporary name in the spool (*.parquet.tmp,
// which no *.parquet glob matches), fsynced, and published (a rename and
// a directory fsync on disk; on S3 an upload, whose object appears only
// when the PUT or the multipart upload completes). The next roll of the
// partition starts at TO only after the whole roll is published.
//
// So of each partition's rolls only the last published one (the greatest
// TO) may be incomplete: a crash may have come between two of its hours.
// On start the archiver lists the files, removes the spool's leftovers,
// and for every partition seeks to the FROM of its last roll and writes
// that roll again, ending it exactly at its TO. The records of [FROM, TO)
// are the same ones (the log does not change) and their hours too (the
// hour comes from the event itself), so the roll's files come out under
// the same names with the same rows: a file that was there is replaced by
// an equal one, a missing one is added. Every event of [FROM, TO) is then
// in exactly one file, and the rolls of a partition tile its offsets
// without gap or overlap. Nothing but the files is needed: no manifest,
// no offsets committed to Kafka.
//
// A failure (a full disk, an S3 error, Kafka away) ends the session: the
// unpublished files are dropped, pulse_archive_failing is set and the
// error logged once a minute at most, and a new session starts from the
// listing as after a crash, with capped exponential backoff, until it
// works again. The events wait in Kafka meanwhile (its retention bounds
// how long an archive may stay down without losing any).
//
// Config.Workers goroutines share the partitions (partition % workers),
// each with its own Kafka client, codecs and retry; the spool is cleaned
// once before they start.
//
// One archiver writes one archive: give --archive to one Pulse process of
// a cluster (two would each write rolls of their own bounds).
package archive

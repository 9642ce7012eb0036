// Package ingest is Pulse's HTTP intake: it decodes request bodies (one JSON
// object, a JSON array or NDJSON, optionally gzip-compressed), validates each
// event, produces valid ones to the stream's topic keyed by the stream's key
// field, writes rejected ones with their reason to the stream's dead-letter
// topic, and answers only after the broker acknowledged every write.
package ingest

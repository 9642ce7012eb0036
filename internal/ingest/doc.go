// Package ingest is Pulse's HTTP intake: it decodes request bodies (one JSON
// object, a JSON array or NDJSON, optionally gzip-compressed), validates each
// event, produces valid ones to the stream's topic keyed by the stream's key
// field, writes rejected ones with their reason to the stream's dead-letter
// topic, and answers only after the broker acknowledged every write.
//
// Before it reads a body, ingest may turn a request away with 503 (or the
// gate's code) and Retry-After: when a Gate refuses (Config.Gates: the
// consumer lag bound, a disk guard), when the Breaker finds the broker
// unreachable, or when the request does not fit the in-flight byte limit
// (Config.MaxInflight), which bounds the memory requests hold until their
// records are acknowledged or failed.
package ingest

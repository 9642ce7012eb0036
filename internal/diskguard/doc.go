// Package diskguard keeps Pulse off a full disk. A Guard watches the free
// space of the data directory's file system and, below a reserve, reports
// the disk low: ingest refuses new events (507 with Retry-After), the
// pipeline stages stop starting transactions, the SQLite sink waits, and
// /readyz says not ready, naming the disk. When space returns above the
// reserve (plus a margin, so that it does not flap) everything resumes by
// itself.
//
// The embedded broker must never meet ENOSPC: kfake drops a transaction
// marker it cannot write while forgetting the transaction (so an aborted
// transaction's records become visible to read_committed readers, and a
// committed one's vanish on restart), and a compaction pass that fails
// half way leaves segments that fail their CRC. The reserve is the room
// that the writes already under way when the guard trips need to end
// cleanly.
package diskguard

// Package bus holds the Kafka helpers Pulse shares whether the broker is
// embedded or a cluster: parsing a broker list, creating a client for it
// (the ingest producer), creating topics (and, with a Keeper, creating them
// again when a Kafka client deleted one), and the readiness ping. The
// pipeline stages, the SQLite sink's feed and the load generator build
// their own franz-go clients (transactional sessions, restore readers,
// consumers) from the same seed brokers.
package bus

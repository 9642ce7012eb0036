// Package e2e holds Pulse's process-level end-to-end tests: they build the
// pulse binary, start it on free ports with a temporary data directory,
// send real traffic over HTTP and the Kafka protocol (kcat), stop and kill
// it, restart it, and check the stored results against an oracle.
package e2e

// Package serve is Pulse's HTTP server: the ingest API, the results API,
// live views over Server-Sent Events, the embedded dashboard, /metrics and
// the health endpoints.
package serve

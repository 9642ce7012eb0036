// Package telemetry defines Pulse's Prometheus metrics in one registry that
// every component records into and /metrics serves.
package telemetry

// Package ratelog rate-limits log lines during a fault: one line per cause
// and interval, carrying the count of the lines it held back, so that a
// failing dependency cannot fill the log.
package ratelog

// Package event defines Pulse's event model: city sensor readings, their
// metrics, event-time parsing and validation of outside input.
package event

// Package lifecycle runs Pulse's components as one group: all started at
// once, each in its own goroutine (the order of the list matters only for
// stopping), then stopped one at a time in reverse order, each allowed to
// drain before the one it depends on stops.
package lifecycle

// Package lifecycle runs Pulse's components as one group: all started at
// once, each on its own goroutine (a component that needs another to be
// ready first waits for it itself), stopped in reverse order of the list,
// each allowed to drain before the next stops.
package lifecycle

// Package lifecycle runs Pulse's components as one group: started in order,
// stopped in reverse order, each allowed to drain before the next stops.
package lifecycle

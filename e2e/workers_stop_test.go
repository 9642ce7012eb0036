package e2e

import "testing"

// TestWorkersStop starts pulse with two workers per stage and stops it
// at once, while the stages' groups are still in their first rebalance:
// it exits within the harness's stop timeout.
func TestWorkersStop(t *testing.T) {
	for range 6 {
		p := newInstance(t, "--workers", "2").start(t)
		p.stop()
	}
}

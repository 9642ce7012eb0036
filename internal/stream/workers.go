package stream

import (
	"math"
	"strconv"
	"sync"
)

// A stage of a pipeline runs as one or more workers in a process: each an
// independent member of the stage's consumer group, with its own share of
// the partitions, its own transactional id and its own transaction cycle,
// on its own goroutine. More workers use more cores, and one worker's
// commit no longer holds up the partitions of the others.

// NewShufflers returns the shuffle stage of cfg.Plan as n workers (at
// least one); Run starts each.
func NewShufflers(cfg StageConfig, n int) []*Shuffler { return newWorkers(cfg, n, NewShuffler) }

// NewWindowers returns the window stage of cfg.Plan as n workers (at least
// one); Run starts each.
func NewWindowers(cfg StageConfig, n int) []*Windower { return newWorkers(cfg, n, NewWindower) }

func newWorkers[T any](cfg StageConfig, n int, start func(StageConfig) T) []T {
	var out []T
	for _, c := range cfg.workers(n) {
		out = append(out, start(c))
	}
	return out
}

// workers returns the configurations of n workers of a stage, which share
// the stage's gauges.
func (c StageConfig) workers(n int) []StageConfig {
	n = max(n, 1)
	g := &workerGauges{vals: make([][3]float64, n), has: make([][3]bool, n)}
	out := make([]StageConfig, n)
	for i := range out {
		out[i] = c
		out[i].worker, out[i].gauges = i, g
	}
	return out
}

// workerSuffix distinguishes the transactional and instance ids of a
// stage's workers; the first worker's ids are those of a single-worker
// stage, so that a process started again with more workers fences the
// transactions its previous life left open.
func workerSuffix(worker int) string {
	if worker == 0 {
		return ""
	}
	return "." + strconv.Itoa(worker)
}

// The gauges a stage's workers each hold a part of.
const (
	gaugeLag       = iota // consumer lag: the sum over workers
	gaugeOpen             // open windows: the sum
	gaugeWatermark        // watermark: the minimum over workers that have one
)

// workerGauges combines the gauge values of a stage's workers.
type workerGauges struct {
	mu   sync.Mutex
	vals [][3]float64
	has  [][3]bool
}

// put sets worker's value of gauge g (ok false: it has none) and returns
// the value over all workers, and whether any has one.
func (w *workerGauges) put(worker, g int, v float64, ok bool) (float64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.vals[worker][g], w.has[worker][g] = v, ok
	total, lowest, any := 0.0, math.Inf(1), false
	for i := range w.vals {
		if !w.has[i][g] {
			continue
		}
		any = true
		total += w.vals[i][g]
		lowest = min(lowest, w.vals[i][g])
	}
	if g == gaugeWatermark {
		return lowest, any
	}
	return total, any
}

// setGauge sets gauge g of the stage's pipeline to this worker's value
// combined with the other workers'.
func (c *StageConfig) setGauge(g int, v float64, ok bool) {
	m := c.Metrics
	if m == nil {
		return
	}
	if c.gauges != nil {
		v, ok = c.gauges.put(c.worker, g, v, ok)
	}
	if !ok {
		return
	}
	switch g {
	case gaugeLag:
		m.ConsumerLag.WithLabelValues(c.Plan.Name).Set(v)
	case gaugeOpen:
		m.OpenWindows.WithLabelValues(c.Plan.Name).Set(v)
	case gaugeWatermark:
		m.Watermark.WithLabelValues(c.Plan.Name).Set(v)
	}
}

package stream

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// refreshOffsets reads the start and end offsets of every input partition,
// so that a partition the consumer has not reached yet counts as having a
// backlog (and holds the watermark) however long it waits.
func (p *Processor) refreshOffsets(ctx context.Context) {
	adm := kadm.NewClient(p.cfg.Client)
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(lctx, p.cfg.Plan.Source.Topics...)
	if err != nil {
		return // the next fetch or refresh updates them
	}
	starts, err := adm.ListStartOffsets(lctx, p.cfg.Plan.Source.Topics...)
	if err != nil {
		return
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > p.hwm[tpKey(o.Topic, o.Partition)] {
			p.hwm[tpKey(o.Topic, o.Partition)] = o.Offset
		}
	})
	starts.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			p.low[tpKey(o.Topic, o.Partition)] = o.Offset
		}
	})
	p.updateBacklog()
}

// updateBacklog tells the engine which partitions have records waiting.
func (p *Processor) updateBacklog() {
	for tp, pid := range p.pids {
		next := max(p.next[tp], p.low[tp])
		p.engine.SetBacklog(pid, p.hwm[tp] > next)
	}
}

package stream

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// purgeEvery is how often the window stage deletes the repartition records
// it has committed past.
const purgeEvery = 30 * time.Second

// purge deletes, in the repartition partitions this member owns, the
// records before its committed offsets: once the window stage committed
// past them, no one reads them again (Kafka Streams purges its
// repartition topics the same way). Without it the repartition topics
// would keep every event for the broker's whole retention.
func (w *Windower) purge(ctx context.Context, cl *kgo.Client) {
	var offs kadm.Offsets
	for topic, parts := range cl.CommittedOffsets() {
		if _, ok := w.outIdx[topic]; !ok {
			continue
		}
		for p, eo := range parts {
			if eo.Offset > 0 {
				offs.AddOffset(topic, p, eo.Offset, -1)
			}
		}
	}
	if len(offs) == 0 {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).DeleteRecords(dctx, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		// The next purge tries again; nothing depends on it but disk.
		w.cfg.Logger.Warn("purge repartition records", "pipeline", w.cfg.Plan.Name, "err", err)
	}
}

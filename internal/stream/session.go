package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/ratelog"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// Cluster is how the stages of a pipeline reach Kafka and identify
// themselves in its consumer groups.
type Cluster struct {
	// Opts are the client options every client starts from: seed brokers
	// and the like.
	Opts []kgo.Opt
	// Node identifies this Pulse process across restarts; it makes the
	// transactional ids, so that a restarted process fences and aborts
	// the transactions its previous life left open instead of waiting for
	// them to time out.
	Node string
	// SessionTimeout is how long the group waits for a silent member
	// before giving its partitions to the others.
	SessionTimeout time.Duration
	// TxnTimeout is how long the broker keeps a transaction of a dead
	// member open before aborting it.
	TxnTimeout time.Duration
	// Clients gives the stage workers' clients their metrics (nil: none).
	Clients *bus.ClientMetrics
}

// defaultTxnTimeout is franz-go's transaction timeout, used without
// Cluster.TxnTimeout.
const defaultTxnTimeout = 40 * time.Second

// groupSession is a stage worker's transactional consumer. Its Close
// does not wait on the group's coordinator for longer than closeGrace.
type groupSession struct {
	*kgo.GroupTransactSession
	cancel context.CancelFunc // the client's context
	log    *slog.Logger
}

// closeGrace bounds how long Close waits for the client to leave its group
// before it cancels the client's requests.
//
// franz-go's Close waits for a join in flight to finish, and that join
// cannot be canceled but by the client's context. When a process stops
// while a stage's group rebalances, the coordinator holds the join of one
// of its workers until every member has joined, up to the rebalance
// timeout, and the worker that stopped before it is a static member that
// does not leave: it never joins. The cut-short leave loses nothing: a
// worker's transaction has ended before Close, and a static member does not
// send a leave (TestWorkersStop).
const closeGrace = 2 * time.Second

// Close closes the client, canceling its requests after closeGrace.
func (s *groupSession) Close() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.GroupTransactSession.Close()
	}()
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("a stage worker's group leave waited on a rebalance in progress; closing it without waiting further", "waited", closeGrace)
		s.cancel()
		<-done
	}
	s.cancel()
}

// session starts a transactional consumer in group for a worker of a stage
// of plan.
func (c Cluster) session(plan *pipeline.Plan, stage string, worker int, log *slog.Logger, extra ...kgo.Opt) (*groupSession, error) {
	group := "pulse." + plan.Name + "." + stage
	member := group + "." + c.Node + workerSuffix(worker)
	opts := append([]kgo.Opt{}, c.Opts...)
	opts = append(opts, c.Clients.Opts("pulse-"+plan.Name+"-"+stage+workerSuffix(worker))...)
	opts = append(opts,
		kgo.ConsumerGroup(group),
		kgo.TransactionalID(member),
		// A static member: a restarted process takes its old place in
		// the group at once instead of waiting for a rebalance.
		kgo.InstanceID(member),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// A fetch waits in the client until it is polled, decompressed
		// and as kgo.Records (some 200 bytes each): at 32 MiB the
		// stages' buffered fetches were some 400 MB of a 1,000,000-key
		// process's heap (docs/benchmarks.md, State at scale).
		kgo.FetchMaxBytes(8<<20),
		kgo.FetchMaxPartitionBytes(2<<20),
		kgo.MaxBufferedRecords(1<<20),
		kgo.MaxBufferedBytes(64<<20), // a flush of any size waits for acks rather than grow the heap
		kgo.ProducerLinger(time.Millisecond),
	)
	if c.SessionTimeout > 0 {
		// Members rejoin within a session timeout or are dropped: a
		// member's work between polls is bounded by its commit interval.
		opts = append(opts, kgo.SessionTimeout(c.SessionTimeout), kgo.HeartbeatInterval(c.SessionTimeout/5),
			kgo.RebalanceTimeout(c.SessionTimeout))
	}
	if c.TxnTimeout > 0 {
		opts = append(opts, kgo.TransactionTimeout(c.TxnTimeout))
	}
	cctx, cancel := context.WithCancel(context.Background())
	opts = append(opts, kgo.WithContext(cctx))
	opts = append(opts, extra...)
	ts, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start %s stage of pipeline %s: %w", stage, plan.Name, err)
	}
	s := &groupSession{GroupTransactSession: ts, cancel: cancel, log: log.With("group", group, "member", member)}
	// Claim the transactional id now rather than at the first produce:
	// that aborts the transaction a killed predecessor left open. Its
	// uncommitted group offsets would otherwise keep this member from
	// fetching (KIP-447) until the broker times it out, and without
	// fetching it never produces.
	ictx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := s.Client().ProducerID(ictx); err != nil {
		s.Close()
		return nil, fmt.Errorf("start %s stage of pipeline %s: claim transactional id: %w", stage, plan.Name, err)
	}
	return s, nil
}

// StageConfig configures the stages of one pipeline.
type StageConfig struct {
	Plan    *pipeline.Plan
	Cluster Cluster
	Board   *Board
	Metrics *telemetry.Metrics
	Logger  *slog.Logger
	// CommitEvery is how long a transaction collects work before it
	// commits: the shuffle stage's bounds how long an event waits before
	// the window stage sees it; the window stage's how often results,
	// changelog and offsets are committed.
	CommitEvery time.Duration
	// Hold, when it reports true, keeps the stage from starting
	// transactions: it polls nothing until Hold reports false, so that a
	// disk low on space is not written to (see internal/diskguard). The
	// transaction in progress ends as usual. Nil never holds.
	Hold func() bool
	// StallTimeout is how long a worker may hold records it read, or
	// leave records unread, without committing before /readyz reports it
	// not ready (default 30 s).
	StallTimeout time.Duration
	// MaxFuture is how far ahead of the clock a source event's time may
	// be: the shuffle stage sends events further ahead to the dead-letter
	// topic, with the reason (0: no limit).
	MaxFuture time.Duration
	// RestoreTimeout bounds the restore of a window stage's tasks from
	// their changelogs (default 5 min): past it the session fails with
	// the partition it was reading, and starts again.
	RestoreTimeout time.Duration
	// State chooses where the window stage keeps its tasks' keyed state
	// (state.go); the zero value keeps it in memory.
	State StateConfig

	warn   *ratelog.Logger // the stage's warnings, one per cause and interval
	worker int             // this worker's index among the stage's workers
	gauges *workerGauges   // shared by the stage's workers; nil: one worker
}

func (c *StageConfig) defaults(every time.Duration) {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.warn == nil {
		c.warn = ratelog.New(c.Logger, 10*time.Second)
	}
	if c.CommitEvery <= 0 {
		c.CommitEvery = every
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = defaultStall
	}
	if c.RestoreTimeout <= 0 {
		c.RestoreTimeout = 5 * time.Minute
	}
}

// partitionCounts returns the partition count of each topic.
func partitionCounts(ctx context.Context, cl *kgo.Client, topics []string) ([]int32, error) {
	out := make([]int32, len(topics))
	for i, t := range topics {
		parts, err := bus.Partitions(ctx, cl, t)
		if err != nil {
			return nil, err
		}
		out[i] = int32(len(parts))
	}
	return out, nil
}

// assignment tracks a group member's partitions through the group's
// callbacks, which run on the client's goroutines.
type assignment struct {
	mu      sync.Mutex
	parts   map[string]map[int32]bool
	changed bool
}

func (a *assignment) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.parts == nil {
		a.parts = map[string]map[int32]bool{}
	}
	for t, ps := range m {
		if a.parts[t] == nil {
			a.parts[t] = map[int32]bool{}
		}
		for _, p := range ps {
			a.parts[t][p] = true
		}
	}
	a.changed = true
}

func (a *assignment) revoked(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			delete(a.parts[t], p)
		}
	}
	a.changed = true
}

// take returns the current partitions if they changed since the last call.
func (a *assignment) take() (map[string][]int32, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.changed {
		return nil, false
	}
	a.changed = false
	out := map[string][]int32{}
	for t, ps := range a.parts {
		for p := range ps {
			out[t] = append(out[t], p)
		}
	}
	return out, true
}

func (a *assignment) opts() []kgo.Opt {
	return []kgo.Opt{kgo.OnPartitionsAssigned(a.assigned), kgo.OnPartitionsRevoked(a.revoked), kgo.OnPartitionsLost(a.revoked)}
}

// poll returns what sess fetches within wait, logging fetch errors other
// than the wait running out (once per cause and interval). A topic that
// is missing or was created again is an error: the session's client
// would fetch with the old topic's id forever, so the session must start
// again.
func poll(ctx context.Context, sess *kgo.GroupTransactSession, wait time.Duration, maxRecords int, cfg *StageConfig) (kgo.Fetches, error) {
	if cfg.held() {
		// Nothing polled, nothing to write: wait out the poll's time
		// (the group's heartbeats go on in the client).
		t := time.NewTimer(min(wait, 100*time.Millisecond))
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		return nil, nil
	}
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	fetches := sess.PollRecords(pctx, maxRecords)
	var gone error
	fetches.EachError(func(t string, p int32, err error) {
		switch {
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		case errors.Is(err, kerr.UnknownTopicID) || errors.Is(err, kerr.UnknownTopicOrPartition):
			if gone == nil {
				gone = fmt.Errorf("read from %s partition %d: %w", t, p, err)
			}
		default:
			cfg.warn.Warn("fetch "+t+": "+err.Error(), "fetch failed", "pipeline", cfg.Plan.Name, "topic", t, "partition", p, "err", err)
		}
	})
	return fetches, gone
}

// held reports whether the stage must not start transactions now.
func (c *StageConfig) held() bool { return c.Hold != nil && c.Hold() }

// end ends the transaction in progress: a commit, or an abort when one of
// its writes failed (fail holds the first failure). A commit runs to its
// end even when shutdown began meanwhile.
func end(ctx context.Context, sess *kgo.GroupTransactSession, fail *atomic.Pointer[error]) (committed bool, err error) {
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// Every write of the transaction has its answer before the choice:
	// End flushes too, but a write failing then (a batch too large for
	// the broker, a denied topic) would not stop the commit, and the
	// transaction would commit its offsets without that write.
	if err := sess.Client().Flush(ectx); err != nil {
		return false, fmt.Errorf("flush transaction: %w", err)
	}
	try := kgo.TryCommit
	if fail.Load() != nil {
		try = kgo.TryAbort
	}
	committed, err = sess.End(ectx, try)
	if err != nil {
		return false, fmt.Errorf("end transaction: %w", err)
	}
	return committed, nil
}

// reportAbort logs an aborted transaction of stage with its cause (fail,
// or a rebalance when nil) and what happens next, and counts it.
func (c *StageConfig) reportAbort(stage string, fail *atomic.Pointer[error], next string) {
	if perr := fail.Load(); perr != nil {
		c.Logger.Warn("transaction aborted; "+next, "pipeline", c.Plan.Name, "stage", stage, "err", *perr)
	} else {
		c.Logger.Info("transaction aborted by a rebalance; "+next, "pipeline", c.Plan.Name, "stage", stage)
	}
	if m := c.Metrics; m != nil {
		m.TxnAborts.WithLabelValues(c.Plan.Name, stage).Inc()
	}
}

// observeLatency records, for a sampled event, the time from its ingest to
// point of the pipeline (pulse_pipeline_stage_latency_seconds); times in
// ms.
func (c *StageConfig) observeLatency(point string, now, ingest int64) {
	if m := c.Metrics; m != nil {
		m.StageLatency.WithLabelValues(c.Plan.Name, point).Observe(float64(now-ingest) / 1000)
	}
}

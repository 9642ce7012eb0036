package stream

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/backoff"
)

// stage is what the task loop runs: the work of one stage of a pipeline
// (the shuffle stage, the window stage) between the loop's polls and
// transactions. The loop owns the consumer group session, the
// transactions and their commit-or-abort rule; a stage only reads,
// processes and writes into the transaction it is handed. Every hook runs
// on the loop's goroutine.
type stage interface {
	// open prepares a new session: partition counts of the topics it
	// writes, state from an earlier session dropped.
	open(ctx context.Context, cl *kgo.Client) error
	// sync follows a changed partition assignment; it runs between
	// transactions.
	sync(parts map[string][]int32, now time.Time)
	// tick is how often the loop ends a cycle without records, so that
	// finish may write what time alone makes due (the shuffle stage's
	// markers of partitions turned idle); 0 never.
	tick() time.Duration
	// pollWait bounds the next poll's wait (a live refresh due); 0 sets
	// no bound.
	pollWait(now time.Time) time.Duration
	// prepare runs before the transaction that processes fetches begins:
	// tasks that deliver their first records restore from their
	// changelogs, so that a long restore does not run into the
	// transaction's timeout.
	prepare(ctx context.Context, cl *kgo.Client, fetches kgo.Fetches) error
	// began runs when a transaction begins.
	began()
	// process writes what fetches produce into the transaction.
	process(ctx context.Context, sess *kgo.GroupTransactSession, fetches kgo.Fetches) error
	// polled runs after every poll (live views).
	polled(now time.Time)
	// finish writes what the transaction owes before it ends (final
	// results, state changes, markers). A stage that owes writes without
	// a transaction open (markers) calls begin first.
	finish(ctx context.Context, sess *kgo.GroupTransactSession, inTxn bool, begin func() error) error
	// committed runs after a commit, aborted after an abort.
	committed(ctx context.Context, cl *kgo.Client)
	aborted()
	// drop forgets the session's work when it ends with an error
	// outside a transaction.
	drop()
}

// taskLoop is the one transactional loop every stateful stage runs on:
// it consumes read_committed from its group's partitions, lets the stage
// restore tasks before their first records, hands it batches, and writes
// outputs, changelog records and consumed offsets in one Kafka
// transaction, choosing commit or abort only after every write answered
// (see end).
type taskLoop struct {
	cfg    *StageConfig
	name   string   // the stage: "shuffle", "windows"
	topics []string // what it consumes
	asg    *assignment
	prog   *progress
	// fail holds the transaction's first failure: a write the broker
	// refused, a topic gone. The transaction then aborts.
	fail *atomic.Pointer[error]
	// abortNote says what happens after an abort, for its log line.
	abortNote string
	st        stage
	// opts are the stage's own options of its group session.
	opts []kgo.Opt
	size pollSize
}

// pollSize sizes polls by what processing a record took lately, so that
// one poll's records take about pollWork to process: records are offsets
// the transaction commits once polled, so a poll is processed whole, and
// a poll of many slow records (a window task reading groups from disk)
// would run the transaction into its timeout.
type pollSize struct {
	perRecord time.Duration // moving average
}

// Bounds of a poll.
const (
	pollWork       = 200 * time.Millisecond
	maxPollRecords = 20000
	minPollRecords = 16
)

func (p *pollSize) records() int {
	if p.perRecord <= 0 {
		return maxPollRecords
	}
	return int(min(max(int64(pollWork/p.perRecord), minPollRecords), maxPollRecords))
}

// took records that processing n records took d.
func (p *pollSize) took(n int, d time.Duration) {
	if n == 0 {
		return
	}
	x := d / time.Duration(n)
	if p.perRecord == 0 {
		p.perRecord = x
		return
	}
	p.perRecord += (x - p.perRecord) / 4
}

// run runs the stage's session until ctx ends, starting it again after a
// failure with a backoff; each cause is logged once per interval.
func (l *taskLoop) run(ctx context.Context) error {
	cfg := l.cfg
	retry := backoff.Backoff{Min: 500 * time.Millisecond, Max: 10 * time.Second}
	for {
		began := time.Now()
		err := l.session(ctx)
		if ctx.Err() != nil {
			l.prog.stopped(nil)
			return nil
		}
		l.prog.stopped(err)
		var fatal *fatalError
		if errors.As(err, &fatal) {
			// Starting again would fail the same way: stop Pulse with
			// the reason.
			return fmt.Errorf("pipeline %s, %s stage: %w", cfg.Plan.Name, l.name, fatal.err)
		}
		if time.Since(began) > time.Minute {
			retry.Reset() // it ran a while: this is a new fault
		}
		cfg.warn.Error(err.Error(), "pipeline stage failed; starting it again", "pipeline", cfg.Plan.Name, "stage", l.name, "err", err)
		if !retry.Wait(ctx) {
			return nil
		}
	}
}

// fatalError is a failure that retrying cannot mend, such as a changelog
// written for another version of the pipeline file.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// maxPollWait bounds one poll, so that the loop notices a changed
// assignment or shutdown soon.
const maxPollWait = 100 * time.Millisecond

// session runs one consumer group session: cycles of polls, each cycle
// one transaction when it read something.
func (l *taskLoop) session(ctx context.Context) error {
	cfg, st := l.cfg, l.st
	gs, err := cfg.Cluster.session(cfg.Plan, l.name, cfg.worker, cfg.Logger, append(append(l.asg.opts(), kgo.ConsumeTopics(l.topics...)), l.opts...)...)
	if err != nil {
		return err
	}
	defer gs.Close()
	sess := gs.GroupTransactSession
	cl := sess.Client()
	if err := st.open(ctx, cl); err != nil {
		return err
	}
	l.prog.started()
	sync := func() {
		if parts, changed := l.asg.take(); changed {
			st.sync(parts, time.Now())
		}
	}
	for {
		// A transaction begins with the first record polled (or the
		// first write a stage owes without one), so that an idle stage
		// commits nothing: a commit without consumed offsets makes
		// franz-go hold the next one back for 500 ms. A cycle ends at
		// the stage's tick or CommitEvery after its transaction began,
		// whichever comes first.
		inTxn := false
		cycleEnd := time.Now().Add(time.Hour)
		if t := st.tick(); t > 0 {
			cycleEnd = time.Now().Add(t)
		}
		deadline := cycleEnd
		begin := func() error {
			if inTxn {
				return nil
			}
			if err := sess.Begin(); err != nil {
				return fmt.Errorf("begin transaction: %w", err)
			}
			inTxn = true
			l.fail.Store(nil)
			st.began()
			deadline = minTime(cycleEnd, time.Now().Add(cfg.CommitEvery))
			return nil
		}
		sync()
		for ctx.Err() == nil {
			now := time.Now()
			wait := min(deadline.Sub(now), maxPollWait)
			if wait <= 0 {
				break
			}
			if b := st.pollWait(now); b > 0 {
				wait = min(wait, b)
			}
			fetches, gone := poll(ctx, sess, wait, l.size.records(), cfg)
			if gone != nil {
				if !inTxn {
					st.drop()
					return gone
				}
				l.fail.CompareAndSwap(nil, &gone)
				break
			}
			l.prog.read(fetches.NumRecords())
			if err := st.prepare(ctx, cl, fetches); err != nil {
				if !inTxn {
					st.drop()
					return err
				}
				l.fail.CompareAndSwap(nil, &err)
				break
			}
			if fetches.NumRecords() > 0 {
				if err := begin(); err != nil {
					return err
				}
			}
			began := time.Now()
			if err := st.process(ctx, sess, fetches); err != nil {
				l.fail.CompareAndSwap(nil, &err)
				break
			}
			l.size.took(fetches.NumRecords(), time.Since(began))
			st.polled(time.Now())
			if !inTxn {
				sync()
			}
		}
		if err := st.finish(ctx, sess, inTxn, begin); err != nil {
			return err
		}
		if !inTxn {
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		committed, err := end(ctx, sess, l.fail)
		if err != nil {
			return err
		}
		if perr := l.fail.Load(); perr != nil {
			var fatal *fatalError
			if errors.As(*perr, &fatal) {
				return fatal
			}
		}
		if committed {
			l.prog.committed()
			st.committed(ctx, cl)
		} else {
			cfg.reportAbort(l.name, l.fail, l.abortNote)
			l.prog.rewound()
			st.aborted()
			if err := staleTopic(l.fail); err != nil {
				return err
			}
		}
		sync()
		if ctx.Err() != nil {
			return nil
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Fsync is when the embedded broker forces what it wrote to disk.
type Fsync string

const (
	// FsyncNone leaves the data in the page cache for the kernel to write
	// back (within about 30 s on Linux): an acknowledged record survives a
	// crash of Pulse, not one of the machine.
	FsyncNone Fsync = "none"
	// FsyncInterval syncs the data dir's filesystem every interval: a
	// machine crash loses at most the last interval's acknowledgements.
	FsyncInterval Fsync = "interval"
	// FsyncBatch answers a request that changed the log (produce, commit,
	// end of transaction, ...) only after a sync that began once the
	// broker had written it: an acknowledged record is on disk. Requests
	// arriving during a sync share the next one (group commit).
	FsyncBatch Fsync = "batch"
)

// ParseFsync checks a --fsync value.
func ParseFsync(s string) (Fsync, error) {
	switch f := Fsync(s); f {
	case FsyncNone, FsyncInterval, FsyncBatch:
		return f, nil
	case "":
		return FsyncNone, nil
	}
	return "", fmt.Errorf("--fsync %q: use none, interval or batch", s)
}

var errClosed = errors.New("embedded broker closing")

// syncer syncs the filesystem of the data dir, once per caller group: a
// wait returns after a sync that started after the wait did.
//
// A failed sync is final, as in PostgreSQL and Kafka: Linux reports a
// writeback error once and may drop the data it could not write, so a
// later sync could succeed without it. From the first failure on nothing
// is acknowledged, and Failed is closed so that Pulse stops; a restart
// reads back what is on disk.
type syncer struct {
	syncFS func() error
	log    *slog.Logger
	dir    string

	mu      sync.Mutex
	cond    *sync.Cond
	want    uint64 // the highest sync number a waiter needs
	started uint64 // syncs started
	done    uint64 // syncs finished
	err     error  // the first failure
	closed  bool
	stopped chan struct{}
	failed  chan struct{} // closed at the first failure
}

func newSyncer(dir string, syncFS func() error, log *slog.Logger) *syncer {
	s := &syncer{syncFS: syncFS, log: log, dir: dir, stopped: make(chan struct{}), failed: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	go s.loop()
	return s
}

func (s *syncer) loop() {
	defer close(s.stopped)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for s.want <= s.started && !s.closed && s.err == nil {
			s.cond.Wait()
		}
		if s.closed || s.err != nil {
			return
		}
		s.started++
		n := s.started
		s.mu.Unlock()
		err := s.syncFS()
		s.mu.Lock()
		s.done = n
		s.failLocked(err)
		s.cond.Broadcast()
	}
}

// wait returns once everything written before the call is on disk, or
// the error that kept it from being.
func (s *syncer) wait() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	target := s.started + 1
	if s.want < target {
		s.want = target
		s.cond.Broadcast()
	}
	for s.done < target && !s.closed && s.err == nil {
		s.cond.Wait()
	}
	switch {
	case s.err != nil:
		return s.err
	case s.done < target:
		return errClosed
	}
	return nil
}

// sync syncs now, outside the group (the interval ticker, shutdown).
func (s *syncer) sync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.failLocked(s.syncFS())
	}
}

func (s *syncer) failLocked(err error) {
	if err == nil || s.err != nil {
		return
	}
	s.err = err
	close(s.failed)
	s.log.Error("embedded broker: sync of the data dir failed; acknowledging nothing more and stopping (restart Pulse once the disk is fixed: it reads back what is on disk)",
		"component", "broker", "data_dir", s.dir, "err", err)
}

func (s *syncer) close() {
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	<-s.stopped
}

// every syncs on a ticker until ctx ends or a sync fails (the interval
// policy).
func (s *syncer) every(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.failed:
			return
		case <-t.C:
			s.sync()
		}
	}
}

// writeKeys are the requests whose effect the broker persists: their
// responses wait for the sync under FsyncBatch. Reads (fetch, metadata,
// heartbeats, ...) answer at once.
var writeKeys = map[int16]bool{
	0:  true, // Produce
	8:  true, // OffsetCommit
	19: true, // CreateTopics
	20: true, // DeleteTopics
	21: true, // DeleteRecords
	22: true, // InitProducerID
	24: true, // AddPartitionsToTxn
	25: true, // AddOffsetsToTxn
	26: true, // EndTxn
	28: true, // TxnOffsetCommit
	33: true, // AlterConfigs
	37: true, // CreatePartitions
	42: true, // DeleteGroups
	44: true, // IncrementalAlterConfigs
	47: true, // OffsetDelete
}

// syncListener hands out connections whose write responses wait for the
// syncer.
type syncListener struct {
	net.Listener
	s *syncer
}

func (l syncListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &syncConn{Conn: c, s: l.s}, nil
}

// syncConn reads the header of each request the client sends (size, api
// key, version, correlation id) and holds back the response of a write
// request until the syncer has synced. The broker answers a connection's
// requests in order, one response per Write, some (acks=0 produce) with
// none.
type syncConn struct {
	net.Conn
	s *syncer

	hdr  [12]byte
	have int // header bytes read of the current request
	skip int // body bytes of the current request still to come

	mu      sync.Mutex
	pending []request
}

// maxPending bounds the requests a connection remembers.
const maxPending = 64

type request struct {
	corr int32
	key  int16
}

func (c *syncConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.scan(p[:n])
	return n, err
}

func (c *syncConn) scan(b []byte) {
	for len(b) > 0 {
		if c.skip > 0 {
			n := min(c.skip, len(b))
			c.skip, b = c.skip-n, b[n:]
			continue
		}
		n := copy(c.hdr[c.have:], b)
		c.have, b = c.have+n, b[n:]
		if c.have < len(c.hdr) {
			return
		}
		size := int(int32(binary.BigEndian.Uint32(c.hdr[0:4])))
		r := request{key: int16(binary.BigEndian.Uint16(c.hdr[4:6])), corr: int32(binary.BigEndian.Uint32(c.hdr[8:12]))}
		c.have, c.skip = 0, max(size-8, 0)
		c.mu.Lock()
		c.pending = append(c.pending, r)
		if len(c.pending) > maxPending {
			// The broker handles one request of a connection at a time:
			// entries this old were acks=0 produces, never answered.
			c.pending = append(c.pending[:0], c.pending[len(c.pending)-maxPending:]...)
		}
		c.mu.Unlock()
	}
}

func (c *syncConn) Write(b []byte) (int, error) {
	if c.needsSync(b) {
		if err := c.s.wait(); err != nil {
			return 0, fmt.Errorf("response held back, the data dir is not synced: %w", err)
		}
	}
	return c.Conn.Write(b)
}

// needsSync reports whether response b answers a write request: it pops
// the requests up to b's correlation id, those before it having had no
// response. A response it cannot place waits, to be safe.
func (c *syncConn) needsSync(b []byte) bool {
	if len(b) < 8 {
		return true
	}
	corr := int32(binary.BigEndian.Uint32(b[4:8]))
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, r := range c.pending {
		if r.corr == corr {
			c.pending = c.pending[i+1:]
			return writeKeys[r.key]
		}
	}
	return true
}

// newDirSyncer is dirSyncer; tests replace it to watch and gate the syncs.
var newDirSyncer = dirSyncer

package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/ratelog"
)

// gatedSync replaces the data dir sync: it counts the syncs and blocks
// each until the gate is open.
type gatedSync struct {
	calls atomic.Int64
	mu    sync.Mutex
	open  chan struct{}
	err   error
}

func newGatedSync(t *testing.T) *gatedSync {
	g := &gatedSync{open: make(chan struct{})}
	real := newDirSyncer
	newDirSyncer = func(dir string) (func() error, func() error, error) {
		do, release, err := real(dir)
		if err != nil {
			return nil, nil, err
		}
		return func() error {
			g.calls.Add(1)
			g.mu.Lock()
			open, err := g.open, g.err
			g.mu.Unlock()
			<-open
			if err != nil {
				return err
			}
			return do()
		}, release, nil
	}
	t.Cleanup(func() { newDirSyncer = real })
	return g
}

func (g *gatedSync) set(open bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.err = err
	if open {
		select {
		case <-g.open:
		default:
			close(g.open)
		}
	} else {
		g.open = make(chan struct{})
	}
}

// TestFsyncBatchAcknowledgesAfterSync checks that under --fsync batch a
// produce is acknowledged only after a sync that began after it, that a
// failing sync withholds the acknowledgement, and that reads do not wait.
func TestFsyncBatchAcknowledgesAfterSync(t *testing.T) {
	g := newGatedSync(t)
	b, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Partitions: 1, Fsync: FsyncBatch})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	defer g.set(true, nil) // before Close, whose last sync must not block
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g.set(true, nil)
	cl, err := bus.NewClient([]string{b.Addr()}, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := bus.EnsureTopics(ctx, cl, 1, "events"); err != nil {
		t.Fatal(err)
	}

	g.set(false, nil)
	before := g.calls.Load()
	acked := make(chan error, 1)
	go func() { acked <- cl.ProduceSync(ctx, &kgo.Record{Topic: "events", Value: []byte("x")}).FirstErr() }()
	checkfor.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if g.calls.Load() == before {
			return errors.New("no sync started for the produce")
		}
		return nil
	})
	// The sync is held: the produce cannot have been answered, while a
	// read (metadata) is.
	if _, err := kadm.NewClient(cl).BrokerMetadata(ctx); err != nil {
		t.Fatalf("metadata during a held sync: %v", err)
	}
	select {
	case err := <-acked:
		t.Fatalf("produce acknowledged before its sync finished (err %v)", err)
	default:
	}
	g.set(true, nil)
	if err := <-acked; err != nil {
		t.Fatalf("produce after the sync: %v", err)
	}

	// A failed sync is final: the produce waiting for it is never
	// acknowledged (its connection is closed, the client's retries are
	// refused too), and Run ends with the error so that Pulse stops.
	ran := make(chan error, 1)
	go func() { ran <- b.Run(context.Background()) }()
	g.set(true, errors.New("disk on fire"))
	go func() { acked <- cl.ProduceSync(ctx, &kgo.Record{Topic: "events", Value: []byte("y")}).FirstErr() }()
	if err := <-ran; err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Run after a failed sync: %v", err)
	}
	select {
	case err := <-acked:
		if err == nil {
			t.Fatal("produce acknowledged although its sync failed")
		}
	default:
	}
}

// TestFsyncFailureIsFinal checks that after a failed sync no later sync is
// tried and no write is acknowledged, even when the disk works again:
// Linux may have dropped the data it could not write.
func TestFsyncFailureIsFinal(t *testing.T) {
	calls := 0
	s := newSyncer(t.TempDir(), func() error {
		calls++
		if calls == 1 {
			return errors.New("EIO")
		}
		return nil
	}, slog.New(slog.DiscardHandler))
	defer s.close()
	for range 3 {
		if err := s.wait(); err == nil || err.Error() != "EIO" {
			t.Fatalf("wait after a failed sync: %v", err)
		}
	}
	s.sync()
	if calls != 1 {
		t.Fatalf("%d syncs, want 1: none after the failure", calls)
	}
	select {
	case <-s.failed:
	default:
		t.Fatal("failed not closed")
	}
}

// TestFsyncIntervalSyncs checks that --fsync interval syncs on its own,
// and that none starts no sync.
func TestFsyncIntervalSyncs(t *testing.T) {
	g := newGatedSync(t)
	g.set(true, nil)
	b, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Fsync: FsyncInterval, FsyncInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkfor.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := g.calls.Load(); n < 3 {
			return errors.New("only " + strconv.FormatInt(n, 10) + " syncs")
		}
		return nil
	})
	b.Close()

	g.calls.Store(0)
	b, err = Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Fsync: FsyncNone})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if n := g.calls.Load(); n != 0 {
		t.Errorf("--fsync none synced %d times", n)
	}
	if _, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Fsync: "always"}); err == nil || !strings.Contains(err.Error(), "use none, interval or batch") {
		t.Errorf("unknown policy: %v", err)
	}
}

// TestDirSyncer runs the real sync of a data dir.
func TestDirSyncer(t *testing.T) {
	do, release, err := dirSyncer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := do(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := dirSyncer("/nonexistent/pulse"); err == nil {
		t.Error("no error for a missing data dir")
	}
}

// TestSyncConnScan checks the request header reader on frames split at
// every byte boundary.
func TestSyncConnScan(t *testing.T) {
	var stream []byte
	frame := func(key int16, corr int32, body int) {
		var h [12]byte
		binary.BigEndian.PutUint32(h[0:4], uint32(8+body))
		binary.BigEndian.PutUint16(h[4:6], uint16(key))
		binary.BigEndian.PutUint32(h[8:12], uint32(corr))
		stream = append(append(stream, h[:]...), bytes.Repeat([]byte{0xff}, body)...)
	}
	frame(0, 1, 100) // produce
	frame(1, 2, 0)   // fetch
	frame(26, 3, 7)  // end txn
	frame(3, 4, 30)  // metadata
	for chunk := 1; chunk <= len(stream); chunk++ {
		c := &syncConn{}
		for b := stream; len(b) > 0; {
			n := min(chunk, len(b))
			c.scan(b[:n])
			b = b[n:]
		}
		want := []request{{1, 0}, {2, 1}, {3, 26}, {4, 3}}
		if len(c.pending) != len(want) {
			t.Fatalf("chunk %d: %v, want %v", chunk, c.pending, want)
		}
		for i := range want {
			if c.pending[i] != want[i] {
				t.Fatalf("chunk %d: %v, want %v", chunk, c.pending, want)
			}
		}
		resp := func(corr int32) []byte {
			b := make([]byte, 8)
			binary.BigEndian.PutUint32(b[4:8], uint32(corr))
			return b
		}
		// corr 1 had no response (acks=0): the response to 2 skips it.
		if c.needsSync(resp(2)) || !c.needsSync(resp(3)) || c.needsSync(resp(4)) || !c.needsSync(resp(9)) {
			t.Fatalf("chunk %d: wrong sync decisions", chunk)
		}
	}
}

// TestSyncConnForgetsUnanswered checks that a connection of acks=0
// produces, which get no responses, does not pile up requests.
func TestSyncConnForgetsUnanswered(t *testing.T) {
	c := &syncConn{}
	var h [12]byte
	binary.BigEndian.PutUint32(h[0:4], 8)
	for i := range 10000 {
		binary.BigEndian.PutUint32(h[8:12], uint32(i))
		c.scan(h[:])
	}
	if len(c.pending) != maxPending || c.pending[maxPending-1].corr != 9999 {
		t.Fatalf("%d requests remembered, the last %+v; want the last %d", len(c.pending), c.pending[len(c.pending)-1], maxPending)
	}
}

// TestAdvertise checks that metadata names the --kafka-advertise address,
// not the listener's, and that an address Pulse cannot reach is refused.
func TestAdvertise(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	b, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:" + strconv.Itoa(port), Advertise: "localhost:" + strconv.Itoa(port)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := bus.NewClient([]string{b.Addr()}, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Host != "localhost" || md.Brokers[0].Port != int32(port) {
		t.Fatalf("metadata brokers %+v, want localhost:%d", md.Brokers, port)
	}
	// A client given the advertised address works end to end.
	if err := bus.EnsureTopics(ctx, cl, 1, "events"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "events", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ advertise, want string }{
		{"127.0.0.1:1", "is not reachable from Pulse itself"},
		{"pulse", "missing port"},
		{":9092", "no host"},
		{"pulse:http", "is not a number"},
	} {
		if b, err := Start(Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Advertise: c.advertise}); err == nil || !strings.Contains(err.Error(), c.want) {
			if err == nil {
				b.Close()
			}
			t.Errorf("--kafka-advertise %s: %v, want %q", c.advertise, err, c.want)
		}
	}
}

// TestBrokerWarningsRateLimited checks that a warning the broker repeats
// during a fault (one per batch while the disk is full) is one line per
// interval, with the count of those held back.
func TestBrokerWarningsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	l := slogLogger{ratelog.New(slog.New(slog.NewTextHandler(&buf, nil)), time.Hour)}
	for p := range 1000 {
		l.Logf(kfake.LogLevelWarn, "persist batch %s-%d: %v", "city", p, "no space left on device")
	}
	l.Logf(kfake.LogLevelWarn, "compact %s-%d: read last batch: %v", "city", 1, "EIO")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "persist batch city-0: no space left on device") {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), buf.String())
	}
}

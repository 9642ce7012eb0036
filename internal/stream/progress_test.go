package stream

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pulsehq/pulse/internal/bus"
)

// TestProgressHealth walks a stage worker through start, idle, input,
// commit and a stall, with a clock the test moves.
func TestProgressHealth(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newProgress(30 * time.Second)
	p.now = func() time.Time { return now }
	ctx := context.Background()
	if err := p.health(ctx); err == nil || err.Error() != "starting" {
		t.Fatalf("before the session: %v, want starting", err)
	}
	p.started()
	now = now.Add(time.Hour)
	if err := p.health(ctx); err != nil {
		t.Fatalf("idle for an hour: %v, want ready", err)
	}
	p.read(1000)
	p.behind(234)
	now = now.Add(29 * time.Second)
	if err := p.health(ctx); err != nil {
		t.Fatalf("input waiting 29s of 30s: %v, want ready", err)
	}
	p.restore("2 of 8 changelog partitions left")
	now = now.Add(13 * time.Second)
	want := "no commit for 42s while 1,234 records wait; restoring: 2 of 8 changelog partitions left"
	if err := p.health(ctx); err == nil || err.Error() != want {
		t.Fatalf("stalled: %v, want %q", err, want)
	}
	p.restore("")
	p.behind(0)
	p.committed()
	if err := p.health(ctx); err != nil {
		t.Fatalf("after a commit: %v, want ready", err)
	}
	// A stage that fails in a loop: the wait survives the restarts.
	p.read(5)
	p.stopped(io.ErrUnexpectedEOF)
	if err := p.health(ctx); err == nil || !strings.Contains(err.Error(), "starting again; last error: unexpected EOF") {
		t.Fatalf("between sessions: %v, want starting again with the error", err)
	}
	p.started()
	now = now.Add(31 * time.Second)
	want = "no commit for 31s while records arrived; last error: unexpected EOF"
	if err := p.health(ctx); err == nil || err.Error() != want {
		t.Fatalf("failing in a loop: %v, want %q", err, want)
	}
}

// TestRestoreDeadline starts a restore against a broker that answers every
// fetch of the restore client with nothing: the restore logs how far it
// got and fails after RestoreTimeout, naming the partition, instead of
// hanging.
func TestRestoreDeadline(t *testing.T) {
	plan := testPlan(t, "")
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, changelog := InternalTopics(plan)
	if err := bus.EnsureTopicsWith(ctx, cl, 2, bus.Compacted, changelog...); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: changelog[0], Partition: 1, Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cluster.ControlKey(int16(kmsg.Fetch), func(r kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		req := r.(*kmsg.FetchRequest)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.SetVersion(req.GetVersion())
		time.Sleep(20 * time.Millisecond) // an empty answer, not too often
		return resp, nil, true
	})
	var logs syncBuf
	w := NewWindower(StageConfig{Plan: plan, Cluster: Cluster{Opts: opts}, RestoreTimeout: 6 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	err = w.restore(ctx, cl, []*task{w.newTask(0, 1)})
	if err == nil || !strings.Contains(err.Error(), "did not finish within 6s") ||
		!strings.Contains(err.Error(), changelog[0]+":1 at offset 0 of 1") {
		t.Fatalf("restore = %v, want a timeout naming %s:1 at offset 0 of 1", err, changelog[0])
	}
	if !strings.Contains(logs.String(), "restoring window tasks") {
		t.Errorf("no progress line in the log:\n%s", logs.String())
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

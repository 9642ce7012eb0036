package bus

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/checkfor"
)

// TestKeeperCreatesDeletedTopicsAgain creates two topics, deletes one as
// a Kafka client would, and sees the running keeper create it again with
// its partition count and configuration and tell its hook.
func TestKeeperCreatesDeletedTopicsAgain(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := []Topic{{Name: "results", Partitions: 3}, {Name: "state", Partitions: 2, Configs: Compacted}}
	k := NewKeeper(cl, topics, 20*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	created, err := k.Ensure(ctx)
	if err != nil || !slices.Equal(created, []string{"results", "state"}) {
		t.Fatalf("first Ensure: %v, %v; want both created", created, err)
	}
	if created, err := k.Ensure(ctx); err != nil || len(created) != 0 {
		t.Fatalf("second Ensure: %v, %v; want nothing to create", created, err)
	}
	var mu sync.Mutex
	var told []string
	k.OnRecreate(func(topic string) {
		mu.Lock()
		told = append(told, topic)
		mu.Unlock()
	})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- k.Run(rctx) }()

	// A client of its own, as the keeper's caches metadata for a while.
	other, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	adm := kadm.NewClient(other)
	for _, topic := range []string{"results", "state"} {
		if _, err := adm.DeleteTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	checkfor.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(told, "results") || !slices.Contains(told, "state") {
			return fmt.Errorf("hook told %v, want results and state", told)
		}
		return nil
	})
	td, err := adm.ListTopics(ctx, "results", "state")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td["results"].Partitions); n != 3 {
		t.Errorf("results recreated with %d partitions, want 3", n)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "state")
	if err != nil {
		t.Fatal(err)
	}
	c, err := rc.On("state", nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, kv := range c.Configs {
		if kv.Key == "cleanup.policy" && kv.Value != nil {
			policy = *kv.Value
		}
	}
	if policy != "compact,delete" {
		t.Errorf("state recreated with cleanup.policy %q, want compact,delete", policy)
	}
	if err := k.Health(ctx); err != nil {
		t.Errorf("Health = %v with every topic there", err)
	}

	// With the broker gone the keeper says why.
	cluster.Close()
	checkfor.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if k.Health(ctx) == nil {
			return fmt.Errorf("Health is nil with the broker gone")
		}
		return nil
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

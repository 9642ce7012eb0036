package bus

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKeeperAlignsConfigs creates topics with their configuration and,
// with AlignConfigs, sets it on topics that exist with another (a
// changelog created compacted by an earlier Pulse, a stream created
// without retention).
func TestKeeperAlignsConfigs(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := EnsureTopicsWith(ctx, cl, 2, Compacted, "old.changelog"); err != nil {
		t.Fatal(err)
	}
	stream := map[string]string{"cleanup.policy": "delete", "retention.ms": "3600000", "retention.bytes": "1048576"}
	state := map[string]string{"cleanup.policy": "delete", "retention.ms": "-1", "segment.bytes": "1048576"}
	topics := []Topic{{Name: "events", Partitions: 2, Configs: stream}, {Name: "old.changelog", Partitions: 2, Configs: state}, {Name: "new.changelog", Partitions: 2, Configs: state}}

	// Without align an existing topic keeps its operator's configuration.
	if _, err := NewKeeper(cl, topics, 0, nil).Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if got := config(t, cl, "old.changelog", "cleanup.policy"); got != "compact,delete" {
		t.Fatalf("without align: cleanup.policy of an existing topic = %q, want it left as compact,delete", got)
	}
	k := NewKeeper(cl, topics, 0, nil)
	k.AlignConfigs()
	if _, err := k.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ topic, key, want string }{
		{"events", "retention.ms", "3600000"},
		{"events", "retention.bytes", "1048576"},
		{"old.changelog", "cleanup.policy", "delete"},
		{"old.changelog", "segment.bytes", "1048576"},
		{"new.changelog", "cleanup.policy", "delete"},
	} {
		if got := config(t, cl, tc.topic, tc.key); got != tc.want {
			t.Errorf("%s %s = %q, want %q", tc.topic, tc.key, got, tc.want)
		}
	}
	// Again is a no-op that succeeds.
	if _, err := k.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
}

func config(t *testing.T, cl *kgo.Client, topic, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	r, err := rc.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Configs {
		if c.Key == key && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}

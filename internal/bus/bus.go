package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// NewClient returns a client for the given seed brokers.
func NewClient(brokers []string, clientID string, opts ...kgo.Opt) (*kgo.Client, error) {
	all := append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID(clientID)}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("create Kafka client for %s: %w", strings.Join(brokers, ","), err)
	}
	return cl, nil
}

// EnsureTopics creates the topics that do not exist yet with the given
// partition count. Topics that exist are left as they are.
func EnsureTopics(ctx context.Context, cl *kgo.Client, partitions int32, topics ...string) error {
	return EnsureTopicsWith(ctx, cl, partitions, nil, topics...)
}

// Compacted is the topic configuration of changelog topics: the log keeps
// the latest record of each key, and nothing expires by age or size.
// "delete" is there only so that the owner may delete records before a
// snapshot (Kafka refuses DeleteRecords on compact-only topics).
var Compacted = map[string]string{
	"cleanup.policy":  "compact,delete",
	"retention.ms":    "-1",
	"retention.bytes": "-1",
}

// EnsureTopicsWith is EnsureTopics with topic configuration for the topics
// it creates.
func EnsureTopicsWith(ctx context.Context, cl *kgo.Client, partitions int32, configs map[string]string, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, partitions, -1, ptrs(configs), topics...)
	if err != nil {
		return fmt.Errorf("create topics %s: %w", strings.Join(topics, ","), err)
	}
	for _, t := range resp.Sorted() {
		if t.Err != nil && !errors.Is(t.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t.Topic, t.Err)
		}
	}
	return nil
}

// Partitions returns the partition ids of topic.
func Partitions(ctx context.Context, cl *kgo.Client, topic string) ([]int32, error) {
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		return nil, fmt.Errorf("describe topic %s: %v", topic, d.Err)
	}
	return d.Partitions.Numbers(), nil
}

// Ping checks that the cluster answers a metadata request.
func Ping(ctx context.Context, cl *kgo.Client) error {
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("ping Kafka: %w", err)
	}
	return nil
}

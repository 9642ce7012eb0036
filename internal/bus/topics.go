package bus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topic is a topic Pulse creates, with the configuration it wants.
type Topic struct {
	Name    string
	Configs map[string]string
}

// Prepare creates the topics that do not exist yet with partitions and
// their configuration. With align, the topics that exist get the
// configuration too (the embedded broker, where Pulse is the operator);
// otherwise existing topics are left as their operator set them.
func Prepare(ctx context.Context, cl *kgo.Client, partitions int32, topics []Topic, align bool) error {
	adm := kadm.NewClient(cl)
	// One CreateTopics request per distinct configuration.
	byConfig := map[string][]Topic{}
	for _, t := range topics {
		byConfig[configKey(t.Configs)] = append(byConfig[configKey(t.Configs)], t)
	}
	var existing []Topic
	for _, group := range byConfig {
		names := make([]string, len(group))
		for i, t := range group {
			names[i] = t.Name
		}
		resp, err := adm.CreateTopics(ctx, partitions, -1, ptrs(group[0].Configs), names...)
		if err != nil {
			return fmt.Errorf("create topics %s: %w", strings.Join(names, ","), err)
		}
		for i, t := range group {
			r := resp[t.Name]
			switch {
			case r.Err == nil:
			case errors.Is(r.Err, kerr.TopicAlreadyExists):
				existing = append(existing, group[i])
			default:
				return fmt.Errorf("create topic %s: %w", t.Name, r.Err)
			}
		}
	}
	if !align || len(existing) == 0 {
		return nil
	}
	for _, t := range existing {
		var alter []kadm.AlterConfig
		for _, k := range sortedKeys(t.Configs) {
			v := t.Configs[k]
			alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
		}
		if len(alter) == 0 {
			continue
		}
		resp, err := adm.AlterTopicConfigs(ctx, alter, t.Name)
		if err == nil {
			for _, r := range resp {
				if r.Err != nil {
					err = r.Err
				}
			}
		}
		if err != nil {
			return fmt.Errorf("set the configuration of topic %s: %w", t.Name, err)
		}
	}
	return nil
}

func configKey(c map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(c) {
		b.WriteString(k + "=" + c[k] + ";")
	}
	return b.String()
}

func sortedKeys(c map[string]string) []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ptrs(c map[string]string) map[string]*string {
	if len(c) == 0 {
		return nil
	}
	out := make(map[string]*string, len(c))
	for k, v := range c {
		out[k] = &v
	}
	return out
}

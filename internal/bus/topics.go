package bus

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
)

// alignConfigs sets each topic's configuration on it.
func alignConfigs(ctx context.Context, adm *kadm.Client, topics []Topic) error {
	for _, t := range topics {
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

package main

import (
	"testing"

	"github.com/pulsehq/pulse/internal/pipeline"
)

// TestTopicPlanJoinTable: a join's table topic is created compacted and
// never expires (on the embedded broker kept whole, not compacted).
func TestTopicPlanJoinTable(t *testing.T) {
	plan, err := pipeline.Parse("pay.yaml", []byte(`name: pay
source: {topic: transactions, key: tx_id, time: {field: at}}
outputs:
  - name: enriched
    join: {table: merchants, key: merchant_id, fields: {name: string}}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, embedded := range []bool{false, true} {
		want := map[string]string{"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1"}
		if embedded {
			want["cleanup.policy"] = "delete"
		}
		found := false
		for _, tp := range topicPlan([]*pipeline.Plan{plan}, 4, retention{age: 3600000, bytes: 1 << 30}, embedded) {
			if tp.Name != "merchants" {
				continue
			}
			found = true
			for k, v := range want {
				if tp.Configs[k] != v {
					t.Errorf("embedded=%v: merchants %s = %q, want %q", embedded, k, tp.Configs[k], v)
				}
			}
		}
		if !found {
			t.Errorf("embedded=%v: no merchants topic in the plan", embedded)
		}
	}
}

package main

import (
	"testing"

	"github.com/pulsehq/pulse/internal/pipeline"
)

func TestTopicPlan(t *testing.T) {
	plans, err := pipeline.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	ret := retention{age: 3600000, bytes: 1 << 30}
	for _, tc := range []struct {
		embedded         bool
		topic, key, want string
	}{
		{true, "city", "retention.ms", "3600000"},
		{true, "city", "retention.bytes", "1073741824"},
		{true, "city.dlq", "retention.ms", "3600000"},
		{true, "city.late", "retention.ms", "3600000"},
		{true, "city.zone_1m", "retention.bytes", "1073741824"},
		{true, "city.zone_1m.repartition", "retention.bytes", "-1"},
		{true, "city.zone_1m.repartition", "segment.bytes", "4194304"},
		{true, "city.zone_1m.changelog", "cleanup.policy", "delete"},
		{true, "city.zone_1m.changelog", "retention.ms", "-1"},
		{true, "city.zone_1m.changelog", "segment.bytes", "1048576"},
		{false, "city", "retention.ms", "3600000"},
		{false, "city", "segment.bytes", ""},
		{false, "city.zone_1m.changelog", "cleanup.policy", "compact,delete"},
		{false, "city.zone_1m.changelog", "segment.bytes", ""},
	} {
		var got string
		found := false
		for _, tp := range topicPlan(plans, 4, ret, tc.embedded) {
			if tp.Name == tc.topic {
				got, found = tp.Configs[tc.key], true
			}
		}
		if !found {
			t.Errorf("embedded=%v: no topic %s in the plan", tc.embedded, tc.topic)
		} else if got != tc.want {
			t.Errorf("embedded=%v: %s %s = %q, want %q", tc.embedded, tc.topic, tc.key, got, tc.want)
		}
	}
}

func TestByteSize(t *testing.T) {
	var b byteSize
	if err := b.Set("2GiB"); err != nil || b.bytes() != 2<<30 {
		t.Fatalf("Set(2GiB) = %v, %d", err, b.bytes())
	}
	if err := b.Set("0"); err != nil || b.bytes() != -1 {
		t.Fatalf("Set(0) = %v, %d; want no bound (-1)", err, b.bytes())
	}
	if err := b.Set("lots"); err == nil {
		t.Fatal("Set(lots) accepted")
	}
}
